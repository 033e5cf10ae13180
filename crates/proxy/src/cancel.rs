//! Query cancellation: the table of live sessions' BackendKeyData, and forwarding a client's
//! CancelRequest to the upstream that owns the key (over TLS, like every upstream connection).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use crate::dial::Dial;
use crate::upstream::Upstream;

/// (backend pid, secret key) → the upstream the backend runs on.
#[derive(Default)]
pub(crate) struct CancelTable {
    live: Mutex<HashMap<(i32, i32), Upstream>>,
}

impl CancelTable {
    /// Records a session's key; the returned guard removes it when the session ends.
    pub(crate) fn register(self: &Arc<Self>, pid: i32, key: i32, up: Upstream) -> Registration {
        self.lock().insert((pid, key), up);
        Registration {
            table: self.clone(),
            key: (pid, key),
        }
    }

    /// Whether (pid, key) is a live session's.
    #[cfg(test)]
    pub(crate) fn knows(&self, pid: i32, key: i32) -> bool {
        self.lock().contains_key(&(pid, key))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i32, i32), Upstream>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forwards a CancelRequest for (pid, key) to its upstream; unknown keys are dropped, so
    /// a client can only cancel queries of sessions this proxy opened.
    pub(crate) async fn forward(&self, pid: i32, key: i32, dial: &dyn Dial) {
        let Some(up) = self.lock().get(&(pid, key)).cloned() else {
            tracing::info!(pid, "cancel request with an unknown key dropped");
            return;
        };
        let mut conn = match dial.dial(&up).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(pid, error = %e, "cannot forward a cancel request");
                return;
            }
        };
        let mut msg = BytesMut::new();
        postgres_protocol::message::frontend::cancel_request(pid, key, &mut msg);
        let sent = async {
            conn.write_all(&msg).await?;
            conn.shutdown().await
        };
        match sent.await {
            Ok(()) => tracing::info!(pid, "cancel request forwarded"),
            Err(e) => tracing::warn!(pid, error = %e, "cannot forward a cancel request"),
        }
    }
}

/// Removes a session's key from the table on drop.
pub(crate) struct Registration {
    table: Arc<CancelTable>,
    key: (i32, i32),
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.table.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::fixtures::target;
    use crate::dial::fake::FakeDial;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn forwards_only_known_keys_to_their_upstream() {
        let table = Arc::new(CancelTable::default());
        let dial = FakeDial::default();
        let mut server = dial.queue();
        let up = target(None, Arc::default()).upstream;
        let live = table.register(7, 9, up);
        table.forward(7, 8, &dial).await;
        table.forward(8, 9, &dial).await;
        assert_eq!(dial.dials(), 0, "an unknown key reached the upstream");
        table.forward(7, 9, &dial).await;
        assert_eq!(dial.dials(), 1);
        let mut got = Vec::new();
        server.0.read_to_end(&mut got).await.unwrap();
        let mut want = BytesMut::new();
        postgres_protocol::message::frontend::cancel_request(7, 9, &mut want);
        assert_eq!(got, want);
        drop(live);
        table.forward(7, 9, &dial).await;
        assert_eq!(dial.dials(), 1, "a key outlived its session");
    }
}
