//! `greeting`: the agent greets within the first seconds, with the required words (and the
//! holiday greeting on a holiday).

use super::{Cx, Rule};
use crate::board::{secs, Notice};
use crate::event::{Frame, Party, TranscriptSegment};
use crate::rule_id::RuleId;
use crate::text::Matcher;
use crate::warning::Evidence;

#[derive(Debug, Clone, Default)]
pub(crate) struct Greeting {
    /// Judged (by the first words, or by the time-out).
    judged: bool,
}

impl Rule for Greeting {
    fn frame(&mut self, cx: &mut Cx<'_>, f: &Frame) {
        if f.party != Party::Agent {
            return;
        }
        let book = cx.book;
        let r = &book.rules.greeting;
        let start = cx.facts.start.unwrap_or(0);
        if !self.judged && cx.facts.now >= start + secs(r.within_s) {
            self.judged = true;
            if !cx.facts.ever_voiced[0] {
                cx.pulse(Notice {
                    rule: RuleId::Greeting,
                    key: 0,
                    party: Party::Agent,
                    start_ms: start,
                    zh: "未及时问候客户".into(),
                    en: "No greeting in the first seconds".into(),
                    evidence: Evidence {
                        threshold: Some(r.within_s),
                        unit: Some("s".into()),
                        ..Evidence::default()
                    },
                    line: &r.line,
                    severity: None,
                });
            }
        }
    }

    fn transcript(&mut self, cx: &mut Cx<'_>, seg: &TranscriptSegment, m: &Matcher) {
        if seg.party != Party::Agent {
            return;
        }
        let book = cx.book;
        let r = &book.rules.greeting;
        let start = cx.facts.start.unwrap_or(0);
        if self.judged || seg.start_ms > start + secs(r.within_s) {
            return;
        }
        self.judged = true;
        let tol = cx.tolerance();
        let missing: Vec<String> = r
            .must_include
            .iter()
            .map(|p| book.fill(p))
            .filter(|p| m.find(p, tol).is_none())
            .collect();
        let holiday_missing =
            book.is_holiday() && !r.holiday_phrases.iter().any(|p| m.find(p, tol).is_some());
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
        let line = if holiday_missing {
            format!(
                "{}，{}",
                r.holiday_phrases.first().cloned().unwrap_or_default(),
                r.line
            )
        } else {
            r.line.clone()
        };
        cx.pulse(Notice {
            rule: RuleId::Greeting,
            key: 0,
            party: Party::Agent,
            start_ms: seg.start_ms,
            zh: format!("开头语不完整：缺少{what}"),
            en: format!("Incomplete greeting: missing {what}"),
            evidence: Evidence {
                heard: Some(m.text.clone()),
                unit: Some(format!("missing: {what}")),
                ..Evidence::default()
            },
            line: &line,
            severity: None,
        });
    }
}
