//! What the hub's tasks share: the handlers' database connection, the writer, the screens'
//! fan-out, the connected agents, the login limiter and the counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use callcoach_proto::wire::HubMsg;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};

use crate::auth::LoginLimiter;
use crate::fanout::Fanout;
use crate::store::{Store, StoreError};
use crate::writer::WriteJob;

/// What the hub sends down an agent's socket.
#[derive(Debug, Clone)]
pub enum Outbound {
    Msg(HubMsg),
    /// Send `HubMsg::Close` with this reason, then close the socket.
    Close(String),
}

/// A connected agent.
#[derive(Debug)]
pub struct AgentLink {
    /// Which connection (a newer one replaces an older one of the same agent).
    pub conn: u64,
    pub team: Option<i64>,
    pub tx: mpsc::UnboundedSender<Outbound>,
    /// The call's audio while someone listens (binary frames as the agent sent them).
    pub audio: broadcast::Sender<Bytes>,
    /// Listen leases open on this agent: lease → supervisor.
    pub listeners: HashMap<String, String>,
}

/// Counts of what the hub refused or dropped (shown at `/api/stats`, used by the tests).
#[derive(Debug, Default, Serialize)]
pub struct Counters {
    pub agent_connections: AtomicU64,
    pub messages_stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub malformed: AtomicU64,
    pub oversized: AtomicU64,
    pub out_of_order: AtomicU64,
    pub refused_auth: AtomicU64,
    pub forbidden: AtomicU64,
    pub audio_frames: AtomicU64,
    pub whispers: AtomicU64,
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The hub.
#[derive(Debug)]
pub struct Hub {
    /// The handlers' connection (accounts, sessions, audit, search); use from blocking
    /// threads only ([`Hub::db`]).
    pub ctl: Mutex<Store>,
    pub writer: mpsc::Sender<WriteJob>,
    pub fanout: Fanout,
    pub agents: Mutex<HashMap<String, AgentLink>>,
    pub limiter: Mutex<LoginLimiter>,
    pub counters: Counters,
    /// Served over TLS (cookies get `Secure`).
    pub tls: bool,
    pub shutdown: watch::Receiver<bool>,
    pub next_conn: AtomicU64,
}

/// A database call that failed, or the blocking pool that is gone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the database thread failed: {0}")]
    Join(String),
}

impl Hub {
    /// Runs `f` on the handlers' connection on a blocking thread (never on tokio's workers).
    pub async fn db<T, F>(self: &Arc<Self>, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let hub = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut g = hub.ctl.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut g)
        })
        .await
        .map_err(|e| DbError::Join(e.to_string()))?
        .map_err(DbError::from)
    }

    pub fn agents(&self) -> std::sync::MutexGuard<'_, HashMap<String, AgentLink>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `m` to `agent` if connected.
    pub fn send_to_agent(&self, agent: &str, m: Outbound) -> bool {
        self.agents()
            .get(agent)
            .is_some_and(|l| l.tx.send(m).is_ok())
    }
}
