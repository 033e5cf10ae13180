//! Query cancellation: the table of live sessions' BackendKeyData, and forwarding a client's
//! CancelRequest to the upstream that owns the key (over TLS, like every upstream connection).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use crate::upstream::{Upstream, connect_tls};

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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i32, i32), Upstream>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forwards a CancelRequest for (pid, key) to its upstream; unknown keys are dropped, so
    /// a client can only cancel queries of sessions this proxy opened.
    pub(crate) async fn forward(&self, pid: i32, key: i32) {
        let Some(up) = self.lock().get(&(pid, key)).cloned() else {
            tracing::info!(pid, "cancel request with an unknown key dropped");
            return;
        };
        let mut tls = match connect_tls(&up).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(pid, error = %e, "cannot forward a cancel request");
                return;
            }
        };
        let mut msg = BytesMut::new();
        postgres_protocol::message::frontend::cancel_request(pid, key, &mut msg);
        let sent = async {
            tls.write_all(&msg).await?;
            tls.shutdown().await
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
