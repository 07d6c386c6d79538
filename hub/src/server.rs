//! Starting and stopping the hub: the routes, the writer thread, the fan-out tick, TLS when a
//! certificate is given, and a graceful shutdown (agents told to reconnect later, screens
//! closed, the writer drained before the process ends).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, watch};

use crate::state::Hub;
use crate::store::{Store, StoreError};
use crate::{agent_ws, screens, web};

/// How the hub runs.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The SQLite database (created with its schema if missing).
    pub db: PathBuf,
    pub listen: SocketAddr,
    /// PEM certificate chain and private key: serve HTTPS/WSS (rustls).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{addr}: cannot listen: {source} (is another hub running there?)")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {what}: {source} (give a PEM certificate chain and its PEM private key)")]
    Tls {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the hub's writer thread: {0}")]
    Thread(String),
}

/// The pages and their assets, compiled in: the hub needs nothing from a CDN.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/login",
        "text/html; charset=utf-8",
        include_str!("../assets/login.html"),
    ),
    (
        "/wallboard",
        "text/html; charset=utf-8",
        include_str!("../assets/wallboard.html"),
    ),
    (
        "/alerts",
        "text/html; charset=utf-8",
        include_str!("../assets/alerts.html"),
    ),
    (
        "/call",
        "text/html; charset=utf-8",
        include_str!("../assets/call.html"),
    ),
    (
        "/search",
        "text/html; charset=utf-8",
        include_str!("../assets/search.html"),
    ),
    (
        "/audit",
        "text/html; charset=utf-8",
        include_str!("../assets/audit.html"),
    ),
    (
        "/assets/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "/assets/listen.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/listen.js"),
    ),
    (
        "/assets/login.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/login.js"),
    ),
    (
        "/assets/wallboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/wallboard.js"),
    ),
    (
        "/assets/alerts.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/alerts.js"),
    ),
    (
        "/assets/call.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/call.js"),
    ),
    (
        "/assets/search.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/search.js"),
    ),
    (
        "/assets/audit.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/audit.js"),
    ),
    (
        "/assets/app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
];

fn asset(path: &'static str, mime: &'static str, body: &'static str) -> Response {
    let _ = path;
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self' blob:; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Every route of the hub over `hub` (used by [`start`] and by tests without a network).
pub fn router(hub: Arc<Hub>) -> Router {
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::to("/wallboard") }))
        .route("/agent/ws", get(agent_ws::upgrade))
        .route("/ws/ui", get(screens::ui_upgrade))
        .route("/ws/listen/{agent}", get(screens::listen_upgrade))
        .route("/api/login", post(web::login))
        .route("/api/logout", post(web::logout))
        .route("/api/me", get(web::me))
        .route("/api/whisper", post(web::whisper))
        .route("/api/help/accept", post(web::accept_help))
        .route("/api/calls", get(web::search))
        .route("/api/calls/{agent}/{call}", get(web::call))
        .route("/api/tiles/{agent}", get(web::tile))
        .route("/api/alerts", get(web::alerts))
        .route("/api/audit", get(web::audit))
        .route("/api/stats", get(web::stats))
        .route("/healthz", get(|| async { "ok" }));
    for &(path, mime, body) in ASSETS {
        r = r.route(path, get(move || async move { asset(path, mime, body) }));
    }
    r.layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(hub)
}

/// A running hub.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    stop: watch::Sender<bool>,
    handle: axum_server::Handle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    writer: std::thread::JoinHandle<()>,
}

/// Opens the database (migrations, dangling listen leases closed), starts the writer, the
/// tick and the server; returns once it listens.
pub async fn start(cfg: HubConfig) -> Result<Running, HubError> {
    let db = cfg.db.clone();
    let (store, ctl) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let mut ctl = Store::open(&db)?;
        let closed = ctl.close_dangling_listens()?;
        if closed > 0 {
            eprintln!(
                "hub: {closed} listen lease(s) left open by the last run recorded as stopped"
            );
        }
        Ok((Store::open(&db)?, ctl))
    })
    .await
    .map_err(|e| HubError::Thread(e.to_string()))??;
    let (wtx, wrx) = mpsc::channel(8192);
    let (stop, stop_rx) = watch::channel(false);
    let hub = Arc::new(Hub {
        ctl: Mutex::new(ctl),
        writer: wtx,
        fanout: Default::default(),
        agents: Default::default(),
        limiter: Default::default(),
        counters: Default::default(),
        tls: cfg.tls.is_some(),
        shutdown: stop_rx,
        next_conn: Default::default(),
    });
    let weak = Arc::downgrade(&hub);
    let writer = std::thread::Builder::new()
        .name("hub-writer".into())
        .spawn(move || crate::writer::run(store, wrx, weak))
        .map_err(|e| HubError::Thread(e.to_string()))?;
    let tick_hub = Arc::downgrade(&hub);
    let mut tick_stop = stop.subscribe();
    tokio::spawn(async move {
        let mut t = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = t.tick() => match tick_hub.upgrade() {
                    Some(h) => h.fanout.tick(),
                    None => break,
                },
                _ = tick_stop.changed() => break,
            }
        }
    });
    let app = router(hub.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let listener = std::net::TcpListener::bind(cfg.listen).map_err(|source| HubError::Listen {
        addr: cfg.listen,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| HubError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| HubError::Listen {
        addr: cfg.listen,
        source,
    })?;
    let handle = axum_server::Handle::new();
    let server = match &cfg.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|source| HubError::Tls {
                    what: format!("{} / {}", cert.display(), key.display()),
                    source,
                })?;
            let s = axum_server::from_tcp_rustls(listener, tls).handle(handle.clone());
            tokio::spawn(async move { s.serve(app).await })
        }
        None => {
            let s = axum_server::from_tcp(listener).handle(handle.clone());
            tokio::spawn(async move { s.serve(app).await })
        }
    };
    Ok(Running {
        addr,
        hub,
        stop,
        handle,
        server,
        writer,
    })
}

impl Running {
    /// Graceful shutdown: agents are told to reconnect later (their spools keep everything),
    /// screens and listen leases close (the stops on record), in-flight requests finish, and
    /// everything the writer was given is stored before this returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // Sockets see the signal and close themselves; give them a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.handle.graceful_shutdown(Some(Duration::from_secs(5)));
        let _ = self.server.await;
        let Running { hub, writer, .. } = self;
        // The writer ends when the last sender is gone: the hub's own, and the agents' tasks'.
        drop(hub);
        let joined = tokio::task::spawn_blocking(move || writer.join());
        if tokio::time::timeout(Duration::from_secs(10), joined)
            .await
            .is_err()
        {
            eprintln!("hub: the writer did not finish within 10 s");
        }
    }

    /// Serves until Ctrl-C / SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = ctrl_c => {}
                _ = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        eprintln!("hub: shutting down");
        self.shutdown().await;
    }
}
