//! The proxy's lifecycle as its probes and sessions see it: started, draining, stopped,
//! and the `/quitquitquit` wake-up.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// The proxy's lifecycle as the probes see it.
#[derive(Default)]
pub(crate) struct Health {
    /// Every listener is bound and accepting.
    pub started: AtomicBool,
    /// A shutdown has begun (SIGTERM, SIGINT or `/quitquitquit`).
    pub draining: AtomicBool,
    /// Woken by `POST /quitquitquit`.
    pub quit: Notify,
    /// The listeners have stopped accepting (past the minimum shutdown delay).
    pub stopped: AtomicBool,
}

impl Health {
    /// Whether new sessions are still taken (false once the listeners have stopped).
    pub(crate) fn accepting(&self) -> bool {
        !self.stopped.load(Ordering::Acquire)
    }
}
