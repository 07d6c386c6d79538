//! Speech rate in characters per minute, the way Chinese QA systems define it: the spoken
//! characters of a party's utterances over their voiced time (pauses of 0.3 s or more
//! excluded). Where a transcript covers the speech, its characters are counted; the rest is
//! bridged by the model-free estimate (syllable nuclei), calibrated online per party as the
//! characters per detected nucleus over the recent utterances that have text.
//!
//! Pure and deterministic: time comes in with the frames. `frame` is O(1) and allocation-free
//! once the ring is full; `transcript` walks the frames of its span; `cpm` walks the window.

use std::collections::VecDeque;

use serde::Serialize;

/// Which estimate a rate figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateSource {
    /// Characters of the transcript over voiced time (the whole window has text).
    Transcript,
    /// Transcript characters where there is text, calibrated nuclei for the speech not yet
    /// transcribed.
    Mixed,
    /// Syllable nuclei × this party's characters per nucleus from earlier transcribed speech.
    Calibrated,
    /// Syllable nuclei only (no transcript yet).
    Acoustic,
}

impl RateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RateSource::Transcript => "transcript",
            RateSource::Mixed => "transcript+calibrated",
            RateSource::Calibrated => "calibrated",
            RateSource::Acoustic => "acoustic",
        }
    }
}

/// A rate figure with its source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub chars_per_min: f64,
    pub source: RateSource,
    /// Voiced (utterance) seconds it is measured over.
    pub voiced_s: f64,
}

/// Frames kept (10 ms each): two minutes, enough for any transcript to arrive.
const RING: usize = 12_000;
/// Transcribed spans used for the calibration, and the characters they need.
const CALIBRATION_SPANS: usize = 30;
const CALIBRATION_MIN_CHARS: usize = 15;
/// The calibration factor is kept within these bounds (a bad transcript cannot run away).
const FACTOR_RANGE: (f64, f64) = (0.6, 1.6);

#[derive(Debug, Clone, Copy)]
struct FrameBits {
    t_ms: u64,
    utterance: bool,
    nucleus: bool,
    /// A transcript covers this frame.
    covered: bool,
}

#[derive(Debug, Clone, Copy)]
struct TextSpan {
    end_ms: u64,
    chars: usize,
    voiced_ms: u64,
    nuclei: u32,
}

/// One party's rate.
#[derive(Debug, Clone)]
pub struct RateTracker {
    frames: VecDeque<FrameBits>,
    spans: VecDeque<TextSpan>,
    /// The last spans with text, for the calibration.
    recent: VecDeque<TextSpan>,
    /// Whole call: transcript characters and voiced ms of transcribed spans, uncovered
    /// utterance ms and nuclei (resolved at the end), for the report.
    total_chars: usize,
    total_text_voiced_ms: u64,
    any_text: bool,
    /// Whole call: utterance frames and nuclei.
    total_utt: u64,
    total_nuclei: u64,
    total_covered_utt: u64,
    total_covered_nuclei: u64,
}

impl Default for RateTracker {
    fn default() -> Self {
        Self {
            frames: VecDeque::with_capacity(RING + 1),
            spans: VecDeque::with_capacity(64),
            recent: VecDeque::with_capacity(CALIBRATION_SPANS + 1),
            total_chars: 0,
            total_text_voiced_ms: 0,
            any_text: false,
            total_utt: 0,
            total_nuclei: 0,
            total_covered_utt: 0,
            total_covered_nuclei: 0,
        }
    }
}

impl RateTracker {
    /// One 10 ms frame: inside an utterance? a syllable nucleus?
    pub fn frame(&mut self, t_ms: u64, utterance: bool, nucleus: bool) {
        if self.frames.len() == RING {
            self.frames.pop_front();
        }
        self.frames.push_back(FrameBits {
            t_ms,
            utterance,
            nucleus: nucleus && utterance,
            covered: false,
        });
        self.total_utt += u64::from(utterance);
        self.total_nuclei += u64::from(nucleus && utterance);
    }

    /// A transcript segment of this party: its spoken characters over the voiced time of the
    /// frames it spans.
    pub fn transcript(&mut self, start_ms: u64, end_ms: u64, text: &str) {
        let chars = spoken_chars(text);
        let (mut voiced, mut nuclei) = (0u64, 0u32);
        for f in self
            .frames
            .iter_mut()
            .filter(|f| f.t_ms >= start_ms && f.t_ms < end_ms && !f.covered)
        {
            f.covered = true;
            if f.utterance {
                voiced += 10;
                nuclei += u32::from(f.nucleus);
            }
        }
        self.total_covered_utt += voiced / 10;
        self.total_covered_nuclei += u64::from(nuclei);
        if chars == 0 && voiced == 0 {
            return;
        }
        let span = TextSpan {
            end_ms,
            chars,
            voiced_ms: voiced,
            nuclei,
        };
        self.any_text = true;
        self.total_chars += chars;
        self.total_text_voiced_ms += voiced;
        self.spans.push_back(span);
        if nuclei > 0 && chars > 0 {
            if self.recent.len() == CALIBRATION_SPANS {
                self.recent.pop_front();
            }
            self.recent.push_back(span);
        }
    }

    /// Characters per detected nucleus over the recent transcribed utterances, once there are
    /// enough of them.
    pub fn factor(&self) -> Option<f64> {
        let chars: usize = self.recent.iter().map(|s| s.chars).sum();
        let nuclei: u32 = self.recent.iter().map(|s| s.nuclei).sum();
        (chars >= CALIBRATION_MIN_CHARS && nuclei > 0)
            .then(|| (chars as f64 / f64::from(nuclei)).clamp(FACTOR_RANGE.0, FACTOR_RANGE.1))
    }

    /// The rate over the `window_ms` before `now_ms`, once there are `min_voiced_ms` of speech.
    pub fn rate(&mut self, now_ms: u64, window_ms: u64, min_voiced_ms: u64) -> Option<Rate> {
        let from = now_ms.saturating_sub(window_ms);
        while self.spans.front().is_some_and(|s| s.end_ms < from) {
            self.spans.pop_front();
        }
        let (text_chars, text_voiced) = self
            .spans
            .iter()
            .filter(|s| s.end_ms <= now_ms)
            .fold((0usize, 0u64), |a, s| (a.0 + s.chars, a.1 + s.voiced_ms));
        let (mut utt, mut nuc) = (0u64, 0u64);
        for f in self.frames.iter().rev() {
            if f.t_ms < from {
                break;
            }
            if f.t_ms < now_ms && f.utterance && !f.covered {
                utt += 10;
                nuc += u64::from(f.nucleus);
            }
        }
        let voiced = text_voiced + utt;
        if voiced < min_voiced_ms.max(1) {
            return None;
        }
        let factor = self.factor();
        let bridged = nuc as f64 * factor.unwrap_or(1.0);
        let source = match (text_voiced > 0 || text_chars > 0, utt * 5 <= voiced) {
            (true, true) => RateSource::Transcript,
            (true, false) => RateSource::Mixed,
            (false, _) if factor.is_some() => RateSource::Calibrated,
            (false, _) => RateSource::Acoustic,
        };
        let chars = text_chars as f64
            + if source == RateSource::Transcript {
                0.0
            } else {
                bridged
            };
        let time = if source == RateSource::Transcript {
            text_voiced.max(1)
        } else {
            voiced
        };
        Some(Rate {
            chars_per_min: chars * 60_000.0 / time as f64,
            source,
            voiced_s: time as f64 / 1000.0,
        })
    }

    /// The whole call: transcript characters over their voiced time where there is text, the
    /// calibrated estimate for the speech without text.
    pub fn call_rate(&self) -> Option<Rate> {
        let uncovered_utt = self.total_utt.saturating_sub(self.total_covered_utt);
        let uncovered_nuc = self.total_nuclei.saturating_sub(self.total_covered_nuclei);
        let factor = self.factor();
        let text_ms = self.total_text_voiced_ms;
        let (chars, ms, source) =
            if self.any_text && uncovered_utt * 10 * 5 <= text_ms + uncovered_utt * 10 {
                (self.total_chars as f64, text_ms, RateSource::Transcript)
            } else if self.any_text {
                (
                    self.total_chars as f64 + uncovered_nuc as f64 * factor.unwrap_or(1.0),
                    text_ms + uncovered_utt * 10,
                    RateSource::Mixed,
                )
            } else {
                (
                    self.total_nuclei as f64,
                    self.total_utt * 10,
                    RateSource::Acoustic,
                )
            };
        (ms >= 1000).then(|| Rate {
            chars_per_min: chars * 60_000.0 / ms as f64,
            source,
            voiced_s: ms as f64 / 1000.0,
        })
    }
}

/// Characters as spoken: each Han character is one syllable; a number written in digits counts
/// the syllables it is read with (26 → 二十六 = 3, 30 → 三十 = 2, 2024 → 两千零二十四 = 5),
/// except runs of 5+ digits or with a leading zero (phone, order numbers), read digit by digit;
/// `.` between digits is 点, `%` is 百分之. Latin words count one per word-ish (a letter run).
pub fn spoken_chars(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let mut n = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c.is_numeric() && ('０'..='９').contains(&c) {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || ('０'..='９').contains(&chars[i]))
            {
                i += 1;
            }
            let digits: Vec<u32> = chars[start..i]
                .iter()
                .filter_map(|c| c.to_digit(10).or_else(|| Some(*c as u32 - '０' as u32)))
                .collect();
            n += number_syllables(&digits);
            // decimal part: 点 + one per digit
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                n += 1;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    n += 1;
                    i += 1;
                }
            }
            continue;
        }
        if is_han(c) {
            n += 1;
        } else if c == '%' || c == '％' {
            n += 3;
        } else if c.is_ascii_alphabetic()
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_ascii_alphabetic())
        {
            n += 1;
        }
        i += 1;
    }
    n
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF)
}

/// Syllables of an integer read as a cardinal number (up to 4 digits), else digit by digit.
fn number_syllables(d: &[u32]) -> usize {
    if d.len() >= 5 || (d.len() > 1 && d[0] == 0) {
        return d.len();
    }
    // positions: thousands, hundreds, tens, units
    let mut n = 0;
    let len = d.len();
    let mut zero_pending = false;
    for (k, &digit) in d.iter().enumerate() {
        let place = len - 1 - k; // 0 = units
        if digit == 0 {
            zero_pending = n > 0;
            continue;
        }
        if zero_pending {
            n += 1; // 零
            zero_pending = false;
        }
        // 十 alone at the start (十二) is one syllable: 1 in the tens place leading
        if place == 1 && digit == 1 && k == 0 {
            n += 1;
        } else {
            n += 1 + usize::from(place > 0);
        }
    }
    if n == 0 {
        1 // 零
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_are_counted_as_spoken() {
        assert_eq!(spoken_chars("您好，示例公司！"), 6);
        assert_eq!(spoken_chars("26年"), 4, "二十六年");
        assert_eq!(spoken_chars("30元"), 3, "三十元");
        assert_eq!(spoken_chars("12"), 2, "十二");
        assert_eq!(spoken_chars("2024"), 6, "两千零二十四");
        assert_eq!(spoken_chars("105"), 4, "一百零五");
        assert_eq!(spoken_chars("100"), 2, "一百");
        assert_eq!(spoken_chars("10086"), 5, "digit by digit");
        assert_eq!(spoken_chars("3.5%"), 6, "百分之三点五");
        assert_eq!(spoken_chars("offer嘛"), 2);
        assert_eq!(spoken_chars("，。？"), 0);
    }

    fn speak(t: &mut RateTracker, from_ms: u64, ms: u64, nucleus_every: u64) {
        for i in 0..ms / 10 {
            let t_ms = from_ms + i * 10;
            t.frame(t_ms, true, i % (nucleus_every / 10) == 0);
        }
    }

    #[test]
    fn transcript_characters_over_voiced_time_with_calibrated_bridging() {
        let mut t = RateTracker::default();
        // 10 s of speech, a nucleus every 250 ms (4/s = 240 acoustic chars/min)
        speak(&mut t, 0, 10_000, 250);
        let r = t.rate(10_000, 15_000, 5_000).unwrap();
        assert_eq!(r.source, RateSource::Acoustic);
        assert!((r.chars_per_min - 240.0).abs() < 1.0, "{r:?}");
        // the transcript says 30 characters in those 10 s: 180/min, 0.75 chars per nucleus
        t.transcript(0, 10_000, &"好".repeat(30));
        let r = t.rate(10_000, 15_000, 5_000).unwrap();
        assert_eq!(r.source, RateSource::Transcript);
        assert!((r.chars_per_min - 180.0).abs() < 0.5, "{r:?}");
        assert!((t.factor().unwrap() - 0.75).abs() < 1e-9);
        // 10 more seconds without text yet: bridged with the calibration → still 180
        speak(&mut t, 10_000, 10_000, 250);
        let r = t.rate(20_000, 15_000, 5_000).unwrap();
        assert_eq!(r.source, RateSource::Mixed);
        assert!((r.chars_per_min - 180.0).abs() < 1.0, "{r:?}");
        // pauses do not count
        for i in 0..300 {
            t.frame(20_000 + i * 10, false, false);
        }
        t.transcript(10_000, 23_000, &"好".repeat(30));
        let r = t.rate(23_000, 15_000, 5_000).unwrap();
        assert!((r.chars_per_min - 180.0).abs() < 1.0, "{r:?}");
        let c = t.call_rate().unwrap();
        assert_eq!(c.source, RateSource::Transcript);
        assert!(
            (c.chars_per_min - 180.0).abs() < 0.5 && (c.voiced_s - 20.0).abs() < 1e-9,
            "{c:?}"
        );
    }
}
