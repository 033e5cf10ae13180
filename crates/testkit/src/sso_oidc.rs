//! A fake SSO-OIDC API for the Identity Center browser sign-in: RegisterClient, the authorize page, and CreateToken with its PKCE check and refresh grant.
//!
//! The wire shapes are aws-sdk-ssooidc's restJson ones: `POST /client/register`
//! and `POST /token` with camelCase JSON bodies. `GET /authorize` plays the
//! person at the sign-in page: it redirects at once to `redirect_uri` with a
//! fresh `code` and the `state` it was given.

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Debug, Default)]
struct State {
    /// client id → (secret, redirect URIs, scopes).
    clients: HashMap<String, (String, Vec<String>)>,
    /// code → (client id, challenge, redirect URI).
    codes: HashMap<String, (String, String, String)>,
    /// refresh token → client id.
    refresh_tokens: HashMap<String, String>,
    registers: usize,
    authorizes: usize,
    code_grants: usize,
    refresh_grants: usize,
    issued: usize,
    /// Seconds until expiry of issued access tokens.
    expires_in: i64,
    /// Refresh grants are refused.
    refuse_refresh: bool,
    /// Refresh grants answer without a new refresh token (no rotation).
    keep_refresh: bool,
    /// The authorize page sends back this state instead of the one it was given.
    wrong_state: Option<String>,
    /// The last RegisterClient body and the last CreateToken body.
    last_register: Option<Value>,
    last_token: Option<Value>,
}

/// The fake API on a loopback port, in its own thread with its own runtime.
pub struct SsoOidcServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    _server: crate::http::HttpServer,
}

impl SsoOidcServer {
    /// Starts the server; access tokens live an hour.
    pub fn start() -> SsoOidcServer {
        let state = Arc::new(Mutex::new(State {
            expires_in: 3600,
            ..State::default()
        }));
        let s = state.clone();
        let server = crate::http::HttpServer::start(move |req| handle(req, s.clone()));
        SsoOidcServer {
            port: server.port,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// RegisterClient calls so far.
    pub fn registers(&self) -> usize {
        self.state.lock().unwrap().registers
    }

    /// Authorize pages served so far: browser sign-ins.
    pub fn sign_ins(&self) -> usize {
        self.state.lock().unwrap().authorizes
    }

    /// CreateToken calls with the authorization_code grant.
    pub fn code_grants(&self) -> usize {
        self.state.lock().unwrap().code_grants
    }

    /// CreateToken calls with the refresh_token grant.
    pub fn refresh_grants(&self) -> usize {
        self.state.lock().unwrap().refresh_grants
    }

    /// The last RegisterClient request body.
    pub fn last_register(&self) -> Option<Value> {
        self.state.lock().unwrap().last_register.clone()
    }

    /// The last CreateToken request body.
    pub fn last_token_request(&self) -> Option<Value> {
        self.state.lock().unwrap().last_token.clone()
    }

    /// Access tokens issued from now on live this long.
    pub fn set_expires_in(&self, seconds: i64) {
        self.state.lock().unwrap().expires_in = seconds;
    }

    /// Refuse every refresh grant (invalid_grant).
    pub fn refuse_refresh(&self, refuse: bool) {
        self.state.lock().unwrap().refuse_refresh = refuse;
    }

    /// Refresh grants answer with no refresh token: the old one stays valid.
    pub fn without_rotation(&self) {
        self.state.lock().unwrap().keep_refresh = true;
    }

    /// The authorize page redirects with this state instead of the caller's.
    pub fn send_wrong_state(&self, state: &str) {
        self.state.lock().unwrap().wrong_state = Some(state.to_string());
    }
}

type Reply = Response<Full<Bytes>>;

fn json_reply(status: u16, body: &Value) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// An SSO-OIDC error: the type in the header the SDK reads, the OAuth error in the body.
fn error(status: u16, kind: &str, oauth: &str, description: &str) -> Reply {
    let mut r = json_reply(
        status,
        &json!({ "error": oauth, "error_description": description }),
    );
    r.headers_mut()
        .insert("x-amzn-errortype", kind.parse().unwrap());
    r
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn query(uri: &hyper::Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space), as a form does.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], escaped) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Reply, std::convert::Infallible> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = route(&method, &uri, &body, &mut state.lock().unwrap());
    // A small pause, so concurrent callers really overlap.
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(reply)
}

fn route(method: &hyper::Method, uri: &hyper::Uri, body: &[u8], s: &mut State) -> Reply {
    match (method.as_str(), uri.path()) {
        ("GET", "/authorize") => authorize(s, &query(uri)),
        ("POST", "/client/register") => match serde_json::from_slice::<Value>(body) {
            Ok(v) => register(s, v),
            Err(_) => error(
                400,
                "InvalidRequestException",
                "invalid_request",
                "not JSON",
            ),
        },
        ("POST", "/token") => match serde_json::from_slice::<Value>(body) {
            Ok(v) => token(s, v),
            Err(_) => error(
                400,
                "InvalidRequestException",
                "invalid_request",
                "not JSON",
            ),
        },
        _ => error(404, "NotFound", "not_found", "no such operation"),
    }
}

fn register(s: &mut State, v: Value) -> Reply {
    s.registers += 1;
    let n = s.registers;
    let uris: Vec<String> = v["redirectUris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let (id, secret) = (format!("client-{n}"), format!("client-secret-{n}"));
    s.clients.insert(id.clone(), (secret.clone(), uris));
    s.last_register = Some(v);
    json_reply(
        200,
        &json!({
            "clientId": id,
            "clientSecret": secret,
            "clientIdIssuedAt": now(),
            "clientSecretExpiresAt": now() + 90 * 86_400,
        }),
    )
}

fn authorize(s: &mut State, q: &HashMap<String, String>) -> Reply {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let Some((_, uris)) = s.clients.get(&get("client_id")) else {
        return error(
            400,
            "InvalidClientException",
            "invalid_client",
            "unknown client",
        );
    };
    let redirect = get("redirect_uri");
    if !uris.contains(&redirect)
        || get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || get("scopes") != "redshift:connect"
    {
        return error(
            400,
            "InvalidRequestException",
            "invalid_request",
            "bad authorize",
        );
    }
    s.authorizes += 1;
    let code = format!("code-{}", s.authorizes);
    s.codes.insert(
        code.clone(),
        (get("client_id"), get("code_challenge"), redirect.clone()),
    );
    let state = s.wrong_state.clone().unwrap_or_else(|| get("state"));
    Response::builder()
        .status(302)
        .header("location", format!("{redirect}/?code={code}&state={state}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn token(s: &mut State, v: Value) -> Reply {
    let field = |k: &str| v[k].as_str().unwrap_or("").to_string();
    s.last_token = Some(v.clone());
    let client = field("clientId");
    match s.clients.get(&client) {
        Some((secret, _)) if *secret == field("clientSecret") => {}
        _ => {
            return error(
                401,
                "InvalidClientException",
                "invalid_client",
                "bad client",
            );
        }
    }
    match field("grantType").as_str() {
        "authorization_code" => {
            s.code_grants += 1;
            let Some((owner, challenge, redirect)) = s.codes.remove(&field("code")) else {
                return error(
                    400,
                    "InvalidGrantException",
                    "invalid_grant",
                    "unknown code",
                );
            };
            let digest = sha2::Sha256::digest(field("codeVerifier").as_bytes());
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            if owner != client || computed != challenge || redirect != field("redirectUri") {
                return error(
                    400,
                    "InvalidGrantException",
                    "invalid_grant",
                    "PKCE check failed",
                );
            }
        }
        "refresh_token" => {
            s.refresh_grants += 1;
            let known = s.refresh_tokens.get(&field("refreshToken")) == Some(&client);
            if s.refuse_refresh || !known {
                return error(
                    400,
                    "InvalidGrantException",
                    "invalid_grant",
                    "refresh refused",
                );
            }
        }
        _ => {
            return error(
                400,
                "UnsupportedGrantTypeException",
                "unsupported_grant_type",
                "grant",
            );
        }
    }
    s.issued += 1;
    let n = s.issued;
    let mut answer = json!({
        "accessToken": format!("access-token-{n}"),
        "tokenType": "Bearer",
        "expiresIn": s.expires_in,
    });
    if !(s.keep_refresh && field("grantType") == "refresh_token") {
        let refresh = format!("refresh-token-{n}");
        s.refresh_tokens.insert(refresh.clone(), client);
        answer["refreshToken"] = json!(refresh);
    }
    json_reply(200, &answer)
}
