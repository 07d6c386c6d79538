//! `interrupt`: the agent talking over the caller. Raised on the fast path when the raw
//! overlap is 0.5 s old, confirmed or withdrawn on the confirmed frames (see
//! [`crate::ahead`]); without frames (an already-analysed call), judged on the talk-over event.

use std::collections::VecDeque;

use super::{Cx, Rule};
use crate::ahead::{Ahead, Provisional, CONFIRM_SLACK_MS, SAME_START_MS};
use crate::board::{secs, Notice};
use crate::event::{Event, Party};
use crate::rule_id::RuleId;
use crate::warning::Evidence;

#[derive(Debug, Clone, Default)]
pub(crate) struct Interrupt {
    /// Start of the current confirmed overlap, and whether it has been judged.
    overlap_since: Option<u64>,
    judged: bool,
    /// The raw overlap (its agent run's start) the fast path last warned about.
    raw_for: Option<u64>,
    /// Warnings the fast path raised that the confirmed frames have not yet judged, oldest
    /// first (more than one fits in the look-ahead when the rule's minimum is short).
    provisional: VecDeque<Provisional>,
}

fn raise(cx: &mut Cx<'_>, start_ms: u64, dur_ms: u64) {
    let book = cx.book;
    let r = &book.rules.interrupt;
    let evidence = Evidence {
        measured: Some(dur_ms as f64 / 1000.0),
        threshold: Some(r.min_overlap_s),
        unit: Some("s".into()),
        heard: None,
    };
    cx.pulse(Notice {
        rule: RuleId::Interrupt,
        key: 0,
        party: Party::Agent,
        start_ms,
        zh: "打断了客户讲话".into(),
        en: "Interrupted the caller".into(),
        evidence,
        line: &r.line,
        severity: None,
    });
}

impl Rule for Interrupt {
    /// Judged on the confirmed frames the moment the overlap reaches the rule's minimum:
    /// confirms the fast path's provisional warning for the same overlap, or raises it (later)
    /// when the fast path did not.
    fn both(&mut self, cx: &mut Cx<'_>) {
        let f = &*cx.facts;
        let now = f.now;
        if !(f.voiced[0] && f.voiced[1]) {
            self.overlap_since = None;
            self.judged = false;
        } else {
            let since = *self.overlap_since.get_or_insert(now);
            let agent_second = f.voiced_since[0] > f.voiced_since[1];
            let dur_ms = now + 10 - since;
            let min = secs(cx.book.rules.interrupt.min_overlap_s);
            if !self.judged && agent_second && dur_ms >= min {
                self.judged = true;
                let same = self
                    .provisional
                    .iter()
                    .position(|p| p.start_ms.abs_diff(since) <= SAME_START_MS);
                match same {
                    // The fast path said it: confirmed.
                    Some(i) => {
                        self.provisional.remove(i);
                    }
                    None => raise(cx, since, dur_ms),
                }
            }
        }
        // Provisionals the confirmed frames have passed without bearing out.
        let now = cx.facts.now;
        while self
            .provisional
            .front()
            .is_some_and(|p| now > p.deadline_ms)
        {
            if let Some(p) = self.provisional.pop_front() {
                cx.withdraw(&p.id);
            }
        }
    }

    /// The call ends: what the confirmed frames never bore out is withdrawn, not counted.
    fn end(&mut self, cx: &mut Cx<'_>, _t: u64, _hung_up_by: Option<Party>) {
        while let Some(p) = self.provisional.pop_front() {
            cx.withdraw(&p.id);
        }
    }

    /// Both talking, the agent second, on the raw runs: provisional.
    fn ahead(&mut self, cx: &mut Cx<'_>, a: &Ahead, _confirmed_ms: u64) {
        let raw = cx.facts.raw;
        let (Some(agent), Some(caller)) = (raw.run_start[0], raw.run_start[1]) else {
            return;
        };
        let talking = a.voiced[0] == Some(true) && raw.in_run(1, a.t_ms);
        let min = secs(cx.book.rules.interrupt.min_overlap_s);
        let dur_ms = a.t_ms + 10 - agent;
        if !(talking
            && agent > caller
            && dur_ms >= min
            && self.raw_for != Some(agent)
            && cx.enabled(RuleId::Interrupt))
        {
            return;
        }
        self.raw_for = Some(agent);
        let already = self
            .overlap_since
            .is_some_and(|s| s.abs_diff(agent) <= SAME_START_MS && self.judged);
        if already {
            return;
        }
        raise(cx, agent, dur_ms);
        if let Some(id) = cx.board.active_id(RuleId::Interrupt, 0) {
            if self.provisional.len() < 8 && !self.provisional.iter().any(|p| p.id == id) {
                self.provisional.push_back(Provisional {
                    id,
                    start_ms: agent,
                    deadline_ms: agent + min + CONFIRM_SLACK_MS,
                });
            }
        }
    }

    fn event(&mut self, cx: &mut Cx<'_>, e: &Event) {
        let Event::TalkOver {
            start_ms,
            end_ms,
            second: Party::Agent,
        } = e
        else {
            return;
        };
        if cx.facts.parties_seen[0] && cx.facts.parties_seen[1] {
            return; // judged on the frames as it happened
        }
        if end_ms - start_ms >= secs(cx.book.rules.interrupt.min_overlap_s) {
            raise(cx, *start_ms, end_ms - start_ms);
        }
    }
}
