//! `closing`: the closing words (anything else? goodbye) in the agent's last lines, and the
//! caller hanging up first.

use std::collections::VecDeque;

use super::{Cx, Rule, SilentStep};
use crate::board::{secs, Notice};
use crate::event::{Party, TranscriptSegment};
use crate::rule_id::RuleId;
use crate::text::Matcher;
use crate::warning::Evidence;

#[derive(Debug, Clone, Default)]
pub(crate) struct Closing {
    /// The agent's recent lines (end time, normalised text).
    agent_recent: VecDeque<(u64, String)>,
}

impl Rule for Closing {
    fn transcript(&mut self, cx: &mut Cx<'_>, seg: &TranscriptSegment, m: &Matcher) {
        if seg.party != Party::Agent {
            return;
        }
        self.agent_recent.push_back((seg.end_ms, m.text.clone()));
        let keep = secs(cx.book.rules.closing.last_s);
        while self
            .agent_recent
            .front()
            .is_some_and(|(end, _)| end + keep < seg.end_ms)
        {
            self.agent_recent.pop_front();
        }
    }

    fn end(&mut self, cx: &mut Cx<'_>, t: u64, hung_up_by: Option<Party>) {
        let book = cx.book;
        let c = &book.rules.closing;
        if cx.facts.transcripts && cx.facts.ever_voiced[1] {
            let recent: Vec<Matcher> = self
                .agent_recent
                .iter()
                .filter(|(end, _)| end + secs(c.last_s) >= t)
                .map(|(_, text)| Matcher::new(text))
                .collect();
            let tol = cx.tolerance();
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
                cx.raise(Notice {
                    rule: RuleId::Closing,
                    key: 0,
                    party: Party::Agent,
                    start_ms: t,
                    zh: format!("结束语不完整：缺少{what}"),
                    en: format!("Incomplete closing: missing {what}"),
                    evidence: Evidence {
                        unit: Some(format!("missing: {what}")),
                        ..Evidence::default()
                    },
                    line: &c.line,
                    severity: None,
                });
            }
        }
        let f = &*cx.facts;
        let allowed_first = matches!(f.silent, SilentStep::Step(4))
            || (f.abuse_hits > 0 && f.reminders >= book.rules.abusive.reminders_before_end);
        if c.caller_hangs_up_first && hung_up_by == Some(Party::Agent) && !allowed_first {
            cx.raise(Notice {
                rule: RuleId::Closing,
                key: 1,
                party: Party::Agent,
                start_ms: t,
                zh: "坐席先挂机".into(),
                en: "The agent hung up before the caller".into(),
                evidence: Evidence::default(),
                line: &c.line,
                severity: None,
            });
        }
    }
}
