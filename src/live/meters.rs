//! The live meters the screen draws (loudness, speaking, chars/min, silence, hold).

use super::*;

/// Meter state, fed with the current analyser's frames (idle or call).
pub(super) struct MeterState {
    pub(super) m: Meters,
    /// Per party: chars/min from the transcript where it has arrived, calibrated syllable
    /// nuclei for the speech not yet transcribed (the coach's own computation).
    pub(super) rates: [RateTracker; 2],
    /// The rule book's rate window and the voiced speech it needs (the coach's rate rule).
    pub(super) rate_window_ms: u64,
    pub(super) rate_min_voiced_ms: u64,
    pub(super) voiced_frames: [u64; 2],
    pub(super) last_voiced: u64,
    pub(super) now_frame: u64,
    pub(super) sent_frame: u64,
}

impl MeterState {
    pub(super) fn new(book: &RuleBook) -> Self {
        let r = &book.rules.rate;
        Self {
            m: Meters::default(),
            rates: Default::default(),
            rate_window_ms: (r.window_s * 1000.0).round() as u64,
            rate_min_voiced_ms: (r.min_speech_s * 1000.0).round() as u64,
            voiced_frames: [0; 2],
            last_voiced: 0,
            now_frame: 0,
            sent_frame: 0,
        }
    }
    /// Allocation-free (the windows are preallocated).
    pub(super) fn on(&mut self, o: &CallOutput) {
        let CallOutput::Frame(p, f) = o else { return };
        let i = p.index();
        if let Some(l) = f.momentary_lufs {
            // Below the meter's floor (digital silence gives −∞ or thereabouts): no reading.
            self.m.loudness_lufs[i] = (l > -70.0).then_some(l);
        }
        self.m.speaking[i] = f.voiced;
        if f.voiced {
            self.voiced_frames[i] += 1;
            self.last_voiced = self.last_voiced.max(f.index);
        }
        self.now_frame = self.now_frame.max(f.index);
        self.rates[i].frame(f.index * 10, f.utterance, f.nucleus);
    }

    /// A final transcript segment of a party (live ASR).
    pub(super) fn transcript(&mut self, seg: &TranscriptSegment) {
        self.rates[seg.party.index()].transcript(seg.start_ms, seg.end_ms, &seg.text);
    }

    /// Meters to send, every 100 ms of audio.
    pub(super) fn due(&mut self, call_ms: Option<u64>, hold_ms: Option<u64>) -> Option<Meters> {
        if self.now_frame < self.sent_frame + 10 {
            return None;
        }
        self.sent_frame = self.now_frame;
        for (i, r) in self.rates.iter_mut().enumerate() {
            let rate = r.rate(
                (self.now_frame + 1) * 10,
                self.rate_window_ms,
                self.rate_min_voiced_ms,
            );
            self.m.chars_per_minute[i] = rate.map(|r| r.chars_per_min as f32);
            self.m.rate_source[i] = rate.map(|r| r.source);
        }
        let both = self.voiced_frames[0] + self.voiced_frames[1];
        self.m.agent_talk_ratio = (both > 0).then(|| self.voiced_frames[0] as f32 / both as f32);
        self.m.silence_ms = self.now_frame.saturating_sub(self.last_voiced) * 10;
        self.m.call_ms = call_ms;
        self.m.hold_ms = hold_ms;
        Some(self.m)
    }
}
