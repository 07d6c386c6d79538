//! `callcoach hub loadtest`: a hub in a process of its own, simulated agents and supervisors on
//! loopback, for a set time, then it stops by itself and reports.
//!
//! Agents (in teams of 20) each send meters at `hz` and, once a second, a raised warning with
//! an id of its own; supervisors (each leading an equal share of the teams, together all of
//! them) watch the wallboard socket. Lost = warnings acknowledged by the hub that no
//! supervisor of the agent's team received; latency = from the agent's send time (its
//! message's `at_ms`) to the supervisor's socket reading it, on the same clock. The hub's CPU
//! and peak memory come from `/proc` of its process.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callcoach_coach::{Party, RuleId, Severity, Warning, WarningState};
use callcoach_proto::wire::{encode, AgentMsg, Body, HubMsg, MeterSample, PROTOCOL_VERSION};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::auth::Role;
use crate::store::{now_ms, Store};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The `callcoach` binary (started as `hub serve`).
    pub exe: PathBuf,
    pub agents: usize,
    pub hz: u32,
    pub seconds: u64,
    pub supervisors: usize,
}

/// What came out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    pub agents: usize,
    pub supervisors: usize,
    pub seconds: u64,
    pub messages_sent: u64,
    pub messages_acked: u64,
    pub warnings_sent: u64,
    pub warnings_received: u64,
    pub lost: u64,
    pub alert_p50_ms: f64,
    pub alert_p99_ms: f64,
    pub tile_p50_ms: f64,
    pub tile_p99_ms: f64,
    pub tile_updates_received: u64,
    pub hub_cpu_percent: f64,
    pub hub_peak_rss_mib: f64,
}

const PASSWORD: &str = "load-test-password";
const TEAM_SIZE: usize = 20;

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// (utime + stime in clock ticks, peak RSS in KiB) of process `pid`.
fn proc_usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: state is 3rd; utime 14th, stime 15th.
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, hwm)
}

async fn login(addr: SocketAddr, name: &str) -> Result<String, String> {
    let body = format!(r#"{{"name":"{name}","password":"{PASSWORD}"}}"#);
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let req = format!(
        "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    text.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split_once(':'))
        .and_then(|(_, v)| v.trim().split(';').next().map(str::to_string))
        .ok_or_else(|| format!("login {name} failed: {text}"))
}

fn warning(id: String) -> Box<Warning> {
    Box::new(Warning {
        id,
        rule: RuleId::Rate,
        severity: Severity::Warning,
        party: Party::Agent,
        state: WarningState::Raised,
        t_ms: 0,
        start_ms: 0,
        message_zh: "语速过快".into(),
        message_en: "too fast".into(),
        evidence: Default::default(),
        line: String::new(),
        hidden: None,
    })
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    acked: AtomicU64,
    warnings_sent: AtomicU64,
    tiles: AtomicU64,
    received: Mutex<HashSet<(String, String)>>,
    alert_ms: Mutex<Vec<f64>>,
    tile_ms: Mutex<Vec<f64>>,
}

/// Runs the load test; the hub is started and stopped here.
pub async fn run(cfg: LoadConfig) -> Result<LoadReport, String> {
    let dir = std::env::temp_dir().join(format!("callcoach-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let db = dir.join("hub.sqlite");
    let teams = cfg.agents.div_ceil(TEAM_SIZE).max(1);
    let sups = cfg.supervisors.max(1);
    let mut tokens = Vec::new();
    {
        let mut s = Store::open(&db).map_err(|e| e.to_string())?;
        let team_names: Vec<String> = (0..teams).map(|t| format!("team{t}")).collect();
        for i in 0..sups {
            let led: Vec<&str> = team_names
                .iter()
                .enumerate()
                .filter(|(t, _)| t % sups == i)
                .map(|(_, n)| n.as_str())
                .collect();
            let led = if led.is_empty() {
                vec![team_names[0].as_str()]
            } else {
                led
            };
            s.put_user(&format!("sup{i}"), Role::Supervisor, Some(PASSWORD), &led)
                .map_err(|e| e.to_string())?;
        }
        for a in 0..cfg.agents {
            let name = format!("agent{a:04}");
            s.put_user(&name, Role::Agent, None, &[&team_names[a / TEAM_SIZE]])
                .map_err(|e| e.to_string())?;
            tokens.push((
                name.clone(),
                s.new_agent_token(&name).map_err(|e| e.to_string())?,
            ));
        }
    }
    let addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().map_err(|e| e.to_string())?
    };
    let mut hub = std::process::Command::new(&cfg.exe)
        .args(["hub", "serve", "--listen", &addr.to_string(), "--db"])
        .arg(&db)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {} hub serve: {e}", cfg.exe.display()))?;
    let pid = hub.id();
    let t0 = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = hub.kill();
            return Err("the hub did not start within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tally = Arc::new(Tally::default());
    let run_for = Duration::from_secs(cfg.seconds);

    // Supervisors on the wallboard.
    let mut screens = Vec::new();
    for i in 0..sups {
        let cookie = login(addr, &format!("sup{i}")).await?;
        let mut req = format!("ws://{addr}/ws/ui")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        req.headers_mut()
            .insert("Cookie", cookie.parse().map_err(|_| "cookie".to_string())?);
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| e.to_string())?;
        let tally = tally.clone();
        screens.push(tokio::spawn(async move {
            let (_, mut rx) = ws.split();
            // A tile is timed once, when its meters are new (a tile also goes out for a state
            // change, carrying the meters it had).
            let mut seen: std::collections::HashMap<String, f64> = Default::default();
            let deadline = tokio::time::Instant::now() + run_for + Duration::from_secs(8);
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, rx.next()).await {
                let Message::Text(t) = m else { continue };
                let now = now_ms() as f64;
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) else {
                    continue;
                };
                match v["type"].as_str() {
                    Some("alert") => {
                        let key = (
                            v["agent"].as_str().unwrap_or("").to_string(),
                            v["warning"]["id"].as_str().unwrap_or("").to_string(),
                        );
                        if let Some(at) = v["at_ms"].as_f64() {
                            tally
                                .alert_ms
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(now - at);
                        }
                        tally
                            .received
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(key);
                    }
                    Some("tile") => {
                        tally.tiles.fetch_add(1, Ordering::Relaxed);
                        let agent = v["tile"]["agent"].as_str().unwrap_or("").to_string();
                        let at = v["tile"]["meters_at_ms"].as_f64();
                        let fresh = at.is_some_and(|a| seen.get(&agent).is_none_or(|l| *l < a));
                        if let (true, Some(at)) = (fresh, at) {
                            seen.insert(agent, at);
                            tally
                                .tile_ms
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(now - at);
                        }
                    }
                    _ => {}
                }
            }
        }));
    }
    let (ticks0, _) = proc_usage(pid);
    let started = Instant::now();

    // Agents.
    let mut agents = Vec::new();
    for (i, (name, token)) in tokens.into_iter().enumerate() {
        let tally = tally.clone();
        let hz = cfg.hz.max(1);
        agents.push(tokio::spawn(async move {
            let mut req = format!("ws://{addr}/agent/ws").into_client_request().ok()?;
            req.headers_mut()
                .insert("Authorization", format!("Bearer {token}").parse().ok()?);
            let (ws, _) = tokio_tungstenite::connect_async(req).await.ok()?;
            let (mut tx, mut rx) = ws.split();
            let send = |seq: u64, body: Body| {
                let m = AgentMsg {
                    seq,
                    at_ms: now_ms(),
                    body,
                };
                Message::Text(String::from_utf8(encode(&m)).unwrap_or_default().into())
            };
            tx.send(send(
                0,
                Body::Hello {
                    version: PROTOCOL_VERSION,
                    agent: name.clone(),
                },
            ))
            .await
            .ok()?;
            let acks = {
                let tally = tally.clone();
                tokio::spawn(async move {
                    let mut last = 0;
                    while let Some(Ok(m)) = rx.next().await {
                        if let Message::Text(t) = m {
                            if let Ok(HubMsg::Ack { seq }) =
                                callcoach_proto::wire::decode_hub(t.as_bytes())
                            {
                                if seq > last {
                                    tally.acked.fetch_add(seq - last, Ordering::Relaxed);
                                    last = seq;
                                }
                            }
                        }
                    }
                })
            };
            // Spread the agents over the first tick.
            tokio::time::sleep(Duration::from_millis(
                (i as u64 * 1000 / u64::from(hz)) % 1000 / 10,
            ))
            .await;
            let mut seq = 1;
            tx.send(send(seq, Body::CallStarted { call: "c1".into() }))
                .await
                .ok()?;
            tally.sent.fetch_add(1, Ordering::Relaxed);
            let mut tick = tokio::time::interval(Duration::from_secs(1) / hz);
            let start = tokio::time::Instant::now();
            let mut n = 0u64;
            while start.elapsed() < run_for {
                tick.tick().await;
                n += 1;
                seq += 1;
                let meters = MeterSample {
                    call_ms: Some(n * 1000 / u64::from(hz)),
                    loudness_lufs: [Some(-20.0), Some(-25.0)],
                    chars_per_minute: [Some(120.0), None],
                    agent_talk_ratio: Some(0.5),
                    silence_ms: 0,
                };
                tx.send(send(seq, Body::Meters(meters))).await.ok()?;
                tally.sent.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(u64::from(hz)) {
                    seq += 1;
                    let w = warning(format!("rate#{n}"));
                    tx.send(send(
                        seq,
                        Body::Warning {
                            call: "c1".into(),
                            warning: w,
                        },
                    ))
                    .await
                    .ok()?;
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    tally.warnings_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Let the last acks and alerts arrive, then hang up.
            tokio::time::sleep(Duration::from_secs(5)).await;
            let _ = tx.close().await;
            acks.abort();
            Some(())
        }));
    }
    for a in agents {
        let _ = a.await;
    }
    let wall = started.elapsed().as_secs_f64();
    let (ticks1, hwm_kib) = proc_usage(pid);
    for s in screens {
        let _ = s.await;
    }
    // SAFETY-free stop: ask the hub to shut down gracefully (SIGTERM via `kill`).
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    let _ = hub.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let clk = 100.0; // USER_HZ on Linux
    let received = tally
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .len() as u64;
    let warnings_sent = tally.warnings_sent.load(Ordering::Relaxed);
    let mut alert = std::mem::take(&mut *tally.alert_ms.lock().unwrap_or_else(|p| p.into_inner()));
    let mut tile = std::mem::take(&mut *tally.tile_ms.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(LoadReport {
        agents: cfg.agents,
        supervisors: sups,
        seconds: cfg.seconds,
        messages_sent: tally.sent.load(Ordering::Relaxed),
        messages_acked: tally.acked.load(Ordering::Relaxed),
        warnings_sent,
        warnings_received: received,
        lost: warnings_sent.saturating_sub(received),
        alert_p50_ms: pct(&mut alert, 0.5),
        alert_p99_ms: pct(&mut alert, 0.99),
        tile_p50_ms: pct(&mut tile, 0.5),
        tile_p99_ms: pct(&mut tile, 0.99),
        tile_updates_received: tally.tiles.load(Ordering::Relaxed),
        hub_cpu_percent: (ticks1.saturating_sub(ticks0)) as f64 / clk / wall * 100.0,
        hub_peak_rss_mib: hwm_kib as f64 / 1024.0,
    })
}
