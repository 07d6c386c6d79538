//! `rate`: the agent's speech rate outside the band (characters per minute), sustained.

use super::{Cx, Rule, Sustain};
use crate::board::{secs, Notice};
use crate::event::{Frame, Party, TranscriptSegment};
use crate::rate::{Rate, RateTracker};
use crate::rule_id::RuleId;
use crate::text::Matcher;
use crate::warning::Evidence;

#[derive(Debug, Clone, Default)]
pub(crate) struct RateRule {
    /// The band (chars/min): the agent's own when the rule book has one.
    band: (f64, f64),
    out: Sustain,
    dir: i8,
    /// The caller asked for faster / slower speech: that direction is excused.
    excused: [bool; 2],
    /// Speech rate per party (agent, caller): transcript characters over voiced time, bridged
    /// by calibrated syllable nuclei.
    pub rates: [RateTracker; 2],
    /// Chars/min per party every 100 ms: the figure the rule judges, the live meter shows
    /// and the report plots (one computation for all three).
    pub series: [Vec<Option<f32>>; 2],
}

impl RateRule {
    pub fn new(band: (f64, f64)) -> Self {
        Self {
            band,
            ..Self::default()
        }
    }

    pub fn call_rates(&self) -> [Option<Rate>; 2] {
        [self.rates[0].call_rate(), self.rates[1].call_rate()]
    }

    fn tick(&mut self, cx: &mut Cx<'_>, cpm: Option<f64>) {
        let book = cx.book;
        let r = &book.rules.rate;
        let now = cx.facts.now;
        let (lo, hi) = self.band;
        let dir = match cpm {
            Some(c) if c > hi && !self.excused[0] => 1,
            Some(c) if c < lo && !self.excused[1] => -1,
            _ => 0,
        };
        if dir != self.dir {
            self.out = Sustain::default();
            cx.clear(RuleId::Rate, 0);
            self.dir = dir;
        }
        if self.out.hold(dir != 0, now, secs(r.sustain_s)) {
            let c = cpm.unwrap_or(0.0);
            let (zh, en, line, th) = if dir > 0 {
                (
                    format!("语速过快：每分钟{c:.0}字"),
                    format!("Speaking too fast: {c:.0} chars/min"),
                    r.line_too_fast.as_str(),
                    hi,
                )
            } else {
                (
                    format!("语速过慢：每分钟{c:.0}字"),
                    format!("Speaking too slowly: {c:.0} chars/min"),
                    r.line_too_slow.as_str(),
                    lo,
                )
            };
            let evidence = Evidence {
                measured: Some(c.round()),
                threshold: Some(th),
                unit: Some("chars/min".into()),
                heard: None,
            };
            let start_ms = self.out.since.unwrap_or(now);
            let n = Notice {
                rule: RuleId::Rate,
                key: 0,
                party: Party::Agent,
                start_ms,
                zh,
                en,
                evidence,
                line,
                severity: None,
            };
            cx.raise(n);
        }
    }
}

impl Rule for RateRule {
    fn frame(&mut self, cx: &mut Cx<'_>, f: &Frame) {
        let p = f.party.index();
        self.rates[p].frame(f.t_ms, f.utterance, f.nucleus);
        if f.t_ms % 100 != 90 {
            return;
        }
        let r = &cx.book.rules.rate;
        // Up to the end of the current frame (ticks fall on a 100 ms block's last frame).
        let cpm = self.rates[p]
            .rate(
                f.t_ms + 10,
                secs(r.window_s),
                (r.min_speech_s * 1000.0).round() as u64,
            )
            .map(|r| r.chars_per_min);
        // Blocks before this party's first frame (a late start) have no figure.
        let block = (f.t_ms / 100) as usize;
        self.series[p].resize(block, None);
        self.series[p].push(cpm.map(|c| c as f32));
        if f.party == Party::Agent {
            self.tick(cx, cpm);
        }
    }

    fn transcript(&mut self, cx: &mut Cx<'_>, seg: &TranscriptSegment, m: &Matcher) {
        self.rates[seg.party.index()].transcript(seg.start_ms, seg.end_ms, &seg.text);
        if seg.party == Party::Caller {
            let book = cx.book;
            let r = &book.rules.rate;
            let tol = cx.tolerance();
            if r.excuse_too_fast.iter().any(|p| m.find(p, tol).is_some()) {
                self.excused[0] = true;
            }
            if r.excuse_too_slow.iter().any(|p| m.find(p, tol).is_some()) {
                self.excused[1] = true;
            }
        }
    }
}
