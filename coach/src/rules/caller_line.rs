//! The caller's line: `weak_caller` (too quiet to hear well) and `noisy_caller` (low SNR or a
//! high noise floor), both sustained.

use super::{Cx, Rule, Sustain};
use crate::board::{secs, Notice};
use crate::event::{Frame, Party};
use crate::rule_id::RuleId;
use crate::warning::Evidence;

#[derive(Debug, Clone, Default)]
pub(crate) struct CallerLine {
    weak: Sustain,
    noisy: Sustain,
    noise_db: Option<f32>,
    speech_db: Option<f32>,
    voiced_frames: u32,
}

impl Rule for CallerLine {
    fn frame(&mut self, cx: &mut Cx<'_>, f: &Frame) {
        if f.party != Party::Caller {
            return;
        }
        let book = cx.book;
        let now = cx.facts.now;
        // Exponential averages with a ~3 s time constant, separately for speech and pauses.
        const ALPHA: f32 = 0.0033;
        let slot = if f.voiced {
            &mut self.speech_db
        } else {
            &mut self.noise_db
        };
        *slot = Some(match *slot {
            Some(v) => v + ALPHA * (f.energy_db - v),
            None => f.energy_db,
        });
        if f.voiced {
            self.voiced_frames += 1;
        }
        let mostly_speech = cx.facts.mostly_speech(Party::Caller);
        if let (Some(st), true) = (f.short_term_lufs, f.utterance && mostly_speech) {
            let r = &book.rules.weak_caller;
            let v = f64::from(st);
            if self
                .weak
                .hold(v < r.max_caller_lufs, now, secs(r.sustain_s))
            {
                let evidence = Evidence {
                    measured: Some((v * 10.0).round() / 10.0),
                    threshold: Some(r.max_caller_lufs),
                    unit: Some("LUFS".into()),
                    heard: None,
                };
                cx.raise(Notice {
                    rule: RuleId::WeakCaller,
                    key: 0,
                    party: Party::Caller,
                    start_ms: self.weak.since.unwrap_or(now),
                    zh: "客户声音微弱".into(),
                    en: "The caller is hard to hear".into(),
                    evidence,
                    line: &r.line,
                    severity: None,
                });
            } else if self.weak.since.is_none() {
                cx.clear(RuleId::WeakCaller, 0);
            }
        }
        let boundary = f.t_ms % 100 == 90;
        if boundary && self.voiced_frames >= 200 {
            if let (Some(s), Some(n)) = (self.speech_db, self.noise_db) {
                let r = &book.rules.noisy_caller;
                let snr = f64::from(s - n);
                let noisy = snr < r.min_snr_db || f64::from(n) > r.max_noise_dbfs;
                if self.noisy.hold(noisy, now, secs(r.sustain_s)) {
                    let evidence = Evidence {
                        measured: Some(snr.round()),
                        threshold: Some(r.min_snr_db),
                        unit: Some("dB SNR".into()),
                        heard: None,
                    };
                    cx.raise(Notice {
                        rule: RuleId::NoisyCaller,
                        key: 0,
                        party: Party::Caller,
                        start_ms: self.noisy.since.unwrap_or(now),
                        zh: "客户环境杂音大".into(),
                        en: "Noisy line on the caller's side".into(),
                        evidence,
                        line: &r.line,
                        severity: None,
                    });
                } else if !noisy {
                    cx.clear(RuleId::NoisyCaller, 0);
                }
            }
        }
    }
}
