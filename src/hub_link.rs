//! `live --hub URL`: the agent's side of the supervisor hub.
//!
//! What the live run shows the agent is also numbered and written to an on-disk spool
//! ([`callcoach_proto::spool`]) by [`HubLink::observe`] — a file append, never a network wait,
//! so coaching goes on whatever the network does. A thread of its own keeps one WebSocket to
//! the hub: after `hello` the hub says what it already has, and everything after that is sent
//! in order; each message leaves the spool only when the hub acknowledges it stored. A lost
//! hub is retried (0.5 s doubling to 10 s) and the spool resent. From the hub come whispers
//! (to the screen), and listen leases (the pipeline's audio tap on and off).

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use callcoach_proto::spool::Spool;
use callcoach_proto::wire::{
    decode_hub, encode, AgentMsg, AgentState, Body, HubMsg, MeterSample, PROTOCOL_VERSION,
};
use crossbeam_channel::{Receiver, Sender};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use crate::live::UiEvent;

/// The spool's bound on disk (about a day of a busy agent's events; meters go first).
pub const SPOOL_MAX_BYTES: usize = 64 << 20;

/// How to reach the hub.
#[derive(Debug, Clone)]
pub struct HubLinkConfig {
    /// `ws://host:port` (the path `/agent/ws` is added when missing).
    pub url: String,
    pub token: String,
    pub agent: String,
    pub spool_dir: PathBuf,
}

/// What the live run knows that the spool turns into messages.
#[derive(Debug, Default)]
struct Observed {
    call: Option<String>,
    state: Option<AgentState>,
    lost: [bool; 2],
}

/// The running link.
#[derive(Debug)]
pub struct HubLink {
    spool: Arc<Mutex<Spool>>,
    observed: Mutex<Observed>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The call's summary for the hub's contact search: the score (mean of the rule scores), the
/// rules broken, the report's path. Read from the report `live` has just written.
fn summary(report: &std::path::Path, call_ms: u64) -> serde_json::Value {
    let parsed: Option<serde_json::Value> = std::fs::read(report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let scores: Vec<(String, f64)> = parsed
        .as_ref()
        .and_then(|r| r.pointer("/coach/scores"))
        .and_then(|s| s.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    Some((
                        s.get("rule")?.as_str()?.to_string(),
                        s.get("score")?.as_f64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let score = (!scores.is_empty())
        .then(|| (scores.iter().map(|s| s.1).sum::<f64>() / scores.len() as f64).round());
    let broken: Vec<&str> = scores
        .iter()
        .filter(|s| s.1 < 100.0)
        .map(|s| s.0.as_str())
        .collect();
    serde_json::json!({
        "call_ms": call_ms,
        "score": score,
        "rules_broken": broken,
        "report": report.display().to_string(),
    })
}

impl HubLink {
    /// Opens the spool and starts the link's thread. `screen` gets whispers and the link's
    /// state; `audio` is the pipeline's listen tap, `listening` its switch.
    pub fn start(
        cfg: HubLinkConfig,
        screen: Sender<UiEvent>,
        audio: Receiver<Vec<u8>>,
        listening: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        callcoach_proto::wire::check_id("--agent-id", &cfg.agent)
            .map_err(|e| anyhow::anyhow!("{e}: the hub knows the agent by this id"))?;
        let request = request(&cfg)?;
        let spool = Spool::open(&cfg.spool_dir, SPOOL_MAX_BYTES)
            .with_context(|| format!("the hub spool in {}", cfg.spool_dir.display()))?;
        let waiting = spool.pending().count();
        if waiting > 0 {
            let _ = screen.try_send(UiEvent::HubStatus(format!(
                "hub: {waiting} messages from an earlier run wait in the spool"
            )));
        }
        let spool = Arc::new(Mutex::new(spool));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (spool, stop) = (spool.clone(), stop.clone());
            std::thread::Builder::new()
                .name("callcoach-hub-link".into())
                .spawn(move || {
                    Link {
                        cfg,
                        request,
                        spool,
                        stop,
                        screen,
                        audio,
                        listening,
                    }
                    .run()
                })?
        };
        Ok(Self {
            spool,
            observed: Mutex::default(),
            stop,
            thread: Some(thread),
        })
    }

    fn push(&self, body: Body) {
        let mut s = self.spool.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = s.push(now_ms(), body) {
            eprintln!("hub link: {e}");
        }
    }

    /// Turns one of the live run's events into the hub's messages (spooled at once).
    pub fn observe(&self, e: &UiEvent) {
        let mut o = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let mut bodies = Vec::new();
        match e {
            UiEvent::CallStarted { id, .. } => {
                o.call = Some(id.clone());
                bodies.push(Body::CallStarted { call: id.clone() });
            }
            UiEvent::CallEnded {
                id,
                call_ms,
                report,
                ..
            } => {
                o.call = None;
                bodies.push(Body::CallEnded {
                    call: id.clone(),
                    summary: summary(report, *call_ms),
                });
            }
            UiEvent::Warning { warning, .. } => {
                if let Some(call) = &o.call {
                    bodies.push(Body::Warning {
                        call: call.clone(),
                        warning: warning.clone(),
                    });
                }
            }
            UiEvent::Transcript { segment, .. } => {
                if let Some(call) = &o.call {
                    bodies.push(Body::Transcript {
                        call: call.clone(),
                        segment: segment.clone(),
                    });
                }
            }
            UiEvent::Meters(m) => {
                o.lost = m.lost;
                bodies.push(Body::Meters(MeterSample {
                    call_ms: m.call_ms,
                    loudness_lufs: m.loudness_lufs,
                    chars_per_minute: m.chars_per_minute,
                    agent_talk_ratio: m.agent_talk_ratio,
                    silence_ms: m.silence_ms,
                }));
                let state = if m.lost.iter().any(|l| *l) {
                    AgentState::CaptureLost
                } else if m.hold_ms.is_some() {
                    AgentState::OnHold
                } else if m.call_ms.is_some() {
                    AgentState::InCall
                } else {
                    AgentState::Idle
                };
                if o.state != Some(state) {
                    o.state = Some(state);
                    bodies.insert(0, Body::State { state });
                }
            }
            UiEvent::PartyLost { .. } if o.state != Some(AgentState::CaptureLost) => {
                o.state = Some(AgentState::CaptureLost);
                bodies.push(Body::State {
                    state: AgentState::CaptureLost,
                });
            }
            UiEvent::HelpRequested { call } => bodies.push(Body::HelpRequest {
                call: call.clone(),
                text: "坐席请求协助 the agent asks for help".into(),
            }),
            _ => {}
        }
        drop(o);
        for b in bodies {
            self.push(b);
        }
    }

    /// The run is over: waits up to `wait` for the hub to acknowledge what is spooled, then
    /// stops the link. Returns how many messages stay in the spool for the next run.
    pub fn finish(mut self, wait: Duration) -> usize {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && self.waiting() > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.waiting()
    }

    /// Messages not yet acknowledged.
    pub fn waiting(&self) -> usize {
        self.spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending()
            .count()
    }
}

/// The hub's address as a WebSocket request with the agent's token.
fn request(cfg: &HubLinkConfig) -> anyhow::Result<tungstenite::handshake::client::Request> {
    let mut url = cfg.url.trim_end_matches('/').to_string();
    if url.starts_with("wss://") || url.starts_with("https://") {
        anyhow::bail!(
            "--hub {url}: TLS from the agent is not built yet; use ws:// on the call-centre network or put the hub behind a TLS tunnel (see README)"
        );
    }
    if let Some(rest) = url.strip_prefix("http://") {
        url = format!("ws://{rest}");
    }
    if !url.starts_with("ws://") {
        anyhow::bail!("--hub {url}: give the hub as ws://HOST:PORT");
    }
    if url.matches('/').count() <= 2 {
        url.push_str("/agent/ws");
    }
    let mut req = url
        .as_str()
        .into_client_request()
        .with_context(|| format!("--hub {url}: not a WebSocket address"))?;
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", cfg.token)
            .parse()
            .context("the hub token has characters a header cannot carry")?,
    );
    Ok(req)
}

struct Link {
    cfg: HubLinkConfig,
    request: tungstenite::handshake::client::Request,
    spool: Arc<Mutex<Spool>>,
    stop: Arc<AtomicBool>,
    screen: Sender<UiEvent>,
    audio: Receiver<Vec<u8>>,
    listening: Arc<AtomicBool>,
}

type Socket = tungstenite::WebSocket<TcpStream>;

impl Link {
    fn status(&self, s: String) {
        let _ = self.screen.try_send(UiEvent::HubStatus(s));
    }

    fn run(self) {
        let mut backoff = Duration::from_millis(500);
        let mut told_down = false;
        while !self.stop.load(Ordering::Relaxed) {
            match self.connect() {
                Ok((ws, last)) => {
                    backoff = Duration::from_millis(500);
                    told_down = false;
                    self.status(format!("hub: connected (it has up to message {last})"));
                    let why = self.serve(ws, last);
                    self.listening.store(false, Ordering::Relaxed);
                    if let Some(why) = why {
                        self.status(format!(
                            "hub: {why}; coaching goes on, messages are spooled"
                        ));
                    }
                }
                Err(e) => {
                    if !told_down {
                        self.status(format!(
                            "hub: cannot connect ({e:#}); coaching goes on, messages are spooled"
                        ));
                        told_down = true;
                    }
                }
            }
            let until = Instant::now() + backoff;
            while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
                // Audio for nobody is dropped while disconnected.
                while self.audio.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(20));
            }
            backoff = (backoff * 2).min(Duration::from_secs(4));
        }
    }

    /// Connects, says hello, and learns what the hub has stored.
    fn connect(&self) -> anyhow::Result<(Socket, u64)> {
        let uri = self.request.uri();
        let host = uri.host().unwrap_or("localhost");
        let port = uri.port_u16().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("{host}:{port}"))?
            .next()
            .with_context(|| format!("{host}: no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .with_context(|| format!("{addr}"))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
        let (mut ws, _) = tungstenite::client(self.request.clone(), tcp).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r)) => {
                let body = r
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).to_string())
                    .unwrap_or_default();
                anyhow::anyhow!("the hub refused: {} {body}", r.status())
            }
            e => anyhow::anyhow!("{e}"),
        })?;
        let hello = AgentMsg {
            seq: 0,
            at_ms: now_ms(),
            body: Body::Hello {
                version: PROTOCOL_VERSION,
                agent: self.cfg.agent.clone(),
            },
        };
        ws.send(Message::Text(
            String::from_utf8(encode(&hello)).unwrap_or_default().into(),
        ))?;
        let last = loop {
            match ws.read()? {
                Message::Text(t) => match decode_hub(t.as_bytes())? {
                    HubMsg::Ack { seq } => break seq,
                    HubMsg::Close { reason } => anyhow::bail!("the hub refused: {reason}"),
                    _ => {}
                },
                Message::Close(f) => anyhow::bail!(
                    "the hub closed the connection: {}",
                    f.map(|f| f.reason.to_string()).unwrap_or_default()
                ),
                _ => {}
            }
        };
        self.spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ack(last)?;
        ws.get_mut()
            .set_read_timeout(Some(Duration::from_millis(20)))?;
        Ok((ws, last))
    }

    /// Sends and receives until the connection ends (the reason) or the link stops (None).
    fn serve(&self, mut ws: Socket, last: u64) -> Option<String> {
        let mut sent = last;
        let mut batch: Vec<AgentMsg> = Vec::new();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                let _ = ws.close(None);
                let _ = ws.flush();
                return None;
            }
            {
                let s = self.spool.lock().unwrap_or_else(|p| p.into_inner());
                batch.clear();
                batch.extend(s.pending().skip_while(|m| m.seq <= sent).take(256).cloned());
            }
            for m in &batch {
                let text = String::from_utf8(encode(m)).unwrap_or_default();
                if let Err(e) = ws.write(Message::Text(text.into())) {
                    return Some(format!("lost the hub ({e})"));
                }
                sent = m.seq;
            }
            while let Ok(frame) = self.audio.try_recv() {
                if self.listening.load(Ordering::Relaxed) {
                    if let Err(e) = ws.write(Message::Binary(frame.into())) {
                        return Some(format!("lost the hub ({e})"));
                    }
                }
            }
            if let Err(e) = ws.flush() {
                if !matches!(&e, tungstenite::Error::Io(io) if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
                {
                    return Some(format!("lost the hub ({e})"));
                }
            }
            match ws.read() {
                Ok(Message::Text(t)) => match decode_hub(t.as_bytes()) {
                    Ok(HubMsg::Ack { seq }) => {
                        let r = self
                            .spool
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .ack(seq);
                        if let Err(e) = r {
                            eprintln!("hub link: {e}");
                        }
                    }
                    Ok(HubMsg::Whisper { from, text }) => {
                        let _ = self
                            .screen
                            .send_timeout(UiEvent::Whisper { from, text }, Duration::from_secs(1));
                    }
                    Ok(HubMsg::ListenStart { .. }) => {
                        self.listening.store(true, Ordering::Relaxed);
                        self.status("hub: a supervisor is listening".into());
                    }
                    Ok(HubMsg::ListenStop { .. }) => {
                        self.listening.store(false, Ordering::Relaxed);
                        self.status("hub: nobody is listening".into());
                    }
                    Ok(HubMsg::Close { reason }) => {
                        return Some(format!("the hub closed: {reason}"))
                    }
                    Ok(_) => {}
                    Err(e) => return Some(format!("a bad message from the hub ({e})")),
                },
                Ok(Message::Close(f)) => {
                    return Some(format!(
                        "the hub closed the connection {}",
                        f.map(|f| f.reason.to_string()).unwrap_or_default()
                    ))
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Some(format!("lost the hub ({e})")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_becomes_the_agent_socket() {
        let cfg = |url: &str| HubLinkConfig {
            url: url.into(),
            token: "t0k3n".into(),
            agent: "A1".into(),
            spool_dir: "/tmp/x".into(),
        };
        let r = request(&cfg("ws://10.0.0.5:7800")).unwrap();
        assert_eq!(r.uri().to_string(), "ws://10.0.0.5:7800/agent/ws");
        assert_eq!(r.headers()["Authorization"], "Bearer t0k3n");
        assert_eq!(
            request(&cfg("http://hub:80/")).unwrap().uri().path(),
            "/agent/ws"
        );
        let e = request(&cfg("ftp://hub")).unwrap_err().to_string();
        assert!(e.contains("ws://HOST:PORT"), "{e}");
    }
}
