//! The rule engine. Feed [`Event`]s in time order with [`Coach::push`] (and the fast path's raw
//! frames with [`Coach::ahead`]); warnings come out as state changes. Deterministic: the same
//! events give the same warnings.
//!
//! The coach keeps the call's shared facts and the warning board and hands each input to the
//! rules (`crate::rules`, one module per rule behind a small trait) in rule-book order.

use serde::{Deserialize, Serialize};

use crate::ahead::Ahead;
use crate::board::Board;
use crate::event::{Event, Frame, Party, TranscriptSegment};
use crate::rate::Rate;
use crate::rule_id::RuleId;
use crate::rulebook::RuleBook;
pub use crate::rules::flow::FlowStep;
use crate::rules::{
    caller_line::CallerLine, closing::Closing, dead_air::DeadAir, flow::Flow, gradual::Gradual,
    greeting::Greeting, hold::Hold, interrupt::Interrupt, phrases::Phrases, rate::RateRule,
    silent_caller::SilentCaller, volume::VolumeRule, Cx, Facts, Rule,
};
use crate::text::Matcher;
use crate::warning::Warning;

/// Score of one rule over the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleScore {
    pub rule: RuleId,
    pub enabled: bool,
    /// Warnings raised (shown or not), less those withdrawn.
    pub violations: u32,
    /// 100 − 20 per violation, floored at 0; for `polite`, 20 per polite word, capped at 100.
    pub score: u32,
}

/// The rules, each with its own state.
#[derive(Debug, Clone)]
struct Rules {
    rate: RateRule,
    volume: VolumeRule,
    caller_line: CallerLine,
    hold: Hold,
    greeting: Greeting,
    dead_air: DeadAir,
    interrupt: Interrupt,
    silent_caller: SilentCaller,
    gradual: Gradual,
    phrases: Phrases,
    closing: Closing,
    flow: Flow,
}

impl Rules {
    /// Every rule, in the order they are asked.
    fn all(&mut self) -> [&mut dyn Rule; 12] {
        [
            &mut self.rate,
            &mut self.volume,
            &mut self.caller_line,
            &mut self.hold,
            &mut self.greeting,
            &mut self.dead_air,
            &mut self.interrupt,
            &mut self.silent_caller,
            &mut self.gradual,
            &mut self.phrases,
            &mut self.closing,
            &mut self.flow,
        ]
    }
}

/// The coach for one call.
#[derive(Debug, Clone)]
pub struct Coach {
    book: RuleBook,
    facts: Facts,
    board: Board,
    rules: Rules,
}

impl Coach {
    /// A coach for one call. `agent_id` selects a per-agent speech-rate band when the rule book
    /// has one.
    pub fn new(book: RuleBook, agent_id: Option<&str>) -> Self {
        let r = &book.rules.rate;
        let band = agent_id
            .and_then(|a| r.agents.get(a))
            .map(|b| (b.min_cpm, b.max_cpm))
            .unwrap_or((r.min_cpm, r.max_cpm));
        Self {
            rules: Rules {
                rate: RateRule::new(band),
                volume: VolumeRule::default(),
                caller_line: CallerLine::default(),
                hold: Hold::default(),
                greeting: Greeting::default(),
                dead_air: DeadAir::default(),
                interrupt: Interrupt::default(),
                silent_caller: SilentCaller::default(),
                gradual: Gradual,
                phrases: Phrases::default(),
                closing: Closing::default(),
                flow: Flow::default(),
            },
            facts: Facts::new(),
            board: Board::default(),
            book,
        }
    }

    /// Every warning state change so far (the report's warning log).
    pub fn log(&self) -> &[Warning] {
        self.board.log()
    }

    /// Each party's speech rate over the whole call (agent, caller), with its source.
    pub fn speech_rates(&self) -> [Option<Rate>; 2] {
        self.rules.rate.call_rates()
    }

    /// The call-flow checklist so far: each step of [`FlowStep::ALL`] and whether the agent
    /// has done it (ticked from the transcript with the rule book's phrases).
    pub fn checklist(&self) -> [(FlowStep, bool); 4] {
        let d = self.rules.flow.done;
        [0, 1, 2, 3].map(|i| (FlowStep::ALL[i], d[i]))
    }

    /// Chars/min of `party` every 100 ms of call time (`None` before there is enough speech):
    /// the figure the rate rule judges and the live meter shows.
    pub fn rate_series(&self, party: Party) -> &[Option<f32>] {
        &self.rules.rate.series[party.index()]
    }

    /// Per-rule scores so far.
    pub fn scores(&self) -> Vec<RuleScore> {
        RuleId::ALL
            .into_iter()
            .map(|rule| {
                let violations = self.board.violations(rule);
                let score = if rule == RuleId::Polite {
                    (self.rules.phrases.polite_words * 20).min(100)
                } else {
                    100u32.saturating_sub(20 * violations)
                };
                RuleScore {
                    rule,
                    enabled: self.book.rules.rule(rule).enabled(),
                    violations,
                    score,
                }
            })
            .collect()
    }

    /// Runs `f` on every rule in order with the call's context.
    fn each(&mut self, out: &mut Vec<Warning>, mut f: impl FnMut(&mut dyn Rule, &mut Cx<'_>)) {
        let mut cx = Cx {
            book: &self.book,
            facts: &mut self.facts,
            board: &mut self.board,
            out,
        };
        for rule in self.rules.all() {
            f(rule, &mut cx);
        }
    }

    /// Processes one event; appends warning state changes to `out`.
    pub fn push(&mut self, event: &Event, out: &mut Vec<Warning>) {
        if self.facts.ended {
            // The call is over: audio or text after its end raises nothing.
            return;
        }
        let t = event.time_ms();
        if let Event::LoudnessJump { .. } = event {
            if self.facts.parties_seen.iter().any(|&s| s) && t > self.facts.now {
                // Decided on the arriving frames, ahead of the confirmed ones: handled at its
                // own time without moving the clock the frames drive (rules measuring from
                // "now" would otherwise date their conditions up to 0.68 s late).
                let saved = self.facts.now;
                self.facts.now = t;
                self.each(out, |r, cx| r.event(cx, event));
                self.facts.now = saved;
                return;
            }
        }
        self.advance(t, out);
        if self.facts.start.is_none() && !matches!(event, Event::CallStart { .. }) {
            self.facts.start = Some(0);
        }
        match event {
            Event::CallStart { t_ms } => self.facts.start = Some(*t_ms),
            Event::CallEnd { t_ms, hung_up_by } => self.call_end(*t_ms, *hung_up_by, out),
            Event::Frame(f) => self.frame(f, out),
            Event::Transcript(seg) => self.transcript(seg, out),
            Event::HoldStart { .. }
            | Event::HoldEnd { .. }
            | Event::LoudnessJump { .. }
            | Event::TalkOver { .. } => self.each(out, |r, cx| r.event(cx, event)),
        }
    }

    /// The fast path: both parties' raw decisions on a frame as it arrives, ahead of its
    /// confirmed frames (see [`crate::ahead`]). Warnings raised here carry the frame's time.
    /// The caller must not feed frames past an event the coach has not yet seen (a hold or
    /// the call's end at or before `a.t_ms`).
    pub fn ahead(&mut self, a: &Ahead, out: &mut Vec<Warning>) {
        if self.facts.ended || a.t_ms < self.facts.now {
            return;
        }
        self.facts.raw.push(a);
        let confirmed = self.facts.now;
        self.facts.now = a.t_ms;
        self.each(out, |r, cx| r.ahead(cx, a, confirmed));
        self.facts.now = confirmed;
    }

    /// Ends the call at `t_ms` if no `CallEnd` came (closes everything still open).
    pub fn finish(&mut self, t_ms: u64, out: &mut Vec<Warning>) {
        if !self.facts.ended {
            self.push(
                &Event::CallEnd {
                    t_ms,
                    hung_up_by: None,
                },
                out,
            );
        }
    }

    /// Moves time forward: expires pulses, fires time-outs.
    fn advance(&mut self, t: u64, out: &mut Vec<Warning>) {
        self.facts.now = self.facts.now.max(t);
        self.board.expire(self.facts.now, out);
        self.each(out, |r, cx| r.advance(cx));
    }

    fn frame(&mut self, f: &Frame, out: &mut Vec<Warning>) {
        self.facts.frame(f);
        self.each(out, |r, cx| r.frame(cx, f));
        if f.party == Party::Caller {
            // Cross-party rules once both parties' frames for this time are in.
            self.each(out, |r, cx| r.both(cx));
        }
        self.each(out, |r, cx| r.tick(cx));
    }

    fn transcript(&mut self, seg: &TranscriptSegment, out: &mut Vec<Warning>) {
        self.facts.transcripts = true;
        let m = Matcher::new(&seg.text);
        if seg.party == Party::Caller {
            if !seg.text.trim().is_empty() {
                self.facts.ever_voiced[1] = true;
            }
            // The caller's words can excuse any rule for the rest of the call.
            let tol = self.book.settings.phrase_tolerance;
            for rule in RuleId::ALL {
                if self
                    .book
                    .rules
                    .rule(rule)
                    .excused_by()
                    .iter()
                    .any(|p| m.find(p, tol).is_some())
                {
                    self.board.excuse(rule, seg.end_ms, out);
                }
            }
        }
        self.each(out, |r, cx| r.transcript(cx, seg, &m));
    }

    fn call_end(&mut self, t: u64, hung_up_by: Option<Party>, out: &mut Vec<Warning>) {
        self.each(out, |r, cx| r.end(cx, t, hung_up_by));
        self.facts.ended = true;
        self.board.clear_all(t, out);
    }
}
