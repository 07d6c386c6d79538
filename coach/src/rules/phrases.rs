//! What is said: `forbidden` phrases (忌语), `polite` words (counted for the score), and the
//! `abusive` caller protocol (remind politely, then the agent may end the call).

use super::{Cx, Rule};
use crate::board::Notice;
use crate::event::{Party, TranscriptSegment};
use crate::rule_id::RuleId;
use crate::text::Matcher;
use crate::warning::Evidence;

#[derive(Debug, Clone, Default)]
pub(crate) struct Phrases {
    /// Polite words the agent said (the `polite` score).
    pub polite_words: u32,
    /// The polite words, longest first (so 请问 is not also counted as 请), sorted once.
    polite_sorted: Option<Vec<String>>,
}

impl Phrases {
    fn caller(&mut self, cx: &mut Cx<'_>, seg: &TranscriptSegment, m: &Matcher) {
        let book = cx.book;
        let a = &book.rules.abusive;
        let Some(word) = a.words.iter().find_map(|w| m.find(w, 0)) else {
            return;
        };
        cx.facts.abuse_hits += 1;
        let reminders = cx.facts.reminders;
        // Reminder n of N is the one to give now; after N given, a polite end.
        let n = reminders + 1;
        let evidence = Evidence {
            measured: Some(f64::from(reminders)),
            threshold: Some(f64::from(a.reminders_before_end)),
            unit: Some("reminders given".into()),
            heard: Some(word),
        };
        let notice = if reminders >= a.reminders_before_end {
            Notice {
                rule: RuleId::Abusive,
                key: 0,
                party: Party::Caller,
                start_ms: seg.start_ms,
                zh: "已提醒三次：可礼貌结束通话".into(),
                en: "Reminded enough: you may end the call politely".into(),
                evidence,
                line: &a.end_line,
                severity: None,
            }
        } else {
            Notice {
                rule: RuleId::Abusive,
                key: 0,
                party: Party::Caller,
                start_ms: seg.start_ms,
                zh: format!(
                    "客户言语不文明：请礼貌提醒（{n}/{}）",
                    a.reminders_before_end
                ),
                en: format!(
                    "Abusive caller: remind politely ({n}/{})",
                    a.reminders_before_end
                ),
                evidence,
                line: &a.reminder_line,
                severity: None,
            }
        };
        cx.pulse(notice);
    }

    fn agent(&mut self, cx: &mut Cx<'_>, seg: &TranscriptSegment, m: &Matcher) {
        let book = cx.book;
        let tol = cx.tolerance();
        if cx.facts.abuse_hits > 0
            && book
                .rules
                .abusive
                .reminder_phrases
                .iter()
                .any(|p| m.find(p, tol).is_some())
        {
            cx.facts.reminders += 1;
        }
        let f = &book.rules.forbidden;
        for (category, phrases) in &f.categories {
            if let Some(heard) = phrases.iter().find_map(|p| m.find(p, tol)) {
                let zh = format!("忌语（{category}）：“{heard}”");
                let en = format!("Forbidden phrase ({category}): \u{201c}{heard}\u{201d}");
                cx.pulse(Notice {
                    rule: RuleId::Forbidden,
                    key: 0,
                    party: Party::Agent,
                    start_ms: seg.start_ms,
                    zh,
                    en,
                    evidence: Evidence {
                        heard: Some(heard),
                        unit: Some(category.clone()),
                        ..Evidence::default()
                    },
                    line: &f.line,
                    severity: None,
                });
            }
        }
        let words = self.polite_sorted.get_or_insert_with(|| {
            let mut w = book.rules.polite.words.clone();
            w.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
            w
        });
        let mut rest = m.text.clone();
        for w in words.iter() {
            let n = rest.matches(w.as_str()).count();
            self.polite_words += n as u32;
            rest = rest.replace(w.as_str(), "|");
        }
    }
}

impl Rule for Phrases {
    fn transcript(&mut self, cx: &mut Cx<'_>, seg: &TranscriptSegment, m: &Matcher) {
        match seg.party {
            Party::Caller => self.caller(cx, seg, m),
            Party::Agent => self.agent(cx, seg, m),
        }
    }
}
