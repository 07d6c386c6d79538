//! From stored agent messages to supervisors' screens: the wallboard model, routed by team and
//! thinned. Each screen registers with the teams it may see; a message goes only to the
//! screens of the agent's team (an admin's screen takes every team). Sending never waits: a
//! screen whose queue is full is marked behind, drops what comes, and is sent a fresh
//! snapshot when it has caught up, so a slow browser never slows an agent or another screen.
//!
//! Cost: [`Fanout::stored`] takes one mutex, updates one tile, serialises the update once and
//! `try_send`s an `Arc<str>` to each matching screen (no copy per screen).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use callcoach_proto::wire::{AgentMsg, AgentState, Body};
use serde_json::json;
use tokio::sync::mpsc;

use crate::store::now_ms;
use crate::wallboard::{Change, Tile, Urgency, Wallboard};

/// What a screen may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Teams(Vec<i64>),
}

impl Scope {
    pub fn sees(&self, team: Option<i64>) -> bool {
        match self {
            Scope::All => true,
            Scope::Teams(ts) => team.is_some_and(|t| ts.contains(&t)),
        }
    }
}

/// A screen's queue of updates (JSON text).
#[derive(Debug)]
pub struct Screen {
    id: u64,
    scope: Scope,
    tx: mpsc::Sender<Arc<str>>,
    /// Something was dropped: send a snapshot when the queue has room.
    pub behind: Arc<AtomicBool>,
}

/// Updates a screen's queue holds before it counts as behind.
pub const SCREEN_QUEUE: usize = 1024;

#[derive(Debug, Default)]
struct Inner {
    board: Wallboard,
    teams: HashMap<String, Option<i64>>,
    team_names: HashMap<i64, String>,
    online: HashSet<String>,
    /// Agents whose meters changed but were not sent (thinning), for the tick.
    dirty: HashSet<String>,
    /// Agents shown as offline (so the tick says it once).
    shown_offline: HashSet<String>,
    screens: Vec<Screen>,
    next_screen: u64,
}

/// The screens' side of the hub.
#[derive(Debug, Default)]
pub struct Fanout {
    inner: Mutex<Inner>,
    /// Updates dropped because a screen was behind (each such screen got a snapshot later).
    pub dropped_for_slow_screens: AtomicU64,
}

fn urgency_name(u: Urgency) -> &'static str {
    match u {
        Urgency::Offline => "offline",
        Urgency::Idle => "idle",
        Urgency::InCall => "in_call",
        Urgency::OnHold => "on_hold",
        Urgency::Warning => "warning",
        Urgency::CaptureLost => "capture_lost",
        Urgency::Critical => "critical",
        Urgency::HelpRequested => "help_requested",
    }
}

/// A tile as the pages read it.
pub fn tile_json(t: &Tile, team: Option<&str>, online: bool, now: u64) -> serde_json::Value {
    let urgency = if online {
        t.urgency(now)
    } else {
        Urgency::Offline
    };
    let state = if urgency == Urgency::Offline {
        "offline"
    } else {
        match t.state {
            AgentState::Idle => "idle",
            AgentState::InCall => "in_call",
            AgentState::OnHold => "on_hold",
            AgentState::CaptureLost => "capture_lost",
        }
    };
    json!({
        "agent": t.agent,
        "team": team,
        "state": state,
        "urgency": urgency_name(urgency),
        "rank": urgency as u8,
        "call": t.call,
        "call_started_ms": t.call_started_ms,
        "meters": t.meters,
        "meters_at_ms": t.meters_at_ms,
        "warnings": t.warnings.values().collect::<Vec<_>>(),
        "help": t.help,
        "last_seen_ms": t.last_seen_ms,
    })
}

impl Inner {
    fn team_of(&self, agent: &str) -> Option<i64> {
        self.teams.get(agent).copied().flatten()
    }

    fn tile_update(&self, agent: &str, now: u64) -> Option<Arc<str>> {
        let t = self.board.tile(agent)?;
        let team = self.team_of(agent);
        let name = team
            .and_then(|t| self.team_names.get(&t))
            .map(String::as_str);
        let v = json!({
            "type": "tile",
            "tile": tile_json(t, name, self.online.contains(agent), now),
            "sent_ms": now,
        });
        Some(Arc::from(v.to_string()))
    }

    fn publish(&self, team: Option<i64>, text: &Arc<str>, dropped: &AtomicU64) {
        for s in &self.screens {
            if !s.scope.sees(team) || s.behind.load(Ordering::Relaxed) {
                continue;
            }
            if s.tx.try_send(text.clone()).is_err() {
                s.behind.store(true, Ordering::Relaxed);
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Fanout {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere must not take every screen down with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Agent `agent` of `team` connected.
    pub fn connected(&self, agent: &str, team: Option<i64>, team_name: Option<String>) {
        let mut g = self.lock();
        g.teams.insert(agent.to_string(), team);
        if let (Some(t), Some(n)) = (team, team_name) {
            g.team_names.insert(t, n);
        }
        g.online.insert(agent.to_string());
        g.shown_offline.remove(agent);
        let now = now_ms();
        let hello = AgentMsg {
            seq: 1,
            at_ms: now,
            body: Body::Hello {
                version: callcoach_proto::PROTOCOL_VERSION,
                agent: agent.to_string(),
            },
        };
        g.board.apply(agent, &hello, now);
        if let Some(u) = g.tile_update(agent, now) {
            g.publish(team, &u, &self.dropped_for_slow_screens);
        }
    }

    /// Agent `agent`'s connection ended.
    pub fn disconnected(&self, agent: &str) {
        let mut g = self.lock();
        g.online.remove(agent);
        g.shown_offline.insert(agent.to_string());
        let now = now_ms();
        if let Some(u) = g.tile_update(agent, now) {
            let team = g.team_of(agent);
            g.publish(team, &u, &self.dropped_for_slow_screens);
        }
    }

    /// A message of `agent` was stored: update the tile, tell the screens that may see it.
    pub fn stored(&self, agent: &str, m: &AgentMsg) {
        let now = now_ms();
        let mut g = self.lock();
        let change = g.board.apply(agent, m, now);
        let team = g.team_of(agent);
        let extra = match &m.body {
            Body::Warning { call, warning } => Some(json!({
                "type": "alert", "kind": "warning", "agent": agent, "call": call,
                "at_ms": m.at_ms, "warning": warning, "sent_ms": now,
            })),
            Body::HelpRequest { call, text } => Some(json!({
                "type": "alert", "kind": "help", "agent": agent, "call": call,
                "at_ms": m.at_ms, "text": text, "sent_ms": now,
            })),
            Body::Transcript { call, segment } => Some(json!({
                "type": "transcript", "agent": agent, "call": call, "segment": segment,
                "at_ms": m.at_ms,
            })),
            Body::CallEnded { call, .. } => Some(json!({
                "type": "call_ended", "agent": agent, "call": call, "at_ms": m.at_ms,
            })),
            _ => None,
        };
        let send_tile = match change {
            Change::Urgent => {
                g.dirty.remove(agent);
                g.board.due(agent, now);
                true
            }
            Change::Meters => {
                if g.board.due(agent, now) {
                    g.dirty.remove(agent);
                    true
                } else {
                    g.dirty.insert(agent.to_string());
                    false
                }
            }
            Change::None => false,
        };
        if send_tile {
            if let Some(u) = g.tile_update(agent, now) {
                g.publish(team, &u, &self.dropped_for_slow_screens);
            }
        }
        if let Some(e) = extra {
            g.publish(
                team,
                &Arc::from(e.to_string()),
                &self.dropped_for_slow_screens,
            );
        }
    }

    /// Every 100 ms: thinned meters that are now due, agents that went quiet.
    pub fn tick(&self) {
        let now = now_ms();
        let mut g = self.lock();
        let dirty: Vec<String> = g.dirty.iter().cloned().collect();
        for a in dirty {
            if g.board.due(&a, now) {
                g.dirty.remove(&a);
                if let Some(u) = g.tile_update(&a, now) {
                    let team = g.team_of(&a);
                    g.publish(team, &u, &self.dropped_for_slow_screens);
                }
            }
        }
        let quiet: Vec<String> = g
            .online
            .iter()
            .filter(|a| {
                !g.shown_offline.contains(*a)
                    && g.board
                        .tile(a)
                        .is_some_and(|t| t.urgency(now) == Urgency::Offline)
            })
            .cloned()
            .collect();
        for a in quiet {
            g.shown_offline.insert(a.clone());
            if let Some(u) = g.tile_update(&a, now) {
                let team = g.team_of(&a);
                g.publish(team, &u, &self.dropped_for_slow_screens);
            }
        }
    }

    /// A supervisor accepted `agent`'s help request (false: there was none).
    pub fn accept_help(&self, agent: &str) -> bool {
        let mut g = self.lock();
        let ok = g.board.accept_help(agent);
        if ok {
            let now = now_ms();
            if let Some(u) = g.tile_update(agent, now) {
                let team = g.team_of(agent);
                g.publish(team, &u, &self.dropped_for_slow_screens);
            }
        }
        ok
    }

    /// Every tile `scope` may see, most urgent first, as one snapshot message.
    pub fn snapshot(&self, scope: &Scope) -> Arc<str> {
        let now = now_ms();
        let g = self.lock();
        let agents: Vec<&str> = g
            .teams
            .iter()
            .filter(|(_, t)| scope.sees(**t))
            .map(|(a, _)| a.as_str())
            .collect();
        let tiles: Vec<serde_json::Value> = g
            .board
            .sorted(&agents, now)
            .into_iter()
            .map(|t| {
                let team = g.team_of(&t.agent);
                let name = team.and_then(|t| g.team_names.get(&t)).map(String::as_str);
                tile_json(t, name, g.online.contains(&t.agent), now)
            })
            .collect();
        Arc::from(json!({"type": "snapshot", "tiles": tiles, "sent_ms": now}).to_string())
    }

    /// The tile of `agent` (its team, online, the tile) for a page.
    pub fn tile(&self, agent: &str) -> Option<(Option<i64>, serde_json::Value)> {
        let g = self.lock();
        let t = g.board.tile(agent)?;
        let team = g.team_of(agent);
        let name = team.and_then(|t| g.team_names.get(&t)).map(String::as_str);
        Some((team, tile_json(t, name, g.online.contains(agent), now_ms())))
    }

    /// Registers a screen; returns its id, its queue and its "behind" flag.
    pub fn subscribe(&self, scope: Scope) -> (u64, mpsc::Receiver<Arc<str>>, Arc<AtomicBool>) {
        let (tx, rx) = mpsc::channel(SCREEN_QUEUE);
        let behind = Arc::new(AtomicBool::new(false));
        let mut g = self.lock();
        g.next_screen += 1;
        let id = g.next_screen;
        g.screens.push(Screen {
            id,
            scope,
            tx,
            behind: behind.clone(),
        });
        (id, rx, behind)
    }

    pub fn unsubscribe(&self, id: u64) {
        self.lock().screens.retain(|s| s.id != id);
    }

    /// Screens connected now.
    pub fn screens(&self) -> usize {
        self.lock().screens.len()
    }

    /// Agents known, by team, for the pages' filters.
    pub fn agents(&self, scope: &Scope) -> BTreeMap<String, Option<String>> {
        let g = self.lock();
        g.teams
            .iter()
            .filter(|(_, t)| scope.sees(**t))
            .map(|(a, t)| (a.clone(), t.and_then(|t| g.team_names.get(&t).cloned())))
            .collect()
    }
}
