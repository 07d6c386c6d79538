//! The rule engine. Feed [`Event`]s in time order with [`Coach::push`]; warnings come out as
//! state changes. Deterministic: the same events give the same warnings.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::ahead::{Ahead, Provisional, RawRuns, CONFIRM_SLACK_MS, SAME_START_MS};
use crate::event::{Event, Frame, Party, TranscriptSegment};
use crate::rate::{Rate, RateTracker};
use crate::rulebook::{Mode, RuleBook};
use crate::text::Matcher;
use crate::warning::{Evidence, Hidden, Severity, Warning, WarningState};

/// How long a one-off warning (jump, interruption, phrase) stays on screen.
const PULSE_MS: u64 = 3000;
/// Ongoing warnings refresh their measured value at most this often.
const UPDATE_MS: u64 = 1000;

/// Score of one rule over the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleScore {
    pub rule: String,
    pub enabled: bool,
    /// Warnings raised (shown or not).
    pub violations: u32,
    /// 100 − 20 per violation, floored at 0; for `polite`, 20 per polite word, capped at 100.
    pub score: u32,
}

#[derive(Debug, Clone)]
struct Active {
    warning: Warning,
    /// Pulses clear themselves at this time.
    expires: Option<u64>,
    last_update: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SilentStep {
    /// Waiting for the greeting and caller silence.
    Watching,
    /// Prompted step n (1 = repeat 1/2, 2 = repeat 2/2, 3 = closing line, 4 = may hang up).
    Step(u8),
    /// The caller spoke: no silent call.
    Done,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sustain {
    since: Option<u64>,
}

impl Sustain {
    /// Tracks a condition; true once it has held for `need_ms`.
    fn hold(&mut self, on: bool, now: u64, need_ms: u64) -> bool {
        if on {
            let since = *self.since.get_or_insert(now);
            now - since >= need_ms
        } else {
            self.since = None;
            false
        }
    }
}

/// The coach for one call.
#[derive(Debug, Clone)]
pub struct Coach {
    book: RuleBook,
    rate_band: (f64, f64),
    now: u64,
    start: Option<u64>,
    ended: bool,
    active: BTreeMap<(String, u8), Active>,
    counters: BTreeMap<String, u32>,
    violations: BTreeMap<String, u32>,
    last_clear: BTreeMap<String, u64>,
    shown: VecDeque<u64>,
    log: Vec<Warning>,
    // Party activity.
    voiced: [bool; 2],
    utterance: [bool; 2],
    ever_voiced: [bool; 2],
    last_voiced: [Option<u64>; 2],
    agent_line_end: Option<u64>,
    parties_seen: [bool; 2],
    /// Utterance flags of the last 3 s per party, and how many were set: short-term loudness
    /// speaks for the voice only when the 3 s window is mostly speech.
    recent_utt: [VecDeque<bool>; 2],
    recent_utt_count: [usize; 2],
    // Rate.
    rate_out: Sustain,
    rate_dir: i8,
    excused: [bool; 2],
    /// Speech rate per party (agent, caller): transcript characters over voiced time,
    /// bridged by calibrated syllable nuclei.
    rates: [RateTracker; 2],
    transcripts: bool,
    // Loudness rules.
    volume_out: Sustain,
    volume_dir: i8,
    weak: Sustain,
    noise_db: Option<f32>,
    speech_db: Option<f32>,
    caller_voiced_frames: u32,
    noisy: Sustain,
    // Dead air.
    mutual_since: Option<u64>,
    // Talk-over on the confirmed frames: each party's voiced run start, the overlap's start,
    // and whether this overlap has been judged.
    voiced_since: [Option<u64>; 2],
    overlap_since: Option<u64>,
    overlap_judged: bool,
    // The fast path (see `ahead`).
    raw: RawRuns,
    raw_interrupt_for: Option<u64>,
    provisional_interrupt: Option<Provisional>,
    // Silent caller protocol.
    silent: SilentStep,
    silent_step_at: u64,
    // Hold.
    hold_since: Option<u64>,
    hold_interaction: u64,
    hold_alarms: usize,
    thank_due: Option<(u64, u64)>,
    // Greeting and closing.
    greeted: bool,
    agent_recent: VecDeque<(u64, String)>,
    // Abuse.
    abuse_hits: u32,
    reminders: u32,
    polite_words: u32,
    /// Rules the caller's words excused for the rest of the call.
    excused_rules: Vec<String>,
}

impl Coach {
    /// A coach for one call. `agent_id` selects a per-agent speech-rate band when the rule book
    /// has one.
    pub fn new(book: RuleBook, agent_id: Option<&str>) -> Self {
        let r = &book.rules.rate;
        let rate_band = agent_id
            .and_then(|a| r.agents.get(a))
            .map(|b| (b.min_cpm, b.max_cpm))
            .unwrap_or((r.min_cpm, r.max_cpm));
        Self {
            rate_band,
            now: 0,
            start: None,
            ended: false,
            active: BTreeMap::new(),
            counters: BTreeMap::new(),
            violations: BTreeMap::new(),
            last_clear: BTreeMap::new(),
            shown: VecDeque::new(),
            log: Vec::new(),
            voiced: [false; 2],
            utterance: [false; 2],
            ever_voiced: [false; 2],
            last_voiced: [None; 2],
            agent_line_end: None,
            parties_seen: [false; 2],
            recent_utt: [VecDeque::new(), VecDeque::new()],
            recent_utt_count: [0; 2],
            rate_out: Sustain::default(),
            rate_dir: 0,
            excused: [false; 2],
            rates: Default::default(),
            transcripts: false,
            volume_out: Sustain::default(),
            volume_dir: 0,
            weak: Sustain::default(),
            noise_db: None,
            speech_db: None,
            caller_voiced_frames: 0,
            noisy: Sustain::default(),
            mutual_since: None,
            voiced_since: [None; 2],
            overlap_since: None,
            overlap_judged: false,
            raw: RawRuns::default(),
            raw_interrupt_for: None,
            provisional_interrupt: None,
            silent: SilentStep::Watching,
            silent_step_at: 0,
            hold_since: None,
            hold_interaction: 0,
            hold_alarms: 0,
            thank_due: None,
            greeted: false,
            agent_recent: VecDeque::new(),
            abuse_hits: 0,
            reminders: 0,
            polite_words: 0,
            excused_rules: Vec::new(),
            book,
        }
    }

    /// Every warning state change so far (the report's warning log).
    pub fn log(&self) -> &[Warning] {
        &self.log
    }

    /// Each party's speech rate over the whole call (agent, caller), with its source.
    pub fn speech_rates(&self) -> [Option<Rate>; 2] {
        [self.rates[0].call_rate(), self.rates[1].call_rate()]
    }

    /// Per-rule scores so far.
    pub fn scores(&self) -> Vec<RuleScore> {
        crate::rulebook::RULE_IDS
            .iter()
            .map(|&rule| {
                let violations = self.violations.get(rule).copied().unwrap_or(0);
                let score = if rule == "polite" {
                    (self.polite_words * 20).min(100)
                } else {
                    100u32.saturating_sub(20 * violations)
                };
                RuleScore {
                    rule: rule.to_string(),
                    enabled: self.enabled(rule),
                    violations,
                    score,
                }
            })
            .collect()
    }

    /// Processes one event; appends warning state changes to `out`.
    pub fn push(&mut self, event: &Event, out: &mut Vec<Warning>) {
        if self.ended {
            // The call is over: audio or text after its end raises nothing.
            return;
        }
        let t = event.time_ms();
        if let Event::LoudnessJump { .. } = event {
            if self.parties_seen.iter().any(|&s| s) && t > self.now {
                // Decided on the arriving frames, ahead of the confirmed ones: handled at its
                // own time without moving the clock the frames drive (rules measuring from
                // "now" would otherwise date their conditions up to 0.68 s late).
                let saved = self.now;
                self.now = t;
                self.jump(event, out);
                self.now = saved;
                return;
            }
        }
        self.advance(t, out);
        if self.start.is_none() && !matches!(event, Event::CallStart { .. }) {
            self.start = Some(0);
        }
        match event {
            Event::CallStart { t_ms } => self.start = Some(*t_ms),
            Event::CallEnd { t_ms, hung_up_by } => self.call_end(*t_ms, *hung_up_by, out),
            Event::HoldStart { t_ms } => {
                self.hold_since = Some(*t_ms);
                self.hold_interaction = *t_ms;
                self.hold_alarms = 0;
                self.mutual_since = None;
                self.clear("dead_air", 0, *t_ms, out);
            }
            Event::HoldEnd { t_ms } => {
                if self.hold_since.take().is_some() {
                    for k in 0..4 {
                        self.clear("hold", k, *t_ms, out);
                    }
                    self.thank_due =
                        Some((*t_ms, *t_ms + secs(self.book.rules.hold.thank_within_s)));
                }
            }
            Event::Frame(f) => self.frame(f, out),
            Event::LoudnessJump { .. } => self.jump(event, out),
            Event::TalkOver {
                start_ms,
                end_ms,
                second: Party::Agent,
            } if !(self.parties_seen[0] && self.parties_seen[1]) => {
                // Events without frames (an already-analysed call): judged at the overlap's
                // end. With frames, the overlap is judged on them as it happens.
                let r = self.book.rules.interrupt.clone();
                let dur = (end_ms - start_ms) as f64 / 1000.0;
                if dur >= r.min_overlap_s {
                    let ev = Evidence {
                        measured: Some(dur),
                        threshold: Some(r.min_overlap_s),
                        unit: Some("s".into()),
                        heard: None,
                    };
                    self.pulse(
                        "interrupt",
                        0,
                        Party::Agent,
                        *start_ms,
                        "打断了客户讲话",
                        "Interrupted the caller",
                        ev,
                        &r.line,
                        out,
                    );
                }
            }
            Event::TalkOver { .. } => {}
            Event::Transcript(seg) => self.transcript(seg, out),
        }
    }

    /// A sudden loudness rise of the agent (the `gradual` rule).
    fn jump(&mut self, event: &Event, out: &mut Vec<Warning>) {
        let Event::LoudnessJump {
            party: Party::Agent,
            onset_ms,
            rise_db,
            ..
        } = event
        else {
            return;
        };
        let r = self.book.rules.gradual.clone();
        if f64::from(*rise_db) >= r.min_rise_db {
            let ev = Evidence {
                measured: Some(f64::from(*rise_db)),
                threshold: Some(r.min_rise_db),
                unit: Some("dB".into()),
                heard: None,
            };
            self.pulse(
                "gradual",
                0,
                Party::Agent,
                *onset_ms,
                "音量突然提高",
                "Voice raised abruptly",
                ev,
                &r.line,
                out,
            );
        }
    }

    /// Ends the call at `t_ms` if no `CallEnd` came (closes everything still open).
    pub fn finish(&mut self, t_ms: u64, out: &mut Vec<Warning>) {
        if !self.ended {
            self.push(
                &Event::CallEnd {
                    t_ms,
                    hung_up_by: None,
                },
                out,
            );
        }
    }

    fn enabled(&self, rule: &str) -> bool {
        self.book.rules.common(rule).is_some_and(|c| c.enabled())
    }

    fn excused_by(&self, rule: &str) -> &[String] {
        self.book.rules.common(rule).map_or(&[], |c| c.excused_by())
    }

    fn meta(&self, rule: &str) -> (Mode, Severity, f64) {
        self.book
            .rules
            .common(rule)
            .map_or((Mode::Log, Severity::Info, 0.0), |c| {
                (c.mode(), c.severity(), c.cooldown_s())
            })
    }

    /// Raises (or updates) warning `(rule, key)`.
    #[allow(clippy::too_many_arguments)]
    fn raise(
        &mut self,
        rule: &str,
        key: u8,
        party: Party,
        start_ms: u64,
        zh: &str,
        en: &str,
        evidence: Evidence,
        line: &str,
        severity: Option<Severity>,
        out: &mut Vec<Warning>,
    ) {
        if !self.enabled(rule) || self.excused_rules.iter().any(|r| r == rule) {
            return;
        }
        let now = self.now;
        let line = self.book.fill(line);
        if let Some(a) = self.active.get_mut(&(rule.to_string(), key)) {
            // Refresh at most once a second (a measured value changes every 100 ms); new words
            // heard go out at once.
            let new_words = a.warning.evidence.heard != evidence.heard;
            if new_words || now >= a.last_update + UPDATE_MS {
                a.warning.state = WarningState::Updated;
                a.warning.t_ms = now;
                a.warning.message_zh = zh.to_string();
                a.warning.message_en = en.to_string();
                a.warning.evidence = evidence;
                a.warning.line = line;
                if let Some(s) = severity {
                    a.warning.severity = s;
                }
                a.last_update = now;
                out.push(a.warning.clone());
                self.log.push(a.warning.clone());
            }
            return;
        }
        let (mode, default_severity, cooldown) = self.meta(rule);
        if let Some(&cleared) = self.last_clear.get(rule) {
            if now < cleared + secs(cooldown) {
                return;
            }
        }
        let n = self.counters.entry(rule.to_string()).or_insert(0);
        *n += 1;
        let id = format!("{rule}#{n}");
        *self.violations.entry(rule.to_string()).or_insert(0) += 1;
        while self.shown.front().is_some_and(|&t| t + 60_000 <= now) {
            self.shown.pop_front();
        }
        let severity = severity.unwrap_or(default_severity);
        // The per-minute cap keeps the agent from being flooded; a critical warning (forbidden
        // phrase, abuse) is always shown, and counts toward the cap for the others.
        let hidden = if mode == Mode::Log {
            Some(Hidden::LogOnly)
        } else if severity != Severity::Critical
            && self.shown.len() >= self.book.settings.max_warnings_per_minute as usize
        {
            Some(Hidden::RateCapped)
        } else {
            self.shown.push_back(now);
            None
        };
        let warning = Warning {
            id,
            rule: rule.to_string(),
            severity,
            party,
            state: WarningState::Raised,
            t_ms: now,
            start_ms,
            message_zh: zh.to_string(),
            message_en: en.to_string(),
            evidence,
            line,
            hidden,
        };
        out.push(warning.clone());
        self.log.push(warning.clone());
        self.active.insert(
            (rule.to_string(), key),
            Active {
                warning,
                expires: None,
                last_update: now,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn pulse(
        &mut self,
        rule: &str,
        key: u8,
        party: Party,
        start_ms: u64,
        zh: &str,
        en: &str,
        evidence: Evidence,
        line: &str,
        out: &mut Vec<Warning>,
    ) {
        // A new occurrence while one is showing replaces it.
        self.clear(rule, key, self.now, out);
        self.last_clear.remove(rule);
        self.raise(
            rule, key, party, start_ms, zh, en, evidence, line, None, out,
        );
        if let Some(a) = self.active.get_mut(&(rule.to_string(), key)) {
            a.expires = Some(self.now + PULSE_MS);
        }
    }

    fn clear(&mut self, rule: &str, key: u8, t: u64, out: &mut Vec<Warning>) {
        if let Some(mut a) = self.active.remove(&(rule.to_string(), key)) {
            a.warning.state = WarningState::Cleared;
            a.warning.t_ms = t;
            out.push(a.warning.clone());
            self.log.push(a.warning);
            self.last_clear.insert(rule.to_string(), t);
        }
    }

    /// Moves time forward: expires pulses, fires time-outs.
    fn advance(&mut self, t: u64, out: &mut Vec<Warning>) {
        self.now = self.now.max(t);
        let due: Vec<(String, u8, u64)> = self
            .active
            .iter()
            .filter_map(|((r, k), a)| {
                a.expires
                    .filter(|&e| e <= self.now)
                    .map(|e| (r.clone(), *k, e))
            })
            .collect();
        for (r, k, e) in due {
            self.clear(&r, k, e, out);
        }
        if let Some((from, due)) = self.thank_due {
            if self.now >= due {
                self.thank_due = None;
                if self.transcripts {
                    let r = self.book.rules.hold.clone();
                    let ev = Evidence {
                        threshold: Some(r.thank_within_s),
                        unit: Some("s".into()),
                        ..Evidence::default()
                    };
                    self.pulse(
                        "hold",
                        4,
                        Party::Agent,
                        from,
                        "等待结束后未感谢客户",
                        "Did not thank the caller after the hold",
                        ev,
                        &r.line_thank,
                        out,
                    );
                }
            }
        }
    }

    fn frame(&mut self, f: &Frame, out: &mut Vec<Warning>) {
        let p = f.party.index();
        self.parties_seen[p] = true;
        let was_utterance = self.utterance[p];
        self.voiced[p] = f.voiced;
        if !f.voiced {
            self.voiced_since[p] = None;
        } else if self.voiced_since[p].is_none() {
            self.voiced_since[p] = Some(f.t_ms);
        }
        self.utterance[p] = f.utterance;
        if f.voiced {
            self.ever_voiced[p] = true;
            self.last_voiced[p] = Some(f.t_ms);
        }
        self.rates[p].frame(f.t_ms, f.utterance, f.nucleus);
        let boundary = f.t_ms % 100 == 90;
        self.recent_utt[p].push_back(f.utterance);
        self.recent_utt_count[p] += usize::from(f.utterance);
        if self.recent_utt[p].len() > 300 && self.recent_utt[p].pop_front() == Some(true) {
            self.recent_utt_count[p] -= 1;
        }
        let mostly_speech = self.recent_utt_count[p] >= 210;
        match f.party {
            Party::Agent => {
                if was_utterance && !f.utterance {
                    self.agent_line_end = Some(f.t_ms);
                }
                if boundary {
                    self.rate_tick(out);
                }
                if let (Some(st), true) = (f.short_term_lufs, f.utterance && mostly_speech) {
                    self.volume_tick(st, out);
                }
                if f.voiced && self.hold_since.is_some() {
                    self.hold_interaction = f.t_ms;
                    self.clear("hold", 0, f.t_ms, out);
                }
                self.greeting_timeout(out);
            }
            Party::Caller => {
                self.caller_levels(f, boundary, mostly_speech, out);
                if f.voiced && !matches!(self.silent, SilentStep::Done) {
                    self.silent = SilentStep::Done;
                    self.clear("silent_caller", 0, f.t_ms, out);
                }
                // Cross-party rules once both parties' frames for this time are in.
                self.dead_air(out);
                self.talk_over(out);
                self.silent_caller(out);
            }
        }
        self.hold_tick(out);
    }

    fn rate_tick(&mut self, out: &mut Vec<Warning>) {
        let r = self.book.rules.rate.clone();
        // Up to the end of the current frame (rate ticks fall on a frame's last 10 ms).
        let cpm = self.rates[0]
            .rate(
                self.now + 10,
                secs(r.window_s),
                (r.min_speech_s * 1000.0).round() as u64,
            )
            .map(|r| r.chars_per_min);
        let (lo, hi) = self.rate_band;
        let dir = match cpm {
            Some(c) if c > hi && !self.excused[0] => 1,
            Some(c) if c < lo && !self.excused[1] => -1,
            _ => 0,
        };
        if dir != self.rate_dir {
            self.rate_out = Sustain::default();
            self.clear("rate", 0, self.now, out);
            self.rate_dir = dir;
        }
        if self.rate_out.hold(dir != 0, self.now, secs(r.sustain_s)) {
            let c = cpm.unwrap_or(0.0);
            let (zh, en, line, th) = if dir > 0 {
                (
                    format!("语速过快：每分钟{c:.0}字"),
                    format!("Speaking too fast: {c:.0} chars/min"),
                    r.line_too_fast.clone(),
                    hi,
                )
            } else {
                (
                    format!("语速过慢：每分钟{c:.0}字"),
                    format!("Speaking too slowly: {c:.0} chars/min"),
                    r.line_too_slow.clone(),
                    lo,
                )
            };
            let ev = Evidence {
                measured: Some(c.round()),
                threshold: Some(th),
                unit: Some("chars/min".into()),
                heard: None,
            };
            let start = self.rate_out.since.unwrap_or(self.now);
            self.raise(
                "rate",
                0,
                Party::Agent,
                start,
                &zh,
                &en,
                ev,
                &line,
                None,
                out,
            );
        }
    }

    fn volume_tick(&mut self, st: f32, out: &mut Vec<Warning>) {
        let r = self.book.rules.volume.clone();
        let v = f64::from(st);
        let dir = if v > r.max_lufs {
            1
        } else if v < r.min_lufs {
            -1
        } else {
            0
        };
        if dir != self.volume_dir {
            self.volume_out = Sustain::default();
            self.clear("volume", 0, self.now, out);
            self.volume_dir = dir;
        }
        if self.volume_out.hold(dir != 0, self.now, secs(r.sustain_s)) {
            let (zh, en, line, th) = if dir > 0 {
                (
                    format!("音量过大：{v:.0} LUFS"),
                    format!("Too loud: {v:.0} LUFS"),
                    r.line_too_loud.clone(),
                    r.max_lufs,
                )
            } else {
                (
                    format!("音量过小：{v:.0} LUFS"),
                    format!("Too quiet: {v:.0} LUFS"),
                    r.line_too_quiet.clone(),
                    r.min_lufs,
                )
            };
            let ev = Evidence {
                measured: Some((v * 10.0).round() / 10.0),
                threshold: Some(th),
                unit: Some("LUFS".into()),
                heard: None,
            };
            let start = self.volume_out.since.unwrap_or(self.now);
            self.raise(
                "volume",
                0,
                Party::Agent,
                start,
                &zh,
                &en,
                ev,
                &line,
                None,
                out,
            );
        }
    }

    fn caller_levels(
        &mut self,
        f: &Frame,
        boundary: bool,
        mostly_speech: bool,
        out: &mut Vec<Warning>,
    ) {
        // Exponential averages with a ~3 s time constant, separately for speech and pauses.
        const ALPHA: f32 = 0.0033;
        let slot = if f.voiced {
            &mut self.speech_db
        } else {
            &mut self.noise_db
        };
        *slot = Some(match *slot {
            Some(v) => v + ALPHA * (f.energy_db - v),
            None => f.energy_db,
        });
        if f.voiced {
            self.caller_voiced_frames += 1;
        }
        if let (Some(st), true) = (f.short_term_lufs, f.utterance && mostly_speech) {
            let r = self.book.rules.weak_caller.clone();
            let v = f64::from(st);
            if self
                .weak
                .hold(v < r.max_caller_lufs, self.now, secs(r.sustain_s))
            {
                let ev = Evidence {
                    measured: Some((v * 10.0).round() / 10.0),
                    threshold: Some(r.max_caller_lufs),
                    unit: Some("LUFS".into()),
                    heard: None,
                };
                let start = self.weak.since.unwrap_or(self.now);
                self.raise(
                    "weak_caller",
                    0,
                    Party::Caller,
                    start,
                    "客户声音微弱",
                    "The caller is hard to hear",
                    ev,
                    &r.line,
                    None,
                    out,
                );
            } else if self.weak.since.is_none() {
                self.clear("weak_caller", 0, self.now, out);
            }
        }
        if boundary && self.caller_voiced_frames >= 200 {
            if let (Some(s), Some(n)) = (self.speech_db, self.noise_db) {
                let r = self.book.rules.noisy_caller.clone();
                let snr = f64::from(s - n);
                let noisy = snr < r.min_snr_db || f64::from(n) > r.max_noise_dbfs;
                if self.noisy.hold(noisy, self.now, secs(r.sustain_s)) {
                    let ev = Evidence {
                        measured: Some(snr.round()),
                        threshold: Some(r.min_snr_db),
                        unit: Some("dB SNR".into()),
                        heard: None,
                    };
                    let start = self.noisy.since.unwrap_or(self.now);
                    self.raise(
                        "noisy_caller",
                        0,
                        Party::Caller,
                        start,
                        "客户环境杂音大",
                        "Noisy line on the caller's side",
                        ev,
                        &r.line,
                        None,
                        out,
                    );
                } else if !noisy {
                    self.clear("noisy_caller", 0, self.now, out);
                }
            }
        }
    }

    /// Is dead air being watched for now (both parties have spoken, no hold, no silent-call
    /// protocol running, the call not over)?
    fn dead_air_watch(&self) -> bool {
        self.ever_voiced[0]
            && self.ever_voiced[1]
            && !self.ended
            && self.hold_since.is_none()
            && !matches!(self.silent, SilentStep::Step(_))
    }

    fn dead_air(&mut self, out: &mut Vec<Warning>) {
        let silent = !self.voiced[0] && !self.voiced[1];
        if silent && self.dead_air_watch() {
            let since = *self.mutual_since.get_or_insert(self.now);
            self.dead_air_at(since, out);
        } else {
            self.mutual_since = None;
            self.clear("dead_air", 0, self.now, out);
        }
    }

    /// Raises (or refreshes) dead air silent since `since` when it has lasted long enough at
    /// the coach's time.
    fn dead_air_at(&mut self, since: u64, out: &mut Vec<Warning>) {
        let r = self.book.rules.dead_air.clone();
        let dur = (self.now - since) as f64 / 1000.0;
        if dur >= r.max_silence_s {
            let ev = Evidence {
                measured: Some(dur.floor()),
                threshold: Some(r.max_silence_s),
                unit: Some("s".into()),
                heard: None,
            };
            self.raise(
                "dead_air",
                0,
                Party::Agent,
                since,
                &format!("冷场{:.0}秒", dur.floor()),
                &format!("Dead air for {:.0} s", dur.floor()),
                ev,
                &r.line,
                None,
                out,
            );
        }
    }

    /// The agent talking over the caller, judged on the confirmed frames the moment the overlap
    /// reaches the rule's minimum: confirms the fast path's provisional warning for the same
    /// overlap, or raises it (later) when the fast path did not.
    fn talk_over(&mut self, out: &mut Vec<Warning>) {
        if !(self.voiced[0] && self.voiced[1]) {
            self.overlap_since = None;
            self.overlap_judged = false;
        } else {
            let since = *self.overlap_since.get_or_insert(self.now);
            let agent_second = self.voiced_since[0] > self.voiced_since[1];
            let r = self.book.rules.interrupt.clone();
            let dur_ms = self.now + 10 - since;
            if !self.overlap_judged && agent_second && dur_ms >= secs(r.min_overlap_s) {
                self.overlap_judged = true;
                match self.provisional_interrupt.take() {
                    Some(p) if p.start_ms.abs_diff(since) <= SAME_START_MS => {}
                    earlier => {
                        if earlier.is_some() {
                            self.withdraw("interrupt", 0, self.now, out);
                        }
                        self.interrupt_at(since, dur_ms, out);
                    }
                }
            }
        }
        if self
            .provisional_interrupt
            .is_some_and(|p| self.now > p.deadline_ms)
        {
            self.provisional_interrupt = None;
            self.withdraw("interrupt", 0, self.now, out);
        }
    }

    fn interrupt_at(&mut self, start_ms: u64, dur_ms: u64, out: &mut Vec<Warning>) {
        let r = self.book.rules.interrupt.clone();
        let ev = Evidence {
            measured: Some(dur_ms as f64 / 1000.0),
            threshold: Some(r.min_overlap_s),
            unit: Some("s".into()),
            heard: None,
        };
        self.pulse(
            "interrupt",
            0,
            Party::Agent,
            start_ms,
            "打断了客户讲话",
            "Interrupted the caller",
            ev,
            &r.line,
            out,
        );
    }

    /// The fast path: both parties' raw decisions on a frame as it arrives, ahead of its
    /// confirmed frames (see [`crate::ahead`]). Warnings raised here carry the frame's time.
    /// The caller must not feed frames past an event the coach has not yet seen (a hold or
    /// the call's end at or before `a.t_ms`).
    pub fn ahead(&mut self, a: &Ahead, out: &mut Vec<Warning>) {
        if self.ended || a.t_ms < self.now {
            return;
        }
        self.raw.push(a);
        let confirmed = self.now;
        let saved = self.now;
        self.now = a.t_ms;
        // Still silent: final once no raw speech followed the last confirmed frame.
        if let Some(since) = self.mutual_since {
            let quiet = !(0..2).any(|p| self.raw.voiced_after(p, confirmed));
            if quiet && self.dead_air_watch() && !self.is_active("dead_air", 0) {
                self.dead_air_at(since, out);
            }
        }
        // Both talking, the agent second: provisional.
        if let (Some(agent), Some(caller)) = (self.raw.run_start[0], self.raw.run_start[1]) {
            let talking = a.voiced[0] == Some(true) && self.raw.in_run(1, a.t_ms);
            let min = secs(self.book.rules.interrupt.min_overlap_s);
            let dur_ms = a.t_ms + 10 - agent;
            if talking
                && agent > caller
                && dur_ms >= min
                && self.raw_interrupt_for != Some(agent)
                && self.enabled("interrupt")
            {
                self.raw_interrupt_for = Some(agent);
                let already = self
                    .overlap_since
                    .is_some_and(|s| s.abs_diff(agent) <= SAME_START_MS && self.overlap_judged);
                if !already {
                    if self.provisional_interrupt.is_some() {
                        self.withdraw("interrupt", 0, a.t_ms, out);
                    }
                    self.interrupt_at(agent, dur_ms, out);
                    if self.is_active("interrupt", 0) {
                        self.provisional_interrupt = Some(Provisional {
                            start_ms: agent,
                            deadline_ms: agent + min + CONFIRM_SLACK_MS,
                        });
                    }
                }
            }
        }
        self.now = saved;
    }

    fn is_active(&self, rule: &str, key: u8) -> bool {
        self.active.contains_key(&(rule.to_string(), key))
    }

    /// Takes back a warning the fast path raised and the confirmed stream did not bear out:
    /// it no longer counts as a violation.
    fn withdraw(&mut self, rule: &str, key: u8, t: u64, out: &mut Vec<Warning>) {
        let Some(mut a) = self.active.remove(&(rule.to_string(), key)) else {
            // Already off screen (expired): the log still gets the correction.
            if let Some(mut w) = self
                .log
                .iter()
                .rev()
                .find(|w| w.rule == rule && w.state == WarningState::Raised)
                .cloned()
            {
                w.state = WarningState::Withdrawn;
                w.t_ms = t;
                self.uncount(rule);
                out.push(w.clone());
                self.log.push(w);
            }
            return;
        };
        a.warning.state = WarningState::Withdrawn;
        a.warning.t_ms = t;
        self.uncount(rule);
        out.push(a.warning.clone());
        self.log.push(a.warning);
    }

    fn uncount(&mut self, rule: &str) {
        if let Some(v) = self.violations.get_mut(rule) {
            *v = v.saturating_sub(1);
        }
    }

    fn silent_caller(&mut self, out: &mut Vec<Warning>) {
        if self.ever_voiced[1] || !self.parties_seen[1] {
            return;
        }
        let r = self.book.rules.silent_caller.clone();
        let Some(line_end) = self.agent_line_end else {
            return;
        };
        if self.utterance[0] {
            return; // the agent is speaking a line
        }
        let quiet_ms = self.now.saturating_sub(line_end);
        let (next, wait, zh, en, line, sev) = match self.silent {
            SilentStep::Watching => (
                1,
                r.caller_silent_s,
                "无声电话：请重复开头语（1/2）",
                "Silent caller: repeat the opening line (1/2)",
                r.opening_line.clone(),
                Severity::Warning,
            ),
            SilentStep::Step(1) => (
                2,
                r.repeat_after_s,
                "无声电话：请再次重复开头语（2/2）",
                "Silent caller: repeat the opening line (2/2)",
                r.opening_line.clone(),
                Severity::Warning,
            ),
            SilentStep::Step(2) => (
                3,
                r.closing_after_s,
                "无声电话：请说结束语",
                "Silent caller: say the closing line for silent calls",
                r.closing_line.clone(),
                Severity::Warning,
            ),
            SilentStep::Step(3) => (
                4,
                r.hangup_after_s,
                "无声电话：现在可以挂机",
                "Silent caller: you may end the call now",
                String::new(),
                Severity::Info,
            ),
            _ => return,
        };
        // Each step needs a new line from the agent after the previous prompt (except the first).
        let spoke_since_prompt =
            matches!(self.silent, SilentStep::Watching) || line_end > self.silent_step_at;
        if spoke_since_prompt && quiet_ms >= secs(wait) {
            self.silent = SilentStep::Step(next);
            self.silent_step_at = self.now;
            let ev = Evidence {
                measured: Some(f64::from(next)),
                threshold: Some(4.0),
                unit: Some("step".into()),
                heard: None,
            };
            let start = self.start.unwrap_or(0);
            self.raise(
                "silent_caller",
                0,
                Party::Agent,
                start,
                zh,
                en,
                ev,
                &line,
                Some(sev),
                out,
            );
        }
    }

    fn hold_tick(&mut self, out: &mut Vec<Warning>) {
        let Some(since) = self.hold_since else { return };
        let r = self.book.rules.hold.clone();
        let quiet = self.now - self.hold_interaction;
        if quiet >= secs(r.interact_every_s) {
            let ev = Evidence {
                measured: Some((quiet / 1000) as f64),
                threshold: Some(r.interact_every_s),
                unit: Some("s".into()),
                heard: None,
            };
            self.raise(
                "hold",
                0,
                Party::Agent,
                self.hold_interaction,
                "等待中请与客户交流",
                "On hold: speak to the caller",
                ev,
                &r.line_interact,
                None,
                out,
            );
        }
        let held = self.now - since;
        while self.hold_alarms < r.alarm_s.len().min(3) && held >= secs(r.alarm_s[self.hold_alarms])
        {
            let limit = r.alarm_s[self.hold_alarms];
            let last = self.hold_alarms + 1 == r.alarm_s.len();
            self.hold_alarms += 1;
            let ev = Evidence {
                measured: Some(limit),
                threshold: Some(limit),
                unit: Some("s".into()),
                heard: None,
            };
            let sev = if last {
                Severity::Critical
            } else {
                Severity::Warning
            };
            self.raise(
                "hold",
                self.hold_alarms as u8,
                Party::Agent,
                since,
                &format!("等待已超过{limit:.0}秒"),
                &format!("On hold for over {limit:.0} s"),
                ev,
                &r.line_alarm,
                Some(sev),
                out,
            );
        }
    }

    fn greeting_timeout(&mut self, out: &mut Vec<Warning>) {
        let r = self.book.rules.greeting.clone();
        let start = self.start.unwrap_or(0);
        if !self.greeted && self.now >= start + secs(r.within_s) {
            self.greeted = true;
            if !self.ever_voiced[0] {
                let ev = Evidence {
                    threshold: Some(r.within_s),
                    unit: Some("s".into()),
                    ..Evidence::default()
                };
                self.pulse(
                    "greeting",
                    0,
                    Party::Agent,
                    start,
                    "未及时问候客户",
                    "No greeting in the first seconds",
                    ev,
                    &r.line,
                    out,
                );
            }
        }
    }

    fn transcript(&mut self, seg: &TranscriptSegment, out: &mut Vec<Warning>) {
        self.transcripts = true;
        self.rates[seg.party.index()].transcript(seg.start_ms, seg.end_ms, &seg.text);
        let m = Matcher::new(&seg.text);
        let tol = self.book.settings.phrase_tolerance;
        match seg.party {
            Party::Caller => {
                if !seg.text.trim().is_empty() {
                    self.ever_voiced[1] = true;
                }
                for rule in crate::rulebook::RULE_IDS {
                    if !self.excused_rules.iter().any(|r| r == rule)
                        && self
                            .excused_by(rule)
                            .iter()
                            .any(|p| m.find(p, tol).is_some())
                    {
                        self.excused_rules.push(rule.to_string());
                        let keys: Vec<u8> = self
                            .active
                            .keys()
                            .filter(|(r, _)| r == rule)
                            .map(|(_, k)| *k)
                            .collect();
                        for k in keys {
                            self.clear(rule, k, seg.end_ms, out);
                        }
                    }
                }
                let r = self.book.rules.rate.clone();
                if r.excuse_too_fast.iter().any(|p| m.find(p, tol).is_some()) {
                    self.excused[0] = true;
                }
                if r.excuse_too_slow.iter().any(|p| m.find(p, tol).is_some()) {
                    self.excused[1] = true;
                }
                let a = self.book.rules.abusive.clone();
                if let Some(word) = a.words.iter().find_map(|w| m.find(w, 0)) {
                    self.abuse_hits += 1;
                    // Reminder n of N is the one to give now; after N given, a polite end.
                    let n = self.reminders + 1;
                    let ev = Evidence {
                        measured: Some(f64::from(self.reminders)),
                        threshold: Some(f64::from(a.reminders_before_end)),
                        unit: Some("reminders given".into()),
                        heard: Some(word),
                    };
                    if self.reminders >= a.reminders_before_end {
                        self.pulse(
                            "abusive",
                            0,
                            Party::Caller,
                            seg.start_ms,
                            "已提醒三次：可礼貌结束通话",
                            "Reminded enough: you may end the call politely",
                            ev,
                            &a.end_line,
                            out,
                        );
                    } else {
                        let zh = format!(
                            "客户言语不文明：请礼貌提醒（{n}/{}）",
                            a.reminders_before_end
                        );
                        let en = format!(
                            "Abusive caller: remind politely ({n}/{})",
                            a.reminders_before_end
                        );
                        self.pulse(
                            "abusive",
                            0,
                            Party::Caller,
                            seg.start_ms,
                            &zh,
                            &en,
                            ev,
                            &a.reminder_line,
                            out,
                        );
                    }
                }
            }
            Party::Agent => {
                let abusive = self.book.rules.abusive.clone();
                if self.abuse_hits > 0
                    && abusive
                        .reminder_phrases
                        .iter()
                        .any(|p| m.find(p, tol).is_some())
                {
                    self.reminders += 1;
                }
                self.greeting_text(seg, &m, out);
                let f = self.book.rules.forbidden.clone();
                for (category, phrases) in &f.categories {
                    if let Some(heard) = phrases.iter().find_map(|p| m.find(p, tol)) {
                        let ev = Evidence {
                            heard: Some(heard.clone()),
                            unit: Some(category.clone()),
                            ..Evidence::default()
                        };
                        let zh = format!("忌语（{category}）：“{heard}”");
                        let en = format!("Forbidden phrase ({category}): \u{201c}{heard}\u{201d}");
                        self.pulse(
                            "forbidden",
                            0,
                            Party::Agent,
                            seg.start_ms,
                            &zh,
                            &en,
                            ev,
                            &f.line,
                            out,
                        );
                    }
                }
                let polite = self.book.rules.polite.words.clone();
                // Count the longest polite words first so 请问 is not also counted as 请.
                let mut rest = m.text.clone();
                let mut words = polite;
                words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
                for w in &words {
                    let n = rest.matches(w.as_str()).count();
                    self.polite_words += n as u32;
                    rest = rest.replace(w.as_str(), "|");
                }
                if let Some((from, _)) = self.thank_due {
                    let h = self.book.rules.hold.clone();
                    if seg.start_ms >= from
                        && h.thank_phrases.iter().any(|p| m.find(p, tol).is_some())
                    {
                        self.thank_due = None;
                    }
                }
                self.agent_recent.push_back((seg.end_ms, m.text.clone()));
                let keep = secs(self.book.rules.closing.last_s);
                while self
                    .agent_recent
                    .front()
                    .is_some_and(|(end, _)| end + keep < seg.end_ms)
                {
                    self.agent_recent.pop_front();
                }
            }
        }
    }

    fn greeting_text(&mut self, seg: &TranscriptSegment, m: &Matcher, out: &mut Vec<Warning>) {
        let r = self.book.rules.greeting.clone();
        let start = self.start.unwrap_or(0);
        if self.greeted || seg.start_ms > start + secs(r.within_s) {
            return;
        }
        self.greeted = true;
        let tol = self.book.settings.phrase_tolerance;
        let missing: Vec<String> = r
            .must_include
            .iter()
            .map(|p| self.book.fill(p))
            .filter(|p| m.find(p, tol).is_none())
            .collect();
        let holiday_missing =
            self.book.is_holiday() && !r.holiday_phrases.iter().any(|p| m.find(p, tol).is_some());
        if missing.is_empty() && !holiday_missing {
            return;
        }
        let mut what = missing.join("、");
        if holiday_missing {
            if !what.is_empty() {
                what.push('、');
            }
            what.push_str("节日问候");
        }
        let ev = Evidence {
            heard: Some(m.text.clone()),
            unit: Some(format!("missing: {what}")),
            ..Evidence::default()
        };
        let mut line = r.line.clone();
        if holiday_missing {
            line = format!(
                "{}，{line}",
                r.holiday_phrases.first().cloned().unwrap_or_default()
            );
        }
        self.pulse(
            "greeting",
            0,
            Party::Agent,
            seg.start_ms,
            &format!("开头语不完整：缺少{what}"),
            &format!("Incomplete greeting: missing {what}"),
            ev,
            &line,
            out,
        );
    }

    fn call_end(&mut self, t: u64, hung_up_by: Option<Party>, out: &mut Vec<Warning>) {
        if self.ended {
            return;
        }
        // Silent-caller protocol cut short.
        if let SilentStep::Step(n) = self.silent {
            if n < 4 {
                let r = self.book.rules.silent_caller.clone();
                let ev = Evidence {
                    measured: Some(f64::from(n)),
                    threshold: Some(4.0),
                    unit: Some("step".into()),
                    heard: None,
                };
                self.raise(
                    "silent_caller",
                    1,
                    Party::Agent,
                    t,
                    "无声电话流程未完成即挂机",
                    "Ended a silent call before the protocol was complete",
                    ev,
                    &r.closing_line,
                    Some(Severity::Critical),
                    out,
                );
            }
        }
        let c = self.book.rules.closing.clone();
        if self.transcripts && self.ever_voiced[1] {
            let recent: Vec<Matcher> = self
                .agent_recent
                .iter()
                .filter(|(end, _)| end + secs(c.last_s) >= t)
                .map(|(_, text)| Matcher::new(text))
                .collect();
            let tol = self.book.settings.phrase_tolerance;
            let has = |phrases: &[String]| {
                recent
                    .iter()
                    .any(|m| phrases.iter().any(|p| m.find(p, tol).is_some()))
            };
            let mut missing = Vec::new();
            if !has(&c.confirm_phrases) {
                missing.push("确认还有其他问题");
            }
            if !has(&c.goodbye_phrases) {
                missing.push("再见");
            }
            if !missing.is_empty() {
                let what = missing.join("、");
                let ev = Evidence {
                    unit: Some(format!("missing: {what}")),
                    ..Evidence::default()
                };
                self.raise(
                    "closing",
                    0,
                    Party::Agent,
                    t,
                    &format!("结束语不完整：缺少{what}"),
                    &format!("Incomplete closing: missing {what}"),
                    ev,
                    &c.line,
                    None,
                    out,
                );
            }
        }
        let allowed_first = matches!(self.silent, SilentStep::Step(4))
            || (self.abuse_hits > 0
                && self.reminders >= self.book.rules.abusive.reminders_before_end);
        if c.caller_hangs_up_first && hung_up_by == Some(Party::Agent) && !allowed_first {
            self.raise(
                "closing",
                1,
                Party::Agent,
                t,
                "坐席先挂机",
                "The agent hung up before the caller",
                Evidence::default(),
                &c.line,
                None,
                out,
            );
        }
        self.ended = true;
        let keys: Vec<(String, u8)> = self.active.keys().cloned().collect();
        for (r, k) in keys {
            self.clear(&r, k, t, out);
        }
    }
}

fn secs(s: f64) -> u64 {
    (s * 1000.0).round().max(0.0) as u64
}
