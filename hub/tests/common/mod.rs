//! A hub on loopback with two teams, their supervisors, an admin and an agent per team; raw
//! HTTP and WebSocket clients (the agent's, the browser's).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use callcoach_hub::{HubConfig, Role, Running, Store};
use callcoach_proto::wire::{encode, AgentMsg, Body, HubMsg, PROTOCOL_VERSION};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub const PW: &str = "correct horse battery";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub hub: Option<Running>,
    pub addr: SocketAddr,
    /// Agent tokens: a1 (team east), a2 (team west).
    pub tokens: std::collections::HashMap<String, String>,
}

pub fn seed(db: &std::path::Path) -> std::collections::HashMap<String, String> {
    let mut s = Store::open(db).unwrap();
    s.put_user("admin", Role::Admin, Some(PW), &[]).unwrap();
    s.put_user("lead_east", Role::Supervisor, Some(PW), &["east"])
        .unwrap();
    s.put_user("lead_west", Role::Supervisor, Some(PW), &["west"])
        .unwrap();
    s.put_user("a1", Role::Agent, None, &["east"]).unwrap();
    s.put_user("a2", Role::Agent, None, &["west"]).unwrap();
    s.put_user("a1_browser", Role::Agent, Some(PW), &["east"])
        .unwrap();
    let mut t = std::collections::HashMap::new();
    for a in ["a1", "a2"] {
        t.insert(a.to_string(), s.new_agent_token(a).unwrap());
    }
    t
}

impl Fixture {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.sqlite");
        let tokens = seed(&db);
        let hub = callcoach_hub::start(HubConfig {
            db,
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
        })
        .await
        .unwrap();
        let addr = hub.addr;
        Self {
            dir,
            hub: Some(hub),
            addr,
            tokens,
        }
    }

    pub fn db(&self) -> Store {
        Store::open(&self.dir.path().join("hub.sqlite")).unwrap()
    }

    /// Restarts the hub on the same port and database.
    pub async fn restart(&mut self) {
        if let Some(h) = self.hub.take() {
            h.shutdown().await;
        }
        let hub = callcoach_hub::start(HubConfig {
            db: self.dir.path().join("hub.sqlite"),
            listen: self.addr,
            tls: None,
        })
        .await
        .unwrap();
        self.hub = Some(hub);
    }
}

/// One HTTP/1.1 request; returns (status, Set-Cookie value if any, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .map(|l| l.split_once(':').unwrap().1.trim().to_string());
    // Chunked bodies: good enough to search in for these tests.
    (status, cookie, rest.to_string())
}

/// Logs in; returns the `Cookie` header value.
pub async fn login(addr: SocketAddr, name: &str) -> String {
    let body = format!(r#"{{"name":"{name}","password":"{PW}"}}"#);
    let (status, cookie, text) = http(addr, "POST", "/api/login", Some(&body), &[]).await;
    assert_eq!(status, 200, "login {name}: {text}");
    let c = cookie.expect("a session cookie");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    c.split(';').next().unwrap().to_string()
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An agent's socket after `hello`; returns it and the hub's first ack (what it has stored).
pub async fn agent(addr: SocketAddr, token: &str, name: &str) -> (Ws, u64) {
    let mut req = format!("ws://{addr}/agent/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    send(
        &mut ws,
        0,
        Body::Hello {
            version: PROTOCOL_VERSION,
            agent: name.into(),
        },
    )
    .await;
    match next_hub(&mut ws).await {
        Some(HubMsg::Ack { seq }) => (ws, seq),
        other => panic!("expected the first ack, got {other:?}"),
    }
}

pub async fn send(ws: &mut Ws, seq: u64, body: Body) {
    let m = AgentMsg {
        seq,
        at_ms: callcoach_hub::store::now_ms(),
        body,
    };
    ws.send(Message::Text(String::from_utf8(encode(&m)).unwrap().into()))
        .await
        .unwrap();
}

/// The next hub message (skipping pings), or None when the socket closed / 5 s passed.
pub async fn next_hub(ws: &mut Ws) -> Option<HubMsg> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .ok()??;
        match m.ok()? {
            Message::Text(t) => return callcoach_proto::wire::decode_hub(t.as_bytes()).ok(),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Reads hub messages until `want` matches one (5 s at most each).
pub async fn until_hub(ws: &mut Ws, want: impl Fn(&HubMsg) -> bool) -> HubMsg {
    loop {
        match next_hub(ws).await {
            Some(m) if want(&m) => return m,
            Some(_) => {}
            None => panic!("the socket closed before the expected message"),
        }
    }
}

/// A browser's socket (`/ws/ui` or `/ws/listen/AGENT`) with a session cookie.
pub async fn browser(addr: SocketAddr, path: &str, cookie: &str) -> Result<Ws, String> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    req.headers_mut().insert("Cookie", cookie.parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

/// The next JSON text message on a browser socket within `wait`.
pub async fn next_json(ws: &mut Ws, wait: Duration) -> Option<serde_json::Value> {
    loop {
        let m = tokio::time::timeout(wait, ws.next()).await.ok()??;
        match m.ok()? {
            Message::Text(t) => return serde_json::from_str(&t).ok(),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}
