//! One tile per agent: state, call, meters, active warnings, a pending help request. Time is an
//! input (ms), so the same messages give the same wallboard.
//!
//! Thinning: a tile's meters change ten times a second on the agent's side; a screen needs two
//! updates a second, so [`Wallboard::due`] says when a tile's meters may go out again, while a
//! state change, a warning or a help request goes out at once ([`Change::Urgent`]).

use std::collections::BTreeMap;

use callcoach_coach::{Severity, Warning, WarningState};
use callcoach_proto::wire::{AgentMsg, AgentState, Body, MeterSample};

/// Meters of one tile go out at most this often.
pub const METER_INTERVAL_MS: u64 = 500;
/// An agent not heard from for this long is offline.
pub const OFFLINE_AFTER_MS: u64 = 10_000;

/// What a supervisor sees of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub agent: String,
    pub state: AgentState,
    pub call: Option<String>,
    /// When the call started (agent's clock, ms since the epoch).
    pub call_started_ms: Option<u64>,
    pub meters: MeterSample,
    /// When the agent measured them (agent's clock, ms since the epoch).
    pub meters_at_ms: Option<u64>,
    /// Warnings showing on the agent's screen now, by id.
    pub warnings: BTreeMap<String, Warning>,
    /// The agent asked for help (text), not yet accepted.
    pub help: Option<String>,
    pub last_seen_ms: u64,
    last_meters_out_ms: Option<u64>,
}

/// How urgent a tile is, most urgent first when sorted descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    Offline,
    Idle,
    InCall,
    OnHold,
    Warning,
    CaptureLost,
    Critical,
    HelpRequested,
}

/// What a message changed, for the screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing a screen shows.
    None,
    /// Meters only: send when [`Wallboard::due`] says so.
    Meters,
    /// State, call, warning or help: send now.
    Urgent,
}

impl Tile {
    fn new(agent: &str) -> Self {
        Self {
            agent: agent.to_string(),
            state: AgentState::Idle,
            call: None,
            call_started_ms: None,
            meters: MeterSample::default(),
            meters_at_ms: None,
            warnings: BTreeMap::new(),
            help: None,
            last_seen_ms: 0,
            last_meters_out_ms: None,
        }
    }

    /// How urgently this agent needs a supervisor at `now_ms`.
    pub fn urgency(&self, now_ms: u64) -> Urgency {
        if now_ms.saturating_sub(self.last_seen_ms) > OFFLINE_AFTER_MS {
            return Urgency::Offline;
        }
        if self.help.is_some() {
            return Urgency::HelpRequested;
        }
        let worst = self.warnings.values().map(|w| w.severity).max();
        match (worst, self.state) {
            (Some(Severity::Critical), _) => Urgency::Critical,
            (_, AgentState::CaptureLost) => Urgency::CaptureLost,
            (Some(Severity::Warning), _) => Urgency::Warning,
            (_, AgentState::OnHold) => Urgency::OnHold,
            (_, AgentState::InCall) => Urgency::InCall,
            _ => Urgency::Idle,
        }
    }
}

/// Every agent's tile.
#[derive(Debug, Clone, Default)]
pub struct Wallboard {
    tiles: BTreeMap<String, Tile>,
}

impl Wallboard {
    /// Applies one stored message of `agent` at hub time `now_ms`; says what changed.
    pub fn apply(&mut self, agent: &str, m: &AgentMsg, now_ms: u64) -> Change {
        let t = self
            .tiles
            .entry(agent.to_string())
            .or_insert_with(|| Tile::new(agent));
        t.last_seen_ms = now_ms;
        match &m.body {
            Body::Hello { .. } => Change::Urgent,
            Body::State { state } => {
                let changed = t.state != *state;
                t.state = *state;
                if changed {
                    Change::Urgent
                } else {
                    Change::None
                }
            }
            Body::Meters(s) => {
                t.meters = *s;
                t.meters_at_ms = Some(m.at_ms);
                Change::Meters
            }
            Body::CallStarted { call } => {
                t.call = Some(call.clone());
                t.call_started_ms = Some(m.at_ms);
                t.state = AgentState::InCall;
                t.warnings.clear();
                Change::Urgent
            }
            Body::Warning { call, warning } => {
                if t.call.as_deref() != Some(call) {
                    return Change::None; // a late warning of a call already over
                }
                match warning.state {
                    WarningState::Raised | WarningState::Updated => {
                        // Hidden warnings (log-only, capped) are not on the agent's screen.
                        if warning.hidden.is_none() {
                            t.warnings.insert(warning.id.clone(), (**warning).clone());
                        }
                    }
                    WarningState::Cleared | WarningState::Withdrawn => {
                        t.warnings.remove(&warning.id);
                    }
                }
                Change::Urgent
            }
            Body::Transcript { .. } => Change::None,
            Body::CallEnded { call, .. } => {
                if t.call.as_deref() == Some(call) {
                    t.call = None;
                    t.call_started_ms = None;
                    t.warnings.clear();
                    t.state = AgentState::Idle;
                }
                Change::Urgent
            }
            Body::HelpRequest { text, .. } => {
                t.help = Some(text.clone());
                Change::Urgent
            }
            // A message kind this version does not show.
            _ => Change::None,
        }
    }

    /// A supervisor accepted the agent's help request.
    pub fn accept_help(&mut self, agent: &str) -> bool {
        self.tiles
            .get_mut(agent)
            .is_some_and(|t| t.help.take().is_some())
    }

    /// May `agent`'s meters go out at `now_ms` (at most every [`METER_INTERVAL_MS`])? Notes
    /// that they did when it says yes.
    pub fn due(&mut self, agent: &str, now_ms: u64) -> bool {
        let Some(t) = self.tiles.get_mut(agent) else {
            return false;
        };
        let ok = t
            .last_meters_out_ms
            .is_none_or(|last| now_ms >= last + METER_INTERVAL_MS);
        if ok {
            t.last_meters_out_ms = Some(now_ms);
        }
        ok
    }

    pub fn tile(&self, agent: &str) -> Option<&Tile> {
        self.tiles.get(agent)
    }

    /// The tiles of `agents` (a supervisor's teams), most urgent first, then the longest call,
    /// then by name: who needs help now comes first.
    pub fn sorted<'a>(&'a self, agents: &[&str], now_ms: u64) -> Vec<&'a Tile> {
        let mut v: Vec<&Tile> = agents.iter().filter_map(|a| self.tiles.get(*a)).collect();
        v.sort_by(|a, b| {
            b.urgency(now_ms)
                .cmp(&a.urgency(now_ms))
                .then(
                    a.call_started_ms
                        .unwrap_or(u64::MAX)
                        .cmp(&b.call_started_ms.unwrap_or(u64::MAX)),
                )
                .then(a.agent.cmp(&b.agent))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callcoach_coach::{Party, RuleId};

    fn msg(seq: u64, at_ms: u64, body: Body) -> AgentMsg {
        AgentMsg { seq, at_ms, body }
    }

    fn warning(id: &str, severity: Severity, state: WarningState) -> Body {
        Body::Warning {
            call: "c1".into(),
            warning: Box::new(Warning {
                id: id.into(),
                rule: RuleId::DeadAir,
                severity,
                party: Party::Agent,
                state,
                t_ms: 0,
                start_ms: 0,
                message_zh: "冷场".into(),
                message_en: String::new(),
                evidence: Default::default(),
                line: String::new(),
                hidden: None,
            }),
        }
    }

    #[test]
    fn warnings_come_and_go_and_the_call_end_clears_the_tile() {
        let mut w = Wallboard::default();
        let call = Body::CallStarted { call: "c1".into() };
        assert_eq!(w.apply("a1", &msg(1, 100, call), 1000), Change::Urgent);
        let raised = warning("dead_air#1", Severity::Warning, WarningState::Raised);
        assert_eq!(w.apply("a1", &msg(2, 200, raised), 1100), Change::Urgent);
        assert_eq!(w.tile("a1").unwrap().urgency(1100), Urgency::Warning);
        let withdrawn = warning("dead_air#1", Severity::Warning, WarningState::Withdrawn);
        w.apply("a1", &msg(3, 300, withdrawn), 1200);
        assert_eq!(w.tile("a1").unwrap().urgency(1200), Urgency::InCall);
        let end = Body::CallEnded {
            call: "c1".into(),
            summary: serde_json::Value::Null,
        };
        w.apply("a1", &msg(4, 400, end), 1300);
        let t = w.tile("a1").unwrap();
        assert_eq!((t.state, t.call.clone()), (AgentState::Idle, None));
        // A late warning of the call that ended shows nothing.
        let late = warning("dead_air#2", Severity::Critical, WarningState::Raised);
        assert_eq!(w.apply("a1", &msg(5, 500, late), 1400), Change::None);
        assert!(w.tile("a1").unwrap().warnings.is_empty());
    }

    #[test]
    fn who_needs_help_now_comes_first() {
        let mut w = Wallboard::default();
        for (i, a) in ["idle", "calm", "critical", "helpme", "gone"]
            .iter()
            .enumerate()
        {
            w.apply(
                a,
                &msg(
                    1,
                    0,
                    Body::State {
                        state: AgentState::Idle,
                    },
                ),
                10_000,
            );
            if *a != "idle" && *a != "gone" {
                let call = Body::CallStarted { call: "c1".into() };
                w.apply(a, &msg(2, i as u64, call), 10_000);
            }
        }
        let crit = warning("x#1", Severity::Critical, WarningState::Raised);
        w.apply("critical", &msg(3, 0, crit), 10_000);
        let help = Body::HelpRequest {
            call: None,
            text: "客户要投诉".into(),
        };
        w.apply("helpme", &msg(3, 0, help), 10_000);
        // "gone" last heard at 10 s; at 21 s it is offline, the others were heard since.
        for a in ["idle", "calm", "critical", "helpme"] {
            w.apply(a, &msg(9, 0, Body::Meters(MeterSample::default())), 20_000);
        }
        let order: Vec<&str> = w
            .sorted(&["idle", "calm", "critical", "helpme", "gone"], 21_000)
            .iter()
            .map(|t| t.agent.as_str())
            .collect();
        assert_eq!(order, ["helpme", "critical", "calm", "idle", "gone"]);
        assert!(w.accept_help("helpme"));
        assert!(!w.accept_help("helpme"), "accepted once");
        // A supervisor's teams only: others are not in the list at all.
        assert_eq!(w.sorted(&["calm"], 21_000).len(), 1);
    }

    #[test]
    fn meters_go_out_at_most_twice_a_second() {
        let mut w = Wallboard::default();
        let mut sent = 0;
        for i in 0..100u64 {
            // Ten meter updates a second for ten seconds.
            let now = i * 100;
            let c = w.apply(
                "a1",
                &msg(i + 1, now, Body::Meters(MeterSample::default())),
                now,
            );
            assert_eq!(c, Change::Meters);
            if w.due("a1", now) {
                sent += 1;
            }
        }
        assert_eq!(sent, 20);
    }
}
