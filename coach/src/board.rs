//! The warning board: every warning's lifecycle (raised → updated → cleared, or withdrawn),
//! ids, cooldowns, the per-minute cap, the log and the violation counts. Rules decide *when*;
//! the board decides what the agent sees.

use std::collections::{BTreeMap, VecDeque};

use crate::event::Party;
use crate::rule_id::RuleId;
use crate::rulebook::{Mode, RuleBook};
use crate::warning::{Evidence, Hidden, Severity, Warning, WarningState};

/// How long a one-off warning (jump, interruption, phrase) stays on screen.
const PULSE_MS: u64 = 3000;
/// Ongoing warnings refresh their measured value at most this often.
const UPDATE_MS: u64 = 1000;

/// What a rule says: one warning (or a refresh of it).
#[derive(Debug, Clone)]
pub(crate) struct Notice<'a> {
    pub rule: RuleId,
    /// Distinguishes several warnings of one rule on screen at once (hold alarms).
    pub key: u8,
    pub party: Party,
    /// When the condition began, ms.
    pub start_ms: u64,
    pub zh: String,
    pub en: String,
    pub evidence: Evidence,
    /// The reference line (before `{company}` is filled in).
    pub line: &'a str,
    /// Overrides the rule's severity.
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone)]
struct Active {
    warning: Warning,
    /// Pulses clear themselves at this time.
    expires: Option<u64>,
    last_update: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Board {
    active: BTreeMap<(RuleId, u8), Active>,
    counters: [u32; 14],
    violations: [u32; 14],
    last_clear: [Option<u64>; 14],
    shown: VecDeque<u64>,
    log: Vec<Warning>,
    /// Rules the caller's words excused for the rest of the call.
    excused: Vec<RuleId>,
}

impl Board {
    pub fn log(&self) -> &[Warning] {
        &self.log
    }

    pub fn violations(&self, rule: RuleId) -> u32 {
        self.violations[rule.index()]
    }

    pub fn is_active(&self, rule: RuleId, key: u8) -> bool {
        self.active.contains_key(&(rule, key))
    }

    pub fn is_excused(&self, rule: RuleId) -> bool {
        self.excused.contains(&rule)
    }

    /// Excuses `rule` for the rest of the call: what it shows is cleared at `t`.
    pub fn excuse(&mut self, rule: RuleId, t: u64, out: &mut Vec<Warning>) {
        if self.is_excused(rule) {
            return;
        }
        self.excused.push(rule);
        let keys: Vec<u8> = self
            .active
            .keys()
            .filter(|(r, _)| *r == rule)
            .map(|(_, k)| *k)
            .collect();
        for k in keys {
            self.clear(rule, k, t, out);
        }
    }

    /// Raises warning `(rule, key)` at `now`, or refreshes it when it is showing.
    pub fn raise(&mut self, book: &RuleBook, now: u64, n: Notice<'_>, out: &mut Vec<Warning>) {
        let common = book.rules.rule(n.rule);
        if !common.enabled() || self.is_excused(n.rule) {
            return;
        }
        let line = book.fill(n.line);
        if let Some(a) = self.active.get_mut(&(n.rule, n.key)) {
            // Refresh at most once a second (a measured value changes every 100 ms); new words
            // heard go out at once.
            let new_words = a.warning.evidence.heard != n.evidence.heard;
            if new_words || now >= a.last_update + UPDATE_MS {
                a.warning.state = WarningState::Updated;
                a.warning.t_ms = now;
                a.warning.message_zh = n.zh;
                a.warning.message_en = n.en;
                a.warning.evidence = n.evidence;
                a.warning.line = line;
                if let Some(s) = n.severity {
                    a.warning.severity = s;
                }
                a.last_update = now;
                out.push(a.warning.clone());
                self.log.push(a.warning.clone());
            }
            return;
        }
        if let Some(cleared) = self.last_clear[n.rule.index()] {
            if now < cleared + secs(common.cooldown_s()) {
                return;
            }
        }
        let i = n.rule.index();
        self.counters[i] += 1;
        let id = format!("{}#{}", n.rule, self.counters[i]);
        self.violations[i] += 1;
        while self.shown.front().is_some_and(|&t| t + 60_000 <= now) {
            self.shown.pop_front();
        }
        let severity = n.severity.unwrap_or(common.severity());
        // The per-minute cap keeps the agent from being flooded; a critical warning (forbidden
        // phrase, abuse) is always shown, and counts toward the cap for the others.
        let hidden = if common.mode() == Mode::Log {
            Some(Hidden::LogOnly)
        } else if severity != Severity::Critical
            && self.shown.len() >= book.settings.max_warnings_per_minute as usize
        {
            Some(Hidden::RateCapped)
        } else {
            self.shown.push_back(now);
            None
        };
        let warning = Warning {
            id,
            rule: n.rule,
            severity,
            party: n.party,
            state: WarningState::Raised,
            t_ms: now,
            start_ms: n.start_ms,
            message_zh: n.zh,
            message_en: n.en,
            evidence: n.evidence,
            line,
            hidden,
        };
        out.push(warning.clone());
        self.log.push(warning.clone());
        self.active.insert(
            (n.rule, n.key),
            Active {
                warning,
                expires: None,
                last_update: now,
            },
        );
    }

    /// A one-off warning: shown for 3 s; a new occurrence while one shows replaces it.
    pub fn pulse(&mut self, book: &RuleBook, now: u64, n: Notice<'_>, out: &mut Vec<Warning>) {
        let (rule, key) = (n.rule, n.key);
        self.clear(rule, key, now, out);
        self.last_clear[rule.index()] = None;
        self.raise(book, now, n, out);
        if let Some(a) = self.active.get_mut(&(rule, key)) {
            a.expires = Some(now + PULSE_MS);
        }
    }

    pub fn clear(&mut self, rule: RuleId, key: u8, t: u64, out: &mut Vec<Warning>) {
        if let Some(mut a) = self.active.remove(&(rule, key)) {
            a.warning.state = WarningState::Cleared;
            a.warning.t_ms = t;
            out.push(a.warning.clone());
            self.log.push(a.warning);
            self.last_clear[rule.index()] = Some(t);
        }
    }

    /// Clears every warning showing (the call ended).
    pub fn clear_all(&mut self, t: u64, out: &mut Vec<Warning>) {
        let keys: Vec<(RuleId, u8)> = self.active.keys().copied().collect();
        for (r, k) in keys {
            self.clear(r, k, t, out);
        }
    }

    /// The id of warning `(rule, key)` while it shows.
    pub fn active_id(&self, rule: RuleId, key: u8) -> Option<String> {
        self.active.get(&(rule, key)).map(|a| a.warning.id.clone())
    }

    /// Takes back warning `id`, which the fast path raised and the confirmed stream did not
    /// bear out: it leaves the screen if it still shows and no longer counts as a violation.
    pub fn withdraw(&mut self, id: &str, t: u64, out: &mut Vec<Warning>) {
        let showing = self
            .active
            .iter()
            .find(|(_, a)| a.warning.id == id)
            .map(|(k, _)| *k);
        let warning = match showing {
            Some(k) => self.active.remove(&k).map(|a| a.warning),
            // Already off screen (expired or replaced): the log still gets the correction.
            None => self
                .log
                .iter()
                .rev()
                .find(|w| w.id == id && w.state == WarningState::Raised)
                .cloned(),
        };
        if let Some(mut w) = warning {
            w.state = WarningState::Withdrawn;
            w.t_ms = t;
            let v = &mut self.violations[w.rule.index()];
            *v = v.saturating_sub(1);
            out.push(w.clone());
            self.log.push(w);
        }
    }

    /// Clears the pulses whose 3 s are over at `now`.
    pub fn expire(&mut self, now: u64, out: &mut Vec<Warning>) {
        let due: Vec<(RuleId, u8, u64)> = self
            .active
            .iter()
            .filter_map(|(&(r, k), a)| a.expires.filter(|&e| e <= now).map(|e| (r, k, e)))
            .collect();
        for (r, k, e) in due {
            self.clear(r, k, e, out);
        }
    }
}

/// Seconds from the rule book as milliseconds.
pub(crate) fn secs(s: f64) -> u64 {
    (s * 1000.0).round().max(0.0) as u64
}
