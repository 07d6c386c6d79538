//! `volume`: the agent's short-term loudness outside the band while speaking, sustained.

use super::{Cx, Rule, Sustain};
use crate::board::{secs, Notice};
use crate::event::{Frame, Party};
use crate::rule_id::RuleId;
use crate::warning::Evidence;

#[derive(Debug, Clone, Default)]
pub(crate) struct VolumeRule {
    out: Sustain,
    dir: i8,
}

impl Rule for VolumeRule {
    fn frame(&mut self, cx: &mut Cx<'_>, f: &Frame) {
        let Some(st) = f.short_term_lufs else { return };
        if f.party != Party::Agent || !(f.utterance && cx.facts.mostly_speech(Party::Agent)) {
            return;
        }
        let book = cx.book;
        let r = &book.rules.volume;
        let now = cx.facts.now;
        let v = f64::from(st);
        let dir = if v > r.max_lufs {
            1
        } else if v < r.min_lufs {
            -1
        } else {
            0
        };
        if dir != self.dir {
            self.out = Sustain::default();
            cx.clear(RuleId::Volume, 0);
            self.dir = dir;
        }
        if self.out.hold(dir != 0, now, secs(r.sustain_s)) {
            let (zh, en, line, th) = if dir > 0 {
                (
                    format!("音量过大：{v:.0} LUFS"),
                    format!("Too loud: {v:.0} LUFS"),
                    r.line_too_loud.as_str(),
                    r.max_lufs,
                )
            } else {
                (
                    format!("音量过小：{v:.0} LUFS"),
                    format!("Too quiet: {v:.0} LUFS"),
                    r.line_too_quiet.as_str(),
                    r.min_lufs,
                )
            };
            let evidence = Evidence {
                measured: Some((v * 10.0).round() / 10.0),
                threshold: Some(th),
                unit: Some("LUFS".into()),
                heard: None,
            };
            let start_ms = self.out.since.unwrap_or(now);
            cx.raise(Notice {
                rule: RuleId::Volume,
                key: 0,
                party: Party::Agent,
                start_ms,
                zh,
                en,
                evidence,
                line,
                severity: None,
            });
        }
    }
}
