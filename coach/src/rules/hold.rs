//! `hold`: speak to the caller every so often while on hold, alarms at the hold's limits, and
//! thank the caller after it.

use super::{Cx, Rule};
use crate::board::{secs, Notice};
use crate::event::{Event, Frame, Party, TranscriptSegment};
use crate::rule_id::RuleId;
use crate::text::Matcher;
use crate::warning::{Evidence, Severity};

#[derive(Debug, Clone, Default)]
pub(crate) struct Hold {
    /// Last time the agent spoke during the hold (or its start).
    interaction: u64,
    alarms: usize,
    /// (hold end, due): the thanks expected by `due`.
    thank_due: Option<(u64, u64)>,
}

impl Rule for Hold {
    fn event(&mut self, cx: &mut Cx<'_>, e: &Event) {
        match e {
            Event::HoldStart { t_ms } => {
                cx.facts.hold_since = Some(*t_ms);
                self.interaction = *t_ms;
                self.alarms = 0;
            }
            Event::HoldEnd { t_ms } if cx.facts.hold_since.is_some() => {
                cx.facts.hold_since = None;
                for k in 0..4 {
                    cx.clear_at(RuleId::Hold, k, *t_ms);
                }
                self.thank_due = Some((*t_ms, *t_ms + secs(cx.book.rules.hold.thank_within_s)));
            }
            _ => {}
        }
    }

    fn frame(&mut self, cx: &mut Cx<'_>, f: &Frame) {
        if f.party == Party::Agent && f.voiced && cx.facts.hold_since.is_some() {
            self.interaction = f.t_ms;
            cx.clear_at(RuleId::Hold, 0, f.t_ms);
        }
    }

    fn tick(&mut self, cx: &mut Cx<'_>) {
        let Some(since) = cx.facts.hold_since else {
            return;
        };
        let book = cx.book;
        let r = &book.rules.hold;
        let now = cx.facts.now;
        let quiet = now - self.interaction;
        if quiet >= secs(r.interact_every_s) {
            cx.raise(Notice {
                rule: RuleId::Hold,
                key: 0,
                party: Party::Agent,
                start_ms: self.interaction,
                zh: "等待中请与客户交流".into(),
                en: "On hold: speak to the caller".into(),
                evidence: Evidence {
                    measured: Some((quiet / 1000) as f64),
                    threshold: Some(r.interact_every_s),
                    unit: Some("s".into()),
                    heard: None,
                },
                line: &r.line_interact,
                severity: None,
            });
        }
        let held = now - since;
        while self.alarms < r.alarm_s.len().min(3) && held >= secs(r.alarm_s[self.alarms]) {
            let limit = r.alarm_s[self.alarms];
            let last = self.alarms + 1 == r.alarm_s.len();
            self.alarms += 1;
            cx.raise(Notice {
                rule: RuleId::Hold,
                key: self.alarms as u8,
                party: Party::Agent,
                start_ms: since,
                zh: format!("等待已超过{limit:.0}秒"),
                en: format!("On hold for over {limit:.0} s"),
                evidence: Evidence {
                    measured: Some(limit),
                    threshold: Some(limit),
                    unit: Some("s".into()),
                    heard: None,
                },
                line: &r.line_alarm,
                severity: Some(if last {
                    Severity::Critical
                } else {
                    Severity::Warning
                }),
            });
        }
    }

    fn transcript(&mut self, cx: &mut Cx<'_>, seg: &TranscriptSegment, m: &Matcher) {
        if seg.party != Party::Agent {
            return;
        }
        if let Some((from, _)) = self.thank_due {
            let tol = cx.tolerance();
            if seg.start_ms >= from
                && cx
                    .book
                    .rules
                    .hold
                    .thank_phrases
                    .iter()
                    .any(|p| m.find(p, tol).is_some())
            {
                self.thank_due = None;
            }
        }
    }

    fn advance(&mut self, cx: &mut Cx<'_>) {
        let Some((from, due)) = self.thank_due else {
            return;
        };
        if cx.facts.now < due {
            return;
        }
        self.thank_due = None;
        if cx.facts.transcripts {
            let book = cx.book;
            let r = &book.rules.hold;
            cx.pulse(Notice {
                rule: RuleId::Hold,
                key: 4,
                party: Party::Agent,
                start_ms: from,
                zh: "等待结束后未感谢客户".into(),
                en: "Did not thank the caller after the hold".into(),
                evidence: Evidence {
                    threshold: Some(r.thank_within_s),
                    unit: Some("s".into()),
                    ..Evidence::default()
                },
                line: &r.line_thank,
                severity: None,
            });
        }
    }
}
