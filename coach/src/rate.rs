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
pub enum RateSource {
    /// Characters of the transcript over voiced time (text covers at least 80 % of the voiced
    /// time measured).
    #[serde(rename = "transcript")]
    Transcript,
    /// Transcript characters where there is text, syllable nuclei (calibrated when the party
    /// has enough transcribed speech) for the rest.
    #[serde(rename = "transcript+nuclei")]
    Mixed,
    /// Syllable nuclei × this party's characters per nucleus from earlier transcribed speech.
    #[serde(rename = "calibrated")]
    Calibrated,
    /// Syllable nuclei only (no transcript yet).
    #[serde(rename = "acoustic")]
    Acoustic,
}

impl RateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RateSource::Transcript => "transcript",
            RateSource::Mixed => "transcript+nuclei",
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
pub const FACTOR_RANGE: (f64, f64) = (0.6, 1.6);
/// Spans with at least this many nuclei are checked for plausible text (characters per
/// nucleus within [`FACTOR_RANGE`]).
const PLAUSIBLE_MIN_NUCLEI: u32 = 8;
/// Text must cover this share of the voiced time for a figure to count as transcript-based.
const TRANSCRIPT_SHARE: f64 = 0.8;

#[derive(Debug, Clone, Copy)]
struct FrameBits {
    t_ms: u64,
    utterance: bool,
    nucleus: bool,
    /// A transcript covers this frame…
    covered: bool,
    /// …and these are its characters per voiced frame (0 outside utterances).
    chars: f32,
}

#[derive(Debug, Clone, Copy)]
struct TextSpan {
    chars: usize,
    nuclei: u32,
}

/// Characters and voiced frames: transcribed (`text_*`) and not (`bare_*`).
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    text_chars: f64,
    text_frames: u64,
    bare_nuclei: u64,
    bare_frames: u64,
}

impl Tally {
    fn add(&mut self, f: &FrameBits) {
        if !f.utterance {
            return;
        }
        if f.covered {
            self.text_chars += f64::from(f.chars);
            self.text_frames += 1;
        } else {
            self.bare_nuclei += u64::from(f.nucleus);
            self.bare_frames += 1;
        }
    }

    fn rate(&self, factor: Option<f64>, min_voiced_ms: u64) -> Option<Rate> {
        let frames = self.text_frames + self.bare_frames;
        if frames * 10 < min_voiced_ms.max(10) {
            return None;
        }
        let (chars, frames, source) = if self.text_frames > 0
            && self.text_frames as f64 >= TRANSCRIPT_SHARE * frames as f64
        {
            (self.text_chars, self.text_frames, RateSource::Transcript)
        } else {
            let bridged = self.bare_nuclei as f64 * factor.unwrap_or(1.0);
            let source = match (self.text_frames > 0, factor.is_some()) {
                (true, _) => RateSource::Mixed,
                (false, true) => RateSource::Calibrated,
                (false, false) => RateSource::Acoustic,
            };
            (self.text_chars + bridged, frames, source)
        };
        Some(Rate {
            chars_per_min: chars * 6_000.0 / frames as f64,
            source,
            voiced_s: frames as f64 / 100.0,
        })
    }
}

/// One party's rate.
#[derive(Debug, Clone)]
pub struct RateTracker {
    frames: VecDeque<FrameBits>,
    /// The last spans with text, for the calibration.
    recent: VecDeque<TextSpan>,
    /// Frames that left the ring (their state is final), for the whole-call figure.
    gone: Tally,
}

impl Default for RateTracker {
    fn default() -> Self {
        Self {
            frames: VecDeque::with_capacity(RING + 1),
            recent: VecDeque::with_capacity(CALIBRATION_SPANS + 1),
            gone: Tally::default(),
        }
    }
}

impl RateTracker {
    /// One 10 ms frame: inside an utterance? a syllable nucleus?
    pub fn frame(&mut self, t_ms: u64, utterance: bool, nucleus: bool) {
        if self.frames.len() == RING {
            if let Some(old) = self.frames.pop_front() {
                self.gone.add(&old);
            }
        }
        self.frames.push_back(FrameBits {
            t_ms,
            utterance,
            nucleus: nucleus && utterance,
            covered: false,
            chars: 0.0,
        });
    }

    /// A transcript segment of this party: its spoken characters are spread over the voiced
    /// frames it spans that no earlier segment covered.
    pub fn transcript(&mut self, start_ms: u64, end_ms: u64, text: &str) {
        let chars = spoken_chars(text);
        let (mut voiced, mut nuclei) = (0u32, 0u32);
        for f in self
            .frames
            .iter()
            .filter(|f| f.t_ms >= start_ms && f.t_ms < end_ms && !f.covered && f.utterance)
        {
            voiced += 1;
            nuclei += u32::from(f.nucleus);
        }
        if voiced == 0 {
            // No voiced time to put the characters on (the frames are gone, or were never
            // voice): they cannot make a rate.
            return;
        }
        if nuclei >= PLAUSIBLE_MIN_NUCLEI {
            let ratio = chars as f64 / f64::from(nuclei);
            if !(FACTOR_RANGE.0..=FACTOR_RANGE.1).contains(&ratio) {
                // A Mandarin character is a syllable: text this far from the syllables heard
                // was not recognised (dropped or invented); the nuclei stand in for it.
                return;
            }
        }
        let per_frame = chars as f32 / voiced as f32;
        for f in self
            .frames
            .iter_mut()
            .filter(|f| f.t_ms >= start_ms && f.t_ms < end_ms && !f.covered)
        {
            f.covered = true;
            f.chars = if f.utterance { per_frame } else { 0.0 };
        }
        if nuclei > 0 && chars > 0 {
            if self.recent.len() == CALIBRATION_SPANS {
                self.recent.pop_front();
            }
            self.recent.push_back(TextSpan { chars, nuclei });
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

    /// The rate over the voiced frames of the `window_ms` before `now_ms`, once there are
    /// `min_voiced_ms` of them. O(window) per call.
    pub fn rate(&self, now_ms: u64, window_ms: u64, min_voiced_ms: u64) -> Option<Rate> {
        let from = now_ms.saturating_sub(window_ms);
        let mut tally = Tally::default();
        for f in self.frames.iter().rev() {
            if f.t_ms < from {
                break;
            }
            if f.t_ms < now_ms {
                tally.add(f);
            }
        }
        tally.rate(self.factor(), min_voiced_ms)
    }

    /// The whole call: transcript characters over their voiced time where there is text,
    /// nuclei (calibrated when possible) for the speech without text.
    pub fn call_rate(&self) -> Option<Rate> {
        let mut tally = self.gone;
        for f in &self.frames {
            tally.add(f);
        }
        tally.rate(self.factor(), 1000)
    }
}

/// Characters as spoken: each Han character is one syllable; a number written in digits counts
/// the syllables it is read with (26 → 二十六 = 3, 30 → 三十 = 2, 2024 → 两千零二十四 = 6),
/// except numbers read digit by digit: runs of 5+ digits or with a leading zero (order
/// numbers), a year (a 4-digit run before 年: 2024年 → 二零二四年), and digit groups joined by
/// a space or a dash (138 1234 5678, 400-800-1234); `.` between digits is 点, `%` is 百分之.
/// A run of Latin letters counts one.
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
            let is_digit = |k: usize| chars.get(k).is_some_and(|c| c.is_ascii_digit());
            let grouped =
                (start >= 2 && matches!(chars[start - 1], ' ' | '-') && is_digit(start - 2))
                    || (matches!(chars.get(i), Some(' ' | '-')) && is_digit(i + 1));
            let year = digits.len() == 4 && chars.get(i) == Some(&'年');
            n += if grouped || year {
                digits.len()
            } else {
                number_syllables(&digits)
            };
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
        assert_eq!(spoken_chars("2024年"), 5, "二零二四年");
        assert_eq!(spoken_chars("138 1234 5678"), 11, "digit by digit");
        assert_eq!(spoken_chars("400-800-1234"), 10, "digit by digit");
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
