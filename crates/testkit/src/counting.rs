//! A counting test server speaking the Redshift query protocol (and Serverless's JSON), for call
//! counting and fault injection: the integration tests' fake AWS, and (as the `counting-server`
//! binary) bench/'s. GetIdentityCenterAuthToken is answered in both, counted on its own.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How the server answers GetClusterCredentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// A valid answer.
    Ok,
    /// 400 Throttling "Rate exceeded".
    Throttle,
    /// 500 InternalFailure.
    ServerError,
    /// 200 with a body that is not the expected XML.
    Malformed,
    /// 400 ClusterNotFound.
    ClusterNotFound,
    /// 403 ExpiredToken.
    ExpiredToken,
    /// 403 AccessDenied.
    AccessDenied,
    /// An AccessDenied error whose message carries ESC and BEL, from every
    /// credential API (Redshift's XML and Serverless's JSON alike).
    HostileError,
    /// 400 UnsupportedOperation: a cluster without the Identity Center
    /// integration (GetIdentityCenterAuthToken only).
    UnsupportedOperation,
}

/// The message [`Behaviour::HostileError`] sends: it would retitle the terminal
/// and ring its bell if printed raw.
pub const HOSTILE_MESSAGE: &str = "not authorized \u{1b}]0;pwned\u{7} \u{1b}[2J";

/// Fields of a credential answer that replace the honest ones, to play a
/// hostile or broken AWS.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The DbUser, verbatim.
    pub db_user: Option<String>,
    /// The DbPassword, verbatim.
    pub db_password: Option<String>,
    /// The expiry in seconds since the epoch (RFC 3339 in XML, a number in JSON).
    pub expiration: Option<i64>,
}

#[derive(Debug)]
struct State {
    /// Every request's operation, in order: the query Action or the JSON target.
    operations: Vec<String>,
    /// DescribeClusters answers with this endpoint, or AccessDenied when `None`.
    describe_endpoint: Option<(String, u16)>,
    behaviour: Behaviour,
    delay: Duration,
    /// Seconds until expiry of issued passwords; `None` means DurationSeconds.
    expires_in: Option<i64>,
    /// The next this-many calls answer with `failing` instead of `behaviour`.
    failures_left: usize,
    failing: Behaviour,
    /// GetClusterCredentials answers with this DbUser and DbPassword instead of
    /// `IAM:<user>` and `counting-pw-<n>` (to match a role in a real PostgreSQL).
    login: Option<(String, String)>,
    /// Replaces fields of every credential answer.
    answer: Answer,
    /// How GetIdentityCenterAuthToken answers, in both protocols.
    idc_behaviour: Behaviour,
    /// Each GetIdentityCenterAuthToken call's target: `cluster:ID` or `workgroup:NAME`.
    idc_targets: Vec<String>,
}

/// A server on a loopback port, in its own thread with its own runtime.
pub struct CountingServer {
    pub port: u16,
    calls: Arc<AtomicUsize>,
    describe_calls: Arc<AtomicUsize>,
    state: Arc<Mutex<State>>,
    _server: crate::http::HttpServer,
}

impl CountingServer {
    pub fn start() -> CountingServer {
        let calls = Arc::new(AtomicUsize::new(0));
        let describe_calls = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(Mutex::new(State {
            operations: Vec::new(),
            describe_endpoint: None,
            behaviour: Behaviour::Ok,
            delay: Duration::ZERO,
            expires_in: None,
            failures_left: 0,
            failing: Behaviour::Ok,
            login: None,
            answer: Answer::default(),
            idc_behaviour: Behaviour::Ok,
            idc_targets: Vec::new(),
        }));
        let (c, d, s) = (calls.clone(), describe_calls.clone(), state.clone());
        let server =
            crate::http::HttpServer::start(move |req| handle(req, c.clone(), d.clone(), s.clone()));
        CountingServer {
            port: server.port,
            calls,
            describe_calls,
            state,
            _server: server,
        }
    }

    /// A server whose DescribeClusters (and GetWorkgroup) answers with `host` and `port`.
    pub fn describing(host: &str, port: u16) -> CountingServer {
        let server = CountingServer::start();
        server.set_describe_endpoint(Some((host, port)));
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GetClusterCredentials calls received so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The operations received so far, in order.
    pub fn operations(&self) -> Vec<String> {
        self.state.lock().unwrap().operations.clone()
    }

    /// DescribeClusters calls received so far.
    pub fn describe_calls(&self) -> usize {
        self.describe_calls.load(Ordering::SeqCst)
    }

    /// Makes DescribeClusters answer with this endpoint (`None`: AccessDenied).
    pub fn set_describe_endpoint(&self, endpoint: Option<(&str, u16)>) {
        self.state.lock().unwrap().describe_endpoint = endpoint.map(|(h, p)| (h.to_string(), p));
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        self.state.lock().unwrap().behaviour = b;
    }

    /// Makes the next `n` GetClusterCredentials calls answer with `b`.
    pub fn fail_next(&self, n: usize, b: Behaviour) {
        let mut s = self.state.lock().unwrap();
        s.failures_left = n;
        s.failing = b;
    }

    /// Makes GetClusterCredentials answer with this DbUser and DbPassword.
    pub fn set_login(&self, db_user: &str, password: &str) {
        self.state.lock().unwrap().login = Some((db_user.to_string(), password.to_string()));
    }

    pub fn set_delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    /// Makes every credential answer carry these fields instead of honest ones.
    pub fn set_answer(&self, answer: Answer) {
        self.state.lock().unwrap().answer = answer;
    }

    /// Makes GetIdentityCenterAuthToken answer with `b` (Ok, AccessDenied or
    /// UnsupportedOperation) in both protocols.
    pub fn set_idc_behaviour(&self, b: Behaviour) {
        self.state.lock().unwrap().idc_behaviour = b;
    }

    /// The targets of the GetIdentityCenterAuthToken calls received so far,
    /// in order: `cluster:ID` or `workgroup:NAME`.
    pub fn idc_calls(&self) -> Vec<String> {
        self.state.lock().unwrap().idc_targets.clone()
    }

    pub fn set_expires_in(&self, seconds: Option<i64>) {
        self.state.lock().unwrap().expires_in = seconds;
    }
}

fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.replace("%40", "@").replace("%2B", "+").replace('+', " "))
    })
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    calls: Arc<AtomicUsize>,
    describe_calls: Arc<AtomicUsize>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if req.method() == hyper::Method::GET && req.uri().path() == "/count" {
        // For bench/: the credential calls so far, as text.
        let n = calls.load(Ordering::SeqCst);
        return Ok(Response::builder()
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from(format!("{n}\n"))))
            .unwrap());
    }
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    let operation = target
        .clone()
        .or_else(|| form_value(&body, "Action"))
        .unwrap_or_default();
    state.lock().unwrap().operations.push(operation.clone());
    if let Some(target) = target {
        return Ok(serverless(&target, &body, &calls, &state));
    }
    let (behaviour, delay, expires_in, describe, login, answer) = {
        let s = state.lock().unwrap();
        (
            s.behaviour,
            s.delay,
            s.expires_in,
            s.describe_endpoint.clone(),
            s.login.clone(),
            s.answer.clone(),
        )
    };
    if form_value(&body, "Action").as_deref() == Some("DescribeClusters") {
        describe_calls.fetch_add(1, Ordering::SeqCst);
        let id = form_value(&body, "ClusterIdentifier").unwrap_or_default();
        return Ok(match describe {
            None => xml(
                403,
                error_xml(
                    "AccessDenied",
                    "User is not authorized to perform: redshift:DescribeClusters",
                ),
            ),
            Some((host, port)) => xml(
                200,
                format!(
                    "<DescribeClustersResponse xmlns=\"http://redshift.amazonaws.com/doc/2012-12-01/\">\
                     <DescribeClustersResult><Clusters><Cluster><ClusterIdentifier>{id}</ClusterIdentifier>\
                     <Endpoint><Address>{host}</Address><Port>{port}</Port></Endpoint></Cluster></Clusters>\
                     </DescribeClustersResult><ResponseMetadata><RequestId>d1</RequestId>\
                     </ResponseMetadata></DescribeClustersResponse>"
                ),
            ),
        });
    }
    if operation == "GetIdentityCenterAuthToken" {
        let cluster = form_value(&body, "ClusterIds.ClusterIdentifier.1").unwrap_or_default();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        return Ok(idc_reply(&state, &format!("cluster:{cluster}"), false));
    }
    if operation == "GetClusterCredentialsWithIAM" {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        let expiration =
            humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(900));
        return Ok(xml(
            200,
            format!(
                "<GetClusterCredentialsWithIAMResponse xmlns=\"http://redshift.amazonaws.com/doc/2012-12-01/\">\
                 <GetClusterCredentialsWithIAMResult><DbUser>IAMR:tester@role</DbUser>\
                 <DbPassword>iam-pw-{n}</DbPassword><Expiration>{expiration}</Expiration>\
                 <NextRefreshTime>{expiration}</NextRefreshTime></GetClusterCredentialsWithIAMResult>\
                 <ResponseMetadata><RequestId>i{n}</RequestId></ResponseMetadata>\
                 </GetClusterCredentialsWithIAMResponse>"
            ),
        ));
    }
    if form_value(&body, "Action").as_deref() != Some("GetClusterCredentials") {
        return Ok(xml(400, error_xml("InvalidAction", "unsupported action")));
    }
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    let behaviour = {
        let mut s = state.lock().unwrap();
        if s.failures_left > 0 {
            s.failures_left -= 1;
            s.failing
        } else {
            behaviour
        }
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(credentials_reply(
        behaviour, &body, n, expires_in, login, answer,
    ))
}

/// GetClusterCredentials' answer for call `n` under `behaviour`.
fn credentials_reply(
    behaviour: Behaviour,
    body: &str,
    n: usize,
    expires_in: Option<i64>,
    login: Option<(String, String)>,
    answer: Answer,
) -> Response<Full<Bytes>> {
    match behaviour {
        Behaviour::Ok => {
            let (user, password) = match login {
                Some((u, p)) => (u, p),
                None => (
                    format!("IAM:{}", form_value(body, "DbUser").unwrap_or_default()),
                    format!("counting-pw-{n}"),
                ),
            };
            let duration: i64 = form_value(body, "DurationSeconds")
                .and_then(|d| d.parse().ok())
                .unwrap_or(900);
            let expires =
                SystemTime::now() + Duration::from_secs(expires_in.unwrap_or(duration) as u64);
            let expiration = match answer.expiration {
                Some(e) => xml_time(e),
                None => humantime::format_rfc3339_seconds(expires).to_string(),
            };
            let user = xml_text(&answer.db_user.unwrap_or(user));
            let password = xml_text(&answer.db_password.unwrap_or(password));
            xml(
                200,
                format!(
                    "<GetClusterCredentialsResponse xmlns=\"http://redshift.amazonaws.com/doc/2012-12-01/\">\
                     <GetClusterCredentialsResult><DbUser>{user}</DbUser>\
                     <DbPassword>{password}</DbPassword><Expiration>{expiration}</Expiration>\
                     </GetClusterCredentialsResult><ResponseMetadata><RequestId>r{n}</RequestId>\
                     </ResponseMetadata></GetClusterCredentialsResponse>"
                ),
            )
        }
        Behaviour::Throttle => xml(400, error_xml("Throttling", "Rate exceeded")),
        Behaviour::ServerError => xml(500, error_xml("InternalFailure", "internal error")),
        Behaviour::Malformed => xml(200, "<html>not what you expected</html>".to_string()),
        Behaviour::ClusterNotFound => xml(400, error_xml("ClusterNotFound", "Cluster not found.")),
        Behaviour::AccessDenied => xml(
            403,
            error_xml(
                "AccessDenied",
                "User is not authorized to perform: redshift:GetClusterCredentials",
            ),
        ),
        Behaviour::ExpiredToken => xml(
            403,
            error_xml(
                "ExpiredToken",
                "The security token included in the request is expired",
            ),
        ),
        Behaviour::HostileError => xml(403, error_xml("AccessDenied", &xml_text(HOSTILE_MESSAGE))),
        Behaviour::UnsupportedOperation => xml(
            400,
            error_xml(
                "UnsupportedOperation",
                "The requested operation isn't supported.",
            ),
        ),
    }
}

/// GetIdentityCenterAuthToken's answer for `target`, in Redshift's XML or
/// (`json`) Serverless's JSON, as the SDKs' deserializers read it:
/// `Token` and `ExpirationTime` (RFC 3339) in the query protocol's result
/// element, `token` and `expirationTime` in awsJson1_1.
fn idc_reply(state: &Mutex<State>, target: &str, json: bool) -> Response<Full<Bytes>> {
    let (behaviour, n) = {
        let mut s = state.lock().unwrap();
        s.idc_targets.push(target.to_string());
        (s.idc_behaviour, s.idc_targets.len())
    };
    let expiration =
        humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3600));
    let token = format!("idc-token-{n}.QUJD/+=");
    let json_reply = |status: u16, v: serde_json::Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(v.to_string())))
            .unwrap()
    };
    match (behaviour, json) {
        (Behaviour::AccessDenied, false) => xml(
            403,
            error_xml(
                "AccessDenied",
                "User is not authorized to perform: redshift:GetIdentityCenterAuthToken",
            ),
        ),
        (Behaviour::AccessDenied, true) => json_reply(
            400,
            serde_json::json!({"__type": "AccessDeniedException",
                "message": "User is not authorized to perform: redshift-serverless:GetIdentityCenterAuthToken"}),
        ),
        (Behaviour::UnsupportedOperation, false) => xml(
            400,
            error_xml(
                "UnsupportedOperation",
                "Identity Center is not enabled for this cluster.",
            ),
        ),
        (_, false) => xml(
            200,
            format!(
                "<GetIdentityCenterAuthTokenResponse xmlns=\"http://redshift.amazonaws.com/doc/2012-12-01/\">\
                 <GetIdentityCenterAuthTokenResult><Token>{token}</Token>\
                 <ExpirationTime>{expiration}</ExpirationTime></GetIdentityCenterAuthTokenResult>\
                 <ResponseMetadata><RequestId>t{n}</RequestId></ResponseMetadata>\
                 </GetIdentityCenterAuthTokenResponse>"
            ),
        ),
        (_, true) => json_reply(
            200,
            serde_json::json!({"token": token, "expirationTime": expiration.to_string()}),
        ),
    }
}

/// Text for an XML element, with the five special characters escaped and
/// control characters as character references.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            c if c.is_control() => format!("&#{};", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// An epoch second as RFC 3339; past year 9999 it is written out by hand,
/// as a hostile server would.
fn xml_time(epoch: i64) -> String {
    if (0..253_402_300_800).contains(&epoch) {
        humantime::format_rfc3339_seconds(
            SystemTime::UNIX_EPOCH + Duration::from_secs(epoch as u64),
        )
        .to_string()
    } else {
        "99999-01-01T00:00:00Z".to_string()
    }
}

fn error_xml(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"http://redshift.amazonaws.com/doc/2012-12-01/\"><Error>\
         <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>e1</RequestId></ErrorResponse>"
    )
}

fn xml(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Redshift Serverless speaks JSON 1.1: the operation is in X-Amz-Target.
fn serverless(
    target: &str,
    body: &str,
    calls: &AtomicUsize,
    state: &Mutex<State>,
) -> Response<Full<Bytes>> {
    let request: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let json = |status: u16, v: serde_json::Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(v.to_string())))
            .unwrap()
    };
    match target {
        "RedshiftServerless.GetCredentials" => {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let (behaviour, answer) = {
                let s = state.lock().unwrap();
                (s.behaviour, s.answer.clone())
            };
            if behaviour == Behaviour::HostileError {
                return json(
                    400,
                    serde_json::json!({"__type": "AccessDeniedException", "message": HOSTILE_MESSAGE}),
                );
            }
            let duration = request["durationSeconds"].as_i64().unwrap_or(900);
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let expiration = answer.expiration.unwrap_or(now + duration);
            json(
                200,
                serde_json::json!({
                    "dbUser": answer.db_user.unwrap_or("IAMR:tester@role".into()),
                    "dbPassword": answer.db_password.unwrap_or(format!("serverless-pw-{n}")),
                    "expiration": expiration,
                    "nextRefreshTime": expiration,
                }),
            )
        }
        "RedshiftServerless.GetIdentityCenterAuthToken" => {
            let names: Vec<&str> = request["workgroupNames"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            idc_reply(state, &format!("workgroup:{}", names.join(",")), true)
        }
        "RedshiftServerless.GetWorkgroup" => {
            let name = request["workgroupName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let endpoint = state.lock().unwrap().describe_endpoint.clone();
            match endpoint {
                Some((host, port)) => json(
                    200,
                    serde_json::json!({"workgroup": {"workgroupName": name, "endpoint": {"address": host, "port": port}}}),
                ),
                None => json(
                    400,
                    serde_json::json!({"__type": "AccessDeniedException", "message": "not authorized"}),
                ),
            }
        }
        _ => json(
            400,
            serde_json::json!({"__type": "UnknownOperationException", "message": target}),
        ),
    }
}
