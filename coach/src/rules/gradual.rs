//! `gradual`: the agent's voice raised abruptly (a loudness jump from the feature path).

use super::{Cx, Rule};
use crate::board::Notice;
use crate::event::{Event, Party};
use crate::rule_id::RuleId;
use crate::warning::Evidence;

#[derive(Debug, Clone, Default)]
pub(crate) struct Gradual;

impl Rule for Gradual {
    fn event(&mut self, cx: &mut Cx<'_>, e: &Event) {
        let Event::LoudnessJump {
            party: Party::Agent,
            onset_ms,
            rise_db,
            ..
        } = e
        else {
            return;
        };
        let book = cx.book;
        let r = &book.rules.gradual;
        if f64::from(*rise_db) >= r.min_rise_db {
            let evidence = Evidence {
                measured: Some(f64::from(*rise_db)),
                threshold: Some(r.min_rise_db),
                unit: Some("dB".into()),
                heard: None,
            };
            cx.pulse(Notice {
                rule: RuleId::Gradual,
                key: 0,
                party: Party::Agent,
                start_ms: *onset_ms,
                zh: "音量突然提高".into(),
                en: "Voice raised abruptly".into(),
                evidence,
                line: &r.line,
                severity: None,
            });
        }
    }
}
