//! Who may start a session, decided at accept before a byte is read: the peer check, the
//! caps on connections still in their startup (per uid and in total), the session budget
//! that keeps descriptors in reserve, and rate-limited warnings for refusals.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::peer::{self, Refusal};
use crate::wire;
use tokio::net::{TcpStream, UnixStream};

/// An accepted connection.
pub(crate) enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// How many connections of one uid may be in their startup (TLS handshake, startup
/// packet) at once: room for a burst such as 200 dbt threads, not for a flood.
pub(crate) const STARTING_PER_UID: usize = 256;
/// How many connections in all may be in their startup at once.
pub(crate) const STARTING_TOTAL: usize = 512;
/// How many refused connections may linger at once, so their client reads the refusal
/// before the connection closes; past that, refused connections close at once.
pub(crate) const LINGERING: usize = 64;
/// How long a refused connection lingers at most.
const LINGER_FOR: Duration = Duration::from_secs(1);
/// Descriptors kept free beyond every session, starting connection and lingering refusal:
/// the listeners, the runtime, a netlink query, the AWS calls of a refresh and the owner's
/// next accept.
pub(crate) const RESERVE_FDS: u64 = 64;

/// The admission rules of one proxy.
pub(crate) struct Gate {
    allowed: Vec<u32>,
    starting: Mutex<Starting>,
    sessions: AtomicUsize,
    /// Descriptors that sessions (two each), starting connections and lingering refusals
    /// (one each) may hold together.
    fd_budget: usize,
    /// `--max-connections`.
    max_connections: Option<usize>,
    lingering: AtomicUsize,
    refusals: RateLimited,
    pub(crate) accept_errors: RateLimited,
}

#[derive(Default)]
struct Starting {
    total: usize,
    by_uid: HashMap<u32, usize>,
}

/// A refused connection: what to tell the client and the log.
#[derive(Debug)]
pub(crate) struct Refused {
    pub peer: String,
    pub reason: Reason,
}

#[derive(Debug)]
pub(crate) enum Reason {
    /// The peer check said no.
    Peer(Refusal),
    /// Too many connections of this uid, or in all, are still in their startup.
    Starting { uid: u32 },
}

impl Refused {
    /// SQLSTATE and message for the client's ErrorResponse.
    fn answer(&self) -> (&'static str, String) {
        match &self.reason {
            Reason::Peer(Refusal::Uid(u)) => (
                "28000",
                format!(
                    "connection refused: uid {u} may not use this proxy (only the uids it allows may: its own, and those of --allow-uid)"
                ),
            ),
            Reason::Peer(Refusal::Unknown(why)) => (
                "28000",
                format!("connection refused: the peer cannot be identified ({why})"),
            ),
            Reason::Starting { .. } => (
                "53300",
                "too many connections are starting at once; try again".to_owned(),
            ),
        }
    }

    /// Best effort, without waiting or reading: one ErrorResponse, then the caller drops the
    /// connection.
    pub(crate) fn tell(&self, conn: &Conn) {
        let (code, msg) = self.answer();
        let bytes = wire::error_response(code, &msg);
        let _ = match conn {
            Conn::Tcp(s) => s.try_write(&bytes),
            Conn::Unix(s) => s.try_write(&bytes),
        };
    }

    /// The `reason` label of `redshift_creds_proxy_refused_total`.
    pub(crate) fn metric(&self) -> crate::metrics::RefusedBy {
        match self.reason {
            Reason::Peer(_) => crate::metrics::RefusedBy::Uid,
            Reason::Starting { .. } => crate::metrics::RefusedBy::Limit,
        }
    }
}

/// A connection let in: who it is, and its place among the starting connections, given
/// back when it is dropped.
pub(crate) struct Admitted {
    pub peer: String,
    pub uid: u32,
    starting: Option<StartingSlot>,
}

impl Admitted {
    /// The startup is over (a session or a cancel request follows): free the slot.
    pub(crate) fn started(&mut self) {
        self.starting = None;
    }
}

struct StartingSlot {
    gate: Arc<Gate>,
    uid: u32,
}

impl Drop for StartingSlot {
    fn drop(&mut self) {
        let mut s = self.gate.starting.lock().unwrap_or_else(|e| e.into_inner());
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.by_uid.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.by_uid.remove(&self.uid);
            }
        }
    }
}

/// One of the sessions the descriptor budget allows; given back when dropped.
pub(crate) struct SessionSlot(Arc<Gate>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    /// A gate for `allowed` uids whose sessions fit in `fd_limit` descriptors, and in
    /// `max_connections` when set.
    pub(crate) fn new(allowed: Vec<u32>, fd_limit: u64, max_connections: Option<usize>) -> Gate {
        Gate {
            allowed,
            starting: Mutex::new(Starting::default()),
            sessions: AtomicUsize::new(0),
            fd_budget: usize::try_from(fd_limit.saturating_sub(RESERVE_FDS)).unwrap_or(usize::MAX),
            lingering: AtomicUsize::new(0),
            max_connections,
            refusals: RateLimited::new(Duration::from_secs(10), 5),
            accept_errors: RateLimited::new(Duration::from_secs(10), 5),
        }
    }

    /// The peer check and the startup caps for a connection just accepted. Nothing has been
    /// read from it; a refusal should be told and dropped at once.
    pub(crate) fn admit(self: &Arc<Self>, conn: &Conn) -> Result<Admitted, Refused> {
        let (peer, checked) = identify(conn, &self.allowed);
        let uid = checked.map_err(|r| Refused {
            peer: peer.clone(),
            reason: Reason::Peer(r),
        })?;
        let mut s = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        let mine = s.by_uid.get(&uid).copied().unwrap_or(0);
        if mine >= STARTING_PER_UID
            || s.total >= STARTING_TOTAL
            || self.fds_in_use(s.total) + 1 > self.fd_budget
        {
            return Err(Refused {
                peer,
                reason: Reason::Starting { uid },
            });
        }
        s.total += 1;
        *s.by_uid.entry(uid).or_default() += 1;
        Ok(Admitted {
            peer,
            uid,
            starting: Some(StartingSlot {
                gate: self.clone(),
                uid,
            }),
        })
    }

    /// Descriptors held by sessions, `starting` connections and lingering refusals.
    fn fds_in_use(&self, starting: usize) -> usize {
        2 * self.sessions.load(Ordering::Acquire)
            + starting
            + self.lingering.load(Ordering::Acquire)
    }

    /// A place for one more session, or why there is none (for the client's 53300).
    pub(crate) fn session(self: &Arc<Self>) -> Result<SessionSlot, String> {
        let starting = self
            .starting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .total;
        // Taken first, then checked: two clients racing for the last place cannot both get it.
        let before = self.sessions.fetch_add(1, Ordering::AcqRel);
        let slot = SessionSlot(self.clone());
        if let Some(max) = self.max_connections
            && before >= max
        {
            return Err(format!(
                "too many connections for redshift-creds proxy ({max})"
            ));
        }
        if self.fds_in_use(starting) > self.fd_budget {
            return Err(format!(
                "too many connections for redshift-creds proxy ({before} open; its descriptor limit is reached)"
            ));
        }
        Ok(slot)
    }

    /// Whether `--max-connections` sessions are open (readiness then says 503).
    pub(crate) fn at_limit(&self) -> bool {
        self.max_connections.is_some_and(|m| self.sessions() >= m)
    }

    /// How many sessions are open.
    pub(crate) fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Acquire)
    }

    /// Closes a refused connection, after its refusal was written. When few are lingering,
    /// it first sends FIN and reads (and drops) for up to a second what the client had sent,
    /// so that closing with unread bytes does not reset the connection before the client
    /// has read why it was refused. It is never answered again.
    pub(crate) async fn close_refused(self: Arc<Self>, conn: Conn) {
        let n = self.lingering.fetch_add(1, Ordering::AcqRel);
        if n < LINGERING {
            let drain = async {
                match conn {
                    Conn::Tcp(s) => drain(s).await,
                    Conn::Unix(s) => drain(s).await,
                }
            };
            let _ = tokio::time::timeout(LINGER_FOR, drain).await;
        } else {
            drop(conn);
        }
        self.lingering.fetch_sub(1, Ordering::AcqRel);
    }

    /// Logs a refusal, at most a few lines per window; the rest are counted and said once.
    pub(crate) fn log_refusal(&self, target: &str, r: &Refused) {
        if let Some(suppressed) = self.refusals.allow() {
            let reason = match &r.reason {
                Reason::Peer(p) => p.to_string(),
                Reason::Starting { uid } => {
                    format!("uid {uid} has too many connections in their startup")
                }
            };
            tracing::warn!(target = %target, peer = %r.peer, %reason, suppressed, "connection refused");
        }
    }
}

/// Sends FIN, then reads and drops up to 4 KiB until the client closes.
async fn drain<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = s.shutdown().await;
    let mut buf = [0u8; 512];
    let mut left = 4096usize;
    while let Ok(k @ 1..) = s.read(&mut buf).await {
        left = left.saturating_sub(k);
        if left == 0 {
            break;
        }
    }
}

/// The peer's description for logs and the verdict of the peer check, failing closed.
fn identify(conn: &Conn, allowed: &[u32]) -> (String, Result<u32, Refusal>) {
    match conn {
        Conn::Unix(s) => match s.peer_cred() {
            Ok(c) => {
                let uid = c.uid();
                let verdict = if peer::is_allowed(uid, allowed) {
                    Ok(uid)
                } else {
                    Err(Refusal::Uid(uid))
                };
                (format!("unix:pid={}", c.pid().unwrap_or(0)), verdict)
            }
            Err(_) => (
                "unix".to_owned(),
                Err(Refusal::Unknown("SO_PEERCRED failed")),
            ),
        },
        Conn::Tcp(s) => {
            let (Ok(p), Ok(l)) = (s.peer_addr(), s.local_addr()) else {
                return (
                    "tcp".to_owned(),
                    Err(Refusal::Unknown("the connection has no addresses")),
                );
            };
            // One exact netlink query: fast enough to make inline, so a refused peer never
            // holds a descriptor longer than this.
            (
                p.to_string(),
                peer::check_tcp(peer::tcp_peer(p, l), allowed),
            )
        }
    }
}

/// At most `burst` events per `window`; counts the rest.
pub(crate) struct RateLimited {
    window: Duration,
    burst: u32,
    state: Mutex<(Instant, u32, u64)>,
}

impl RateLimited {
    pub(crate) fn new(window: Duration, burst: u32) -> RateLimited {
        RateLimited {
            window,
            burst,
            state: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Some(events suppressed since the last allowed one) when this event may be logged.
    pub(crate) fn allow(&self) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now.duration_since(s.0) >= self.window {
            s.0 = now;
            s.1 = 0;
        }
        if s.1 < self.burst {
            s.1 += 1;
            Some(std::mem::take(&mut s.2))
        } else {
            s.2 += 1;
            None
        }
    }
}

/// Raises the soft descriptor limit to the hard one and returns the limit now in force.
pub(crate) fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            tracing::debug!(error = %e, "cannot raise the descriptor limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_then_counts_what_it_dropped() {
        let r = RateLimited::new(Duration::from_secs(3600), 2);
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), None);
        assert_eq!(r.allow(), None);
        let r = RateLimited::new(Duration::ZERO, 1);
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), Some(0), "a new window");
    }

    #[test]
    fn the_session_budget_keeps_a_reserve() {
        let g = Arc::new(Gate::new(vec![1], RESERVE_FDS + 4, None));
        let a = g.session().unwrap();
        let _b = g.session().unwrap();
        let e = g
            .session()
            .err()
            .expect("two sessions fit in four descriptors");
        assert!(e.contains("descriptor limit"), "{e}");
        assert_eq!(g.sessions(), 2, "a refused place is given back");
        drop(a);
        assert!(g.session().is_ok(), "a freed place is given again");
    }

    #[test]
    fn max_connections_refuses_the_next_and_frees_a_place() {
        let g = Arc::new(Gate::new(vec![1], 1 << 20, Some(2)));
        let a = g.session().unwrap();
        let _b = g.session().unwrap();
        assert!(g.at_limit());
        let e = g.session().err().unwrap();
        assert_eq!(e, "too many connections for redshift-creds proxy (2)");
        drop(a);
        assert!(!g.at_limit());
        assert!(g.session().is_ok());
    }

    #[test]
    fn raises_the_soft_limit_to_the_hard_one() {
        use rustix::process::{Resource, getrlimit};
        let limit = raise_fd_limit();
        let now = getrlimit(Resource::Nofile);
        assert_eq!(now.current, now.maximum);
        assert_eq!(Some(limit), now.current);
    }

    #[tokio::test]
    async fn caps_starting_connections_per_uid() {
        let me = peer::own_uid();
        let g = Arc::new(Gate::new(vec![me], 1 << 20, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let mut held = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..=STARTING_PER_UID {
            clients.push(tokio::net::UnixStream::connect(&path).await.unwrap());
            let conn = Conn::Unix(l.accept().await.unwrap().0);
            held.push(g.admit(&conn).map(|a| (a, conn)));
        }
        let refused = held.pop().unwrap().err().expect("one over the cap");
        assert!(matches!(refused.reason, Reason::Starting { uid } if uid == me));
        // A connection whose startup is over frees its slot.
        let (mut first, _) = held.remove(0).ok().unwrap();
        first.started();
        clients.push(tokio::net::UnixStream::connect(&path).await.unwrap());
        let conn = Conn::Unix(l.accept().await.unwrap().0);
        assert!(g.admit(&conn).is_ok());
    }

    #[tokio::test]
    async fn refuses_a_uid_it_does_not_allow_on_a_unix_socket() {
        let g = Arc::new(Gate::new(vec![peer::own_uid() + 1], 1 << 20, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let _c = tokio::net::UnixStream::connect(&path).await.unwrap();
        let conn = Conn::Unix(l.accept().await.unwrap().0);
        let r = g.admit(&conn).err().expect("refused");
        assert!(matches!(r.reason, Reason::Peer(Refusal::Uid(u)) if u == peer::own_uid()));
        assert!(r.answer().1.contains("may not use this proxy"));
    }
}
