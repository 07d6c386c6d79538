//! `silent_caller`: the protocol for a caller who never speaks (repeat the opening twice, the
//! closing line, then the agent may end the call), and ending it before its last step.

use super::{Cx, Rule, SilentStep};
use crate::board::{secs, Notice};
use crate::event::{Frame, Party};
use crate::rule_id::RuleId;
use crate::warning::{Evidence, Severity};

#[derive(Debug, Clone, Default)]
pub(crate) struct SilentCaller {
    /// When the current step was prompted.
    step_at: u64,
}

impl Rule for SilentCaller {
    fn frame(&mut self, cx: &mut Cx<'_>, f: &Frame) {
        if f.party == Party::Caller && f.voiced && !matches!(cx.facts.silent, SilentStep::Done) {
            cx.facts.silent = SilentStep::Done;
            cx.clear_at(RuleId::SilentCaller, 0, f.t_ms);
        }
    }

    fn both(&mut self, cx: &mut Cx<'_>) {
        let f = &*cx.facts;
        if f.ever_voiced[1] || !f.parties_seen[1] {
            return;
        }
        let Some(line_end) = f.agent_line_end else {
            return;
        };
        if f.utterance[0] {
            return; // the agent is speaking a line
        }
        let book = cx.book;
        let r = &book.rules.silent_caller;
        let now = f.now;
        let quiet_ms = now.saturating_sub(line_end);
        let (next, wait, zh, en, line, sev) = match f.silent {
            SilentStep::Watching => (
                1,
                r.caller_silent_s,
                "无声电话：请重复开头语（1/2）",
                "Silent caller: repeat the opening line (1/2)",
                r.opening_line.as_str(),
                Severity::Warning,
            ),
            SilentStep::Step(1) => (
                2,
                r.repeat_after_s,
                "无声电话：请再次重复开头语（2/2）",
                "Silent caller: repeat the opening line (2/2)",
                r.opening_line.as_str(),
                Severity::Warning,
            ),
            SilentStep::Step(2) => (
                3,
                r.closing_after_s,
                "无声电话：请说结束语",
                "Silent caller: say the closing line for silent calls",
                r.closing_line.as_str(),
                Severity::Warning,
            ),
            SilentStep::Step(3) => (
                4,
                r.hangup_after_s,
                "无声电话：现在可以挂机",
                "Silent caller: you may end the call now",
                "",
                Severity::Info,
            ),
            _ => return,
        };
        // Each step needs a new line from the agent after the previous prompt (except the first).
        let spoke_since_prompt =
            matches!(f.silent, SilentStep::Watching) || line_end > self.step_at;
        if spoke_since_prompt && quiet_ms >= secs(wait) {
            let start_ms = f.start.unwrap_or(0);
            cx.facts.silent = SilentStep::Step(next);
            self.step_at = now;
            cx.raise(Notice {
                rule: RuleId::SilentCaller,
                key: 0,
                party: Party::Agent,
                start_ms,
                zh: zh.into(),
                en: en.into(),
                evidence: Evidence {
                    measured: Some(f64::from(next)),
                    threshold: Some(4.0),
                    unit: Some("step".into()),
                    heard: None,
                },
                line,
                severity: Some(sev),
            });
        }
    }

    fn end(&mut self, cx: &mut Cx<'_>, t: u64, _hung_up_by: Option<Party>) {
        let SilentStep::Step(n) = cx.facts.silent else {
            return;
        };
        if n >= 4 {
            return;
        }
        let book = cx.book;
        cx.raise(Notice {
            rule: RuleId::SilentCaller,
            key: 1,
            party: Party::Agent,
            start_ms: t,
            zh: "无声电话流程未完成即挂机".into(),
            en: "Ended a silent call before the protocol was complete".into(),
            evidence: Evidence {
                measured: Some(f64::from(n)),
                threshold: Some(4.0),
                unit: Some("step".into()),
                heard: None,
            },
            line: &book.rules.silent_caller.closing_line,
            severity: Some(Severity::Critical),
        });
    }
}
