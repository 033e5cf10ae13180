//! The `--http` port: `/startup`, `/liveness`, `/readiness`, `/metrics` and
//! `POST /quitquitquit` over HTTP/1.1, answered from the proxy's state without dialing
//! anything. Nothing served here is secret, so any address is allowed.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::Semaphore;

use crate::ctx::{Shared, TargetCtx};
use crate::metrics::TargetMetrics;

/// HTTP connections served at once; past that a new one is closed at once.
const MAX_HTTP_CONNECTIONS: usize = 64;
/// How long one HTTP connection may take, from accept to the end of its answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a request gets: status, content type and body. Pure, so every route is tested
/// without a socket.
pub(crate) fn route(
    method: &Method,
    path: &str,
    shared: &Shared,
    targets: &[Arc<TargetCtx>],
) -> (StatusCode, &'static str, String) {
    let text = "text/plain; charset=utf-8";
    let status = |ok: bool, what: &str| {
        if ok {
            (StatusCode::OK, text, "ok\n".to_owned())
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, text, format!("{what}\n"))
        }
    };
    let health = &shared.health;
    match (method, path) {
        (&Method::GET, "/startup") => status(health.started.load(Ordering::Acquire), "starting"),
        (&Method::GET, "/liveness") => status(true, ""),
        (&Method::GET, "/readiness") => {
            if health.draining.load(Ordering::Acquire) {
                status(false, "draining")
            } else if !health.started.load(Ordering::Acquire) {
                status(false, "starting")
            } else {
                status(!shared.gate.at_limit(), "at --max-connections")
            }
        }
        (&Method::GET, "/metrics") => {
            let t: Vec<TargetMetrics<'_>> = targets
                .iter()
                .map(|t| TargetMetrics {
                    name: &t.name,
                    source: &t.source,
                    expiry: &t.expiry,
                })
                .collect();
            let body = shared.metrics.render(shared.gate.sessions(), &t);
            (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            )
        }
        (&Method::POST, "/quitquitquit") => {
            health.quit.notify_one();
            (StatusCode::OK, text, "shutting down\n".to_owned())
        }
        (_, "/startup" | "/liveness" | "/readiness" | "/metrics" | "/quitquitquit") => (
            StatusCode::METHOD_NOT_ALLOWED,
            text,
            "method not allowed\n".to_owned(),
        ),
        _ => (StatusCode::NOT_FOUND, text, "not found\n".to_owned()),
    }
}

/// Serves the HTTP port until the task is dropped.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    targets: Arc<Vec<Arc<TargetCtx>>>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // dropped: closed at once
        };
        let (shared, targets) = (shared.clone(), targets.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (status, kind, body) = route(req.method(), req.uri().path(), &shared, &targets);
                let response = Response::builder()
                    .status(status)
                    .header("content-type", kind)
                    .body(Full::new(Bytes::from(body)))
                    .unwrap_or_default();
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(HTTP_TIMEOUT, conn).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Gate;

    fn shared(max_connections: Option<usize>) -> Shared {
        Shared {
            gate: Arc::new(Gate::new(vec![0], 1 << 20, max_connections)),
            client_tls: None,
            cancels: Arc::default(),
            dial: Arc::new(crate::dial::TlsDial),
            kill: tokio::sync::watch::channel(false).1,
            metrics: crate::metrics::Metrics::default(),
            health: crate::lifecycle::Health::default(),
        }
    }

    fn get(path: &str, s: &Shared) -> StatusCode {
        route(&Method::GET, path, s, &[]).0
    }

    #[test]
    fn probes_follow_the_lifecycle() {
        let s = shared(Some(1));
        assert_eq!(get("/startup", &s), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/readiness", &s), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/liveness", &s), StatusCode::OK);
        s.health.started.store(true, Ordering::Release);
        assert_eq!(get("/startup", &s), StatusCode::OK);
        assert_eq!(get("/readiness", &s), StatusCode::OK);
        let slot = s.gate.session().unwrap();
        assert_eq!(
            get("/readiness", &s),
            StatusCode::SERVICE_UNAVAILABLE,
            "at --max-connections"
        );
        drop(slot);
        assert_eq!(get("/readiness", &s), StatusCode::OK);
        s.health.draining.store(true, Ordering::Release);
        assert_eq!(get("/readiness", &s), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get("/liveness", &s), StatusCode::OK, "alive while draining");
    }

    #[test]
    fn metrics_quit_and_unknown_paths() {
        let s = shared(None);
        let (status, kind, body) = route(&Method::GET, "/metrics", &s, &[]);
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/plain; version=0.0.4"));
        assert!(
            body.contains("redshift_creds_proxy_open_connections 0"),
            "{body}"
        );
        assert_eq!(get("/quitquitquit", &s), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(get("/", &s), StatusCode::NOT_FOUND);
        assert_eq!(get("/metrics/x", &s), StatusCode::NOT_FOUND);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let quit = s.health.quit.notified();
            assert_eq!(
                route(&Method::POST, "/quitquitquit", &s, &[]).0,
                StatusCode::OK
            );
            tokio::time::timeout(Duration::from_secs(1), quit)
                .await
                .expect("POST /quitquitquit wakes the shutdown");
        });
    }
}
