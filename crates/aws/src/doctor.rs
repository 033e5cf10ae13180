//! `doctor [NAME] [flags of get]`: checks what `get` would do with exactly those inputs, one line per check marked ok / warn / FAIL, without printing any secret.

use redshift_creds_core::cache;
use redshift_creds_core::cli::DoctorArgs;
use redshift_creds_core::config::{AwsScope, ProcessEnv, Resolved};
use redshift_creds_core::endpoint::Endpoint;
use redshift_creds_core::error::Error;
use redshift_creds_core::housekeeping::describe_dir;
use std::io::Write;

/// How a check came out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Ok,
    Warn,
    Fail,
}

/// The checks made so far.
struct Report {
    lines: Vec<(Mark, String)>,
}

impl Report {
    fn add(&mut self, mark: Mark, text: impl Into<String>) {
        self.lines.push((mark, text.into()));
    }

    fn passed(&self) -> bool {
        self.lines.iter().all(|(m, _)| *m != Mark::Fail)
    }

    /// One line per check; the marks coloured only on a terminal.
    fn render(&self, colour: bool) -> String {
        let mut text = String::new();
        for (mark, line) in &self.lines {
            let (word, code) = match mark {
                Mark::Ok => ("ok  ", "32"),
                Mark::Warn => ("warn", "33"),
                Mark::Fail => ("FAIL", "31"),
            };
            if colour {
                text.push_str(&format!("\x1b[{code}m{word}\x1b[0m {line}\n"));
            } else {
                text.push_str(&format!("{word} {line}\n"));
            }
        }
        text
    }
}

/// Checks what `get` would do with these inputs. Returns whether `get` would
/// succeed as far as doctor can tell. With no connection named at all, it
/// checks the machine only (and says so).
pub fn doctor(args: &DoctorArgs, out: &mut dyn Write) -> Result<bool, Error> {
    let mut report = Report { lines: Vec::new() };
    let config_ok = config_file(&mut report);
    if !config_ok && let Some(name) = &args.cred.name {
        // What the connection says (its region, endpoint_url, profile) is
        // unknown: checking AWS without it would report false failures.
        report.add(
            Mark::Fail,
            format!(
                "inputs: connection \"{}\" is not read: the config file is broken (see above)",
                redshift_creds_core::report::escape(name)
            ),
        );
        cache_checks(&mut report);
        report.add(
            Mark::Warn,
            "region, AWS credentials, endpoint and TLS: not checked (they depend on the \
             connection in the config file: fix the file, then run doctor again)",
        );
        return write(&report, out);
    }
    match crate::signin::wanted(&args.cred) {
        Ok(None) => {}
        Ok(Some(idc)) => {
            identity_center(&mut report, &idc);
            cache_checks(&mut report);
            return write(&report, out);
        }
        Err(e) => {
            report.add(Mark::Fail, format!("Identity Center: {e}"));
            cache_checks(&mut report);
            return write(&report, out);
        }
    }
    let resolved = inputs(&mut report, args);
    cache_checks(&mut report);
    let target = match &resolved {
        Some(r) => r.request.aws.clone(),
        None => AwsScope {
            profile: args.cred.profile.clone(),
            region: args.cred.region.clone(),
            endpoint_url: args.cred.endpoint_url.clone(),
            effective_profile: args
                .cred
                .profile
                .clone()
                .unwrap_or_else(|| "default".into()),
            access_key_id: None,
            identity: Vec::new(),
        },
    };
    let timeout = resolved
        .as_ref()
        .map_or(std::time::Duration::from_secs(20), |r| {
            r.settings.api_timeout
        });
    let aws = crate::session::check(&target, timeout);
    match (&target.region, &aws.region) {
        (Some(region), _) => report.add(Mark::Ok, format!("region: {region} (from the inputs)")),
        (None, Some(region)) => report.add(
            Mark::Ok,
            format!("region: {region} (from the AWS profile \"{}\")", target.effective_profile),
        ),
        (None, None) => report.add(
            Mark::Fail,
            "region: none: pass --region, set AWS_REGION, or set region in the connection or the AWS profile",
        ),
    }
    match &aws.identity {
        Ok(who) => report.add(Mark::Ok, format!("AWS credentials: {who}")),
        // With no region the principal cannot be asked; the region line fails.
        Err(why) if aws.region.is_none() => {
            report.add(Mark::Warn, format!("AWS credentials: {why}"))
        }
        Err(why) => report.add(Mark::Fail, format!("AWS credentials: {why}")),
    }
    match &resolved {
        Some(r) if host_given(r) || (aws.region.is_some() && aws.identity.is_ok()) => {
            if let Some(e) = endpoint(&mut report, r) {
                tls(&mut report, r, &e);
            }
        }
        Some(_) => report.add(
            Mark::Warn,
            "endpoint: not checked (needs a region and working AWS credentials)",
        ),
        None => report.add(Mark::Warn, "endpoint: not checked (no connection given)"),
    }
    if let Some(r) = &resolved {
        report.add(
            Mark::Warn,
            format!(
                "permission to call {:?}: not checked (the API has no dry run; get will tell)",
                r.request.api
            ),
        );
    }
    write(&report, out)
}

/// The browser sign-in's settings (issuer URL and region were checked by
/// [`crate::signin::wanted`]), the callback port, and what is cached. No AWS
/// credentials are needed, so none are checked.
fn identity_center(report: &mut Report, idc: &crate::signin::Idc) {
    use redshift_creds_core::cache::refresh::{Clock, SystemClock};
    use redshift_creds_core::credential::rfc3339;
    let esc = redshift_creds_core::report::escape;
    report.add(
        Mark::Ok,
        format!(
            "Identity Center: issuer {}, region {}, sign-in endpoint {}",
            esc(&idc.issuer_url),
            idc.region,
            esc(&idc.endpoint)
        ),
    );
    match crate::signin::port_is_free(idc.port) {
        Ok(()) => report.add(
            Mark::Ok,
            format!("callback port: 127.0.0.1:{} is free", idc.port),
        ),
        Err(why) => report.add(Mark::Fail, format!("callback port: {why}")),
    }
    let now = SystemClock.now();
    let (token, registration) = crate::signin::cached(idc);
    match token {
        Some(t) if t.expiration > now => report.add(
            Mark::Ok,
            format!(
                "Identity Center token: cached, expires {} (in {} s){}",
                rfc3339(t.expiration),
                t.expiration - now,
                if t.refresh_token.is_some() {
                    ", renewable without a browser"
                } else {
                    ""
                }
            ),
        ),
        Some(t) if t.refresh_token.is_some() => report.add(
            Mark::Ok,
            "Identity Center token: expired, renewable without a browser",
        ),
        _ => report.add(
            Mark::Warn,
            "Identity Center token: none usable cached; get will open a browser to sign in",
        ),
    }
    match registration {
        Some(r) if r.expiration > now => report.add(
            Mark::Ok,
            format!(
                "client registration: cached until {}",
                rfc3339(r.expiration)
            ),
        ),
        _ => report.add(
            Mark::Warn,
            "client registration: none cached; get will register a client first",
        ),
    }
}

/// Prints the report; whether every check passed.
fn write(report: &Report, out: &mut dyn Write) -> Result<bool, Error> {
    use std::io::IsTerminal;
    let colour = std::io::stdout().is_terminal()
        && redshift_creds_core::env::Env::var_os(&redshift_creds_core::env::ProcessEnv, "NO_COLOR")
            .is_none();
    out.write_all(report.render(colour).as_bytes())
        .map_err(Error::Output)?;
    Ok(report.passed())
}

/// The inputs, resolved exactly as `get` resolves them.
fn inputs(report: &mut Report, args: &DoctorArgs) -> Option<Resolved> {
    let c = &args.cred;
    let named = c.name.is_some()
        || c.cluster_identifier.is_some()
        || c.workgroup.is_some()
        || c.custom_domain_name.is_some()
        || args.conn.host.is_some();
    match redshift_creds_core::commands::resolve(c, &args.conn) {
        Ok(r) => {
            report.add(
                Mark::Ok,
                format!(
                    "inputs: {} via {}, resolved as get would:",
                    r.request.describe(),
                    r.request.api.name(),
                ),
            );
            for (name, value, origin) in r.origins() {
                let value = redshift_creds_core::report::escape(&value);
                report.add(Mark::Ok, format!("  {name} = {value} (from {origin})"));
            }
            Some(r)
        }
        Err(e) if !named => {
            tracing::debug!(error = %e, "no connection to resolve");
            report.add(
                Mark::Warn,
                "inputs: no connection given (name one, or pass the flags of get): checking this machine only",
            );
            None
        }
        Err(e) => {
            report.add(Mark::Fail, format!("inputs: {e}"));
            None
        }
    }
}

/// The config file: found, its connections, or why it cannot be read.
/// Whether it can be read (a missing file can).
fn config_file(report: &mut Report) -> bool {
    match redshift_creds_core::config_file::path(&ProcessEnv) {
        None => report.add(
            Mark::Warn,
            "config file: no config directory is known (set REDSHIFT_CREDS_CONFIG)",
        ),
        Some(path) => match redshift_creds_core::config_file::load(&path) {
            Ok(None) => report.add(
                Mark::Ok,
                format!("config file: {} (not found; optional)", path.display()),
            ),
            Ok(Some(f)) => {
                let names: Vec<&str> = f.connections.keys().map(String::as_str).collect();
                report.add(
                    Mark::Ok,
                    format!(
                        "config file: {} ({} connection(s){}{})",
                        path.display(),
                        names.len(),
                        if names.is_empty() { "" } else { ": " },
                        names.join(", ")
                    ),
                );
            }
            Err(e) => {
                report.add(Mark::Fail, format!("config file: {e}"));
                return false;
            }
        },
    }
    true
}

/// The cache and lock directory, and the store `auto` picks, probed with a
/// key no other run uses (and always removed).
fn cache_checks(report: &mut Report) {
    let dir = redshift_creds_core::config::cache_dir(&ProcessEnv);
    match &dir {
        Err(e) => report.add(Mark::Fail, format!("cache and lock directory: {e}")),
        Ok(None) => report.add(
            Mark::Fail,
            "cache and lock directory: none known (set REDSHIFT_CREDS_CACHE_DIR)",
        ),
        Ok(Some(d)) => {
            let mut ok = true;
            let text = format!("cache and lock directory: {}", describe_dir(d, &mut ok));
            report.add(if ok { Mark::Ok } else { Mark::Fail }, text);
        }
    }
    let dir = dir.ok().flatten();
    // A key unique to this run, always removed: see cache::probe_auto.
    // A working keyring is ok; a fallback, whatever its wording, a warning.
    let (mark, store) = match cache::probe_auto(dir.as_deref()) {
        Ok(keyring) => (Mark::Ok, keyring),
        Err(fallback) => (Mark::Warn, fallback),
    };
    report.add(mark, format!("cache store for --cache auto: {store}"));
}

/// Whether the endpoint is given (a host or custom domain name), so finding
/// it needs no AWS call.
fn host_given(r: &Resolved) -> bool {
    r.client.host.is_some() || r.request.custom_domain_name.is_some()
}

/// The endpoint: the given host, or DescribeClusters / GetWorkgroup.
fn endpoint(report: &mut Report, r: &Resolved) -> Option<Endpoint> {
    let aws = crate::source::Aws::new(r);
    match redshift_creds_core::commands::endpoint(r, &aws) {
        Ok(e) => {
            report.add(Mark::Ok, format!("endpoint: {}:{}", e.host, e.port));
            Some(e)
        }
        Err(e) => {
            report.add(Mark::Fail, format!("endpoint: {e}"));
            None
        }
    }
}

/// How long the TLS check waits for the database host.
const TLS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The TLS handshake with the database, as the proxy makes it (sslmode and
/// sslrootcert as exec would pass them to a client).
fn tls(report: &mut Report, r: &Resolved, e: &Endpoint) {
    use redshift_creds_proxy::{TlsCheckError, Upstream};
    let tls = r.tls();
    let at = format!("{}:{}", e.host, e.port);
    let settings = format!(
        "sslmode {}{}",
        tls.mode.as_str(),
        tls.root_cert
            .as_ref()
            .map(|p| format!(", sslrootcert {}", p.display()))
            .unwrap_or_default()
    );
    let config = redshift_creds_proxy::upstream_tls(
        crate::proxy::engine_mode(tls.mode),
        tls.root_cert.as_deref(),
    );
    let config = match config {
        Ok(c) => c,
        Err(err) => return report.add(Mark::Fail, format!("TLS: {err} ({settings})")),
    };
    let up = Upstream {
        host: e.host.clone(),
        port: e.port,
        tls: config,
        db_name: None,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return report.add(Mark::Warn, format!("TLS: not checked: {err}")),
    };
    let outcome = runtime.block_on(async {
        tokio::time::timeout(TLS_TIMEOUT, redshift_creds_proxy::check_tls(&up)).await
    });
    let (mark, text) = match outcome {
        Ok(Ok(version)) => (
            Mark::Ok,
            format!("{at} answers with {version}, certificate accepted"),
        ),
        // A cluster in a VPC is often out of reach from where doctor runs.
        Ok(Err(TlsCheckError::Unreachable(why))) => (Mark::Warn, format!("not checked: {why}")),
        Ok(Err(TlsCheckError::Failed(why))) => (Mark::Fail, why),
        Err(_) => (
            Mark::Warn,
            format!(
                "not checked: {at} gave no answer within {} s",
                TLS_TIMEOUT.as_secs()
            ),
        ),
    };
    let text = redshift_creds_core::report::escape(&text);
    report.add(mark, format!("TLS: {text} ({settings})"));
}
