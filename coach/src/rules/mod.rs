//! The rules, one module each, behind the small [`Rule`] trait. A rule keeps its own state and
//! reads the call's shared [`Facts`]; it speaks through the [`Cx`] (the warning board), and
//! borrows its settings from the rule book (nothing is cloned per frame).

use std::collections::VecDeque;

use crate::ahead::{Ahead, RawRuns};
use crate::board::{Board, Notice};
use crate::event::{Event, Frame, Party, TranscriptSegment};
use crate::rule_id::RuleId;
use crate::rulebook::RuleBook;
use crate::text::Matcher;
use crate::warning::Warning;

pub(crate) mod caller_line;
pub(crate) mod closing;
pub(crate) mod dead_air;
pub(crate) mod flow;
pub(crate) mod gradual;
pub(crate) mod greeting;
pub(crate) mod hold;
pub(crate) mod interrupt;
pub(crate) mod phrases;
pub(crate) mod rate;
pub(crate) mod silent_caller;
pub(crate) mod volume;

/// Where the silent-caller protocol is (dead air and closing depend on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SilentStep {
    /// Waiting for the greeting and caller silence.
    Watching,
    /// Prompted step n (1 = repeat 1/2, 2 = repeat 2/2, 3 = closing line, 4 = may hang up).
    Step(u8),
    /// The caller spoke: no silent call.
    Done,
}

/// What every rule may read about the call so far (the confirmed frames' time, who speaks).
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// Call time of the latest confirmed frame or event, ms.
    pub now: u64,
    pub start: Option<u64>,
    pub ended: bool,
    pub voiced: [bool; 2],
    /// Start of each party's current voiced run.
    pub voiced_since: [Option<u64>; 2],
    pub utterance: [bool; 2],
    pub ever_voiced: [bool; 2],
    pub parties_seen: [bool; 2],
    /// End of the agent's last utterance.
    pub agent_line_end: Option<u64>,
    /// Utterance flags of the last 3 s per party, and how many were set.
    recent_utt: [VecDeque<bool>; 2],
    recent_utt_count: [usize; 2],
    pub hold_since: Option<u64>,
    pub silent: SilentStep,
    /// Transcripts are coming (text rules can judge).
    pub transcripts: bool,
    pub abuse_hits: u32,
    pub reminders: u32,
    /// The fast path's raw runs.
    pub raw: RawRuns,
}

impl Facts {
    pub fn new() -> Self {
        Self {
            now: 0,
            start: None,
            ended: false,
            voiced: [false; 2],
            voiced_since: [None; 2],
            utterance: [false; 2],
            ever_voiced: [false; 2],
            parties_seen: [false; 2],
            agent_line_end: None,
            recent_utt: [VecDeque::with_capacity(301), VecDeque::with_capacity(301)],
            recent_utt_count: [0; 2],
            hold_since: None,
            silent: SilentStep::Watching,
            transcripts: false,
            abuse_hits: 0,
            reminders: 0,
            raw: RawRuns::default(),
        }
    }

    /// Takes in one confirmed frame.
    pub fn frame(&mut self, f: &Frame) {
        let p = f.party.index();
        self.parties_seen[p] = true;
        if p == 0 && self.utterance[0] && !f.utterance {
            self.agent_line_end = Some(f.t_ms);
        }
        self.voiced[p] = f.voiced;
        if !f.voiced {
            self.voiced_since[p] = None;
        } else if self.voiced_since[p].is_none() {
            self.voiced_since[p] = Some(f.t_ms);
        }
        self.utterance[p] = f.utterance;
        if f.voiced {
            self.ever_voiced[p] = true;
        }
        self.recent_utt[p].push_back(f.utterance);
        self.recent_utt_count[p] += usize::from(f.utterance);
        if self.recent_utt[p].len() > 300 && self.recent_utt[p].pop_front() == Some(true) {
            self.recent_utt_count[p] -= 1;
        }
    }

    /// Was party `p` in an utterance for most of the last 3 s (short-term loudness then
    /// speaks for the voice)?
    pub fn mostly_speech(&self, p: Party) -> bool {
        self.recent_utt_count[p.index()] >= 210
    }
}

/// A rule's view of the call while it decides: the rule book, the shared facts, the board.
#[derive(Debug)]
pub(crate) struct Cx<'a> {
    pub book: &'a RuleBook,
    pub facts: &'a mut Facts,
    pub board: &'a mut Board,
    pub out: &'a mut Vec<Warning>,
}

impl Cx<'_> {
    pub fn raise(&mut self, n: Notice<'_>) {
        self.board.raise(self.book, self.facts.now, n, self.out);
    }
    pub fn pulse(&mut self, n: Notice<'_>) {
        self.board.pulse(self.book, self.facts.now, n, self.out);
    }
    pub fn clear(&mut self, rule: RuleId, key: u8) {
        self.board.clear(rule, key, self.facts.now, self.out);
    }
    pub fn clear_at(&mut self, rule: RuleId, key: u8, t: u64) {
        self.board.clear(rule, key, t, self.out);
    }
    pub fn withdraw(&mut self, id: &str) {
        self.board.withdraw(id, self.facts.now, self.out);
    }
    pub fn enabled(&self, rule: RuleId) -> bool {
        self.book.rules.rule(rule).enabled()
    }
    pub fn tolerance(&self) -> usize {
        self.book.settings.phrase_tolerance
    }
}

/// One rule (or a pair that shares its state). Every hook has a do-nothing default; the coach
/// calls them in rule-book order:
/// `frame` on each confirmed frame, `both` once both parties' frames of that time are in,
/// `tick` after that, `ahead` on the fast path's raw frames, `event` on call events and loudness
/// jumps and talk-overs, `transcript` on each segment, `advance` when time moves, `end` at the
/// call's end.
pub(crate) trait Rule: std::fmt::Debug {
    fn frame(&mut self, _cx: &mut Cx<'_>, _f: &Frame) {}
    fn both(&mut self, _cx: &mut Cx<'_>) {}
    fn tick(&mut self, _cx: &mut Cx<'_>) {}
    fn ahead(&mut self, _cx: &mut Cx<'_>, _a: &Ahead, _confirmed_ms: u64) {}
    fn event(&mut self, _cx: &mut Cx<'_>, _e: &Event) {}
    fn transcript(&mut self, _cx: &mut Cx<'_>, _seg: &TranscriptSegment, _m: &Matcher) {}
    fn advance(&mut self, _cx: &mut Cx<'_>) {}
    fn end(&mut self, _cx: &mut Cx<'_>, _t: u64, _hung_up_by: Option<Party>) {}
}

/// Tracks a condition; true once it has held for `need_ms`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sustain {
    pub since: Option<u64>,
}

impl Sustain {
    pub fn hold(&mut self, on: bool, now: u64, need_ms: u64) -> bool {
        if on {
            let since = *self.since.get_or_insert(now);
            now - since >= need_ms
        } else {
            self.since = None;
            false
        }
    }
}
