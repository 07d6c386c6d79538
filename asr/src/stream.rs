//! Streaming: cut each party's audio into utterances by voice activity (pre-roll, minimum and
//! maximum length), ask for a partial hypothesis about every second of a long utterance and a
//! final one at its end, and commit only text that two consecutive passes agree on
//! (LocalAgreement).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// 16 kHz samples per 10 ms frame.
pub const FRAME: usize = 160;

/// Which party an utterance belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Agent,
    Caller,
}

/// Utterance cutting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamConfig {
    /// Audio kept before speech starts (onsets are soft).
    pub pre_roll_ms: u64,
    /// Shorter utterances are not transcribed (clicks, breaths, 嗯).
    pub min_ms: u64,
    /// Pauses shorter than this stay inside one job (0: a job ends with its speech). Whisper
    /// recognises a phrase better with its neighbours than alone, so offline analysis merges
    /// speech across short pauses; live mode ends a job as soon as its speech ends.
    pub merge_pause_ms: u64,
    /// Once a job is this long, it ends at the next pause whatever its length.
    pub target_ms: u64,
    /// A job never grows beyond this (Whisper's window is 30 s): it is cut at the quietest
    /// 10 ms of its last [`Self::cut_search_ms`], and the rest starts the next job, so no word
    /// is cut in two or lost.
    pub max_ms: u64,
    pub cut_search_ms: u64,
    /// Ask for partial hypotheses during long utterances. Off by default: the coach and the
    /// screens act on final text only, and on 2 cores every partial pass delays the finals
    /// behind it (measured: live final-text p50 2.9 s with partials on).
    pub partials: bool,
    /// A partial hypothesis is requested this often during a long utterance.
    pub partial_every_ms: u64,
}

impl Default for StreamConfig {
    /// Live: a job ends with its speech (lowest latency), finals only.
    fn default() -> Self {
        Self {
            pre_roll_ms: 300,
            min_ms: 500,
            merge_pause_ms: 0,
            target_ms: 15_000,
            max_ms: 15_000,
            cut_search_ms: 2_000,
            partials: false,
            partial_every_ms: 1_000,
        }
    }
}

impl StreamConfig {
    /// Offline analysis: finals only, speech merged across pauses shorter than 1.5 s into jobs
    /// of up to about 20 s (hard limit 28 s), as close to whole-recording decoding as a
    /// streaming pass gets.
    pub fn offline() -> Self {
        Self {
            merge_pause_ms: 1_500,
            target_ms: 20_000,
            max_ms: 28_000,
            ..Self::default()
        }
    }
}

/// Audio to transcribe.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub speaker: Speaker,
    /// Utterance number within the party.
    pub utterance: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    /// 16 kHz mono, from `start_ms`.
    pub audio: Vec<f32>,
    /// Final (utterance ended) or partial (still speaking).
    pub is_final: bool,
    pub voiced_ratio: f32,
    /// Mean level of the voiced frames, dBFS.
    pub level_dbfs: f32,
}

/// The job being built: its audio and, per 10 ms frame, the speech flag and the power.
#[derive(Debug)]
struct Building {
    start_ms: u64,
    audio: Vec<f32>,
    speech: Vec<bool>,
    power: Vec<f32>,
    /// Frames up to and including the last speech frame.
    speech_end: usize,
    last_partial_ms: u64,
    /// The rest of a job cut at its maximum: transcribed however short (it is the end of
    /// speech already under way, not a click).
    continuation: bool,
}

impl Building {
    fn with_capacity(start_ms: u64, frames: usize, now_ms: u64) -> Self {
        Self {
            start_ms,
            audio: Vec::with_capacity(frames * FRAME),
            speech: Vec::with_capacity(frames),
            power: Vec::with_capacity(frames),
            speech_end: 0,
            last_partial_ms: now_ms,
            continuation: false,
        }
    }

    fn add(&mut self, frame: &[f32; FRAME], speech: bool) {
        let power = frame.iter().map(|x| x * x).sum::<f32>() / FRAME as f32;
        self.audio.extend_from_slice(frame);
        self.speech.push(speech);
        self.power.push(power);
        if speech {
            self.speech_end = self.speech.len();
        }
    }

    fn frames(&self) -> usize {
        self.speech.len()
    }

    fn voiced(&self) -> usize {
        self.speech.iter().filter(|s| **s).count()
    }

    /// The job for frames `..n`.
    fn job(&self, speaker: Speaker, utterance: u64, n: usize, is_final: bool) -> Job {
        let (mut voiced, mut sum) = (0u32, 0f64);
        for (s, p) in self.speech[..n].iter().zip(&self.power[..n]) {
            if *s {
                voiced += 1;
                sum += f64::from(*p);
            }
        }
        let level = if voiced > 0 {
            10.0 * (sum / f64::from(voiced)).max(1e-12).log10()
        } else {
            -120.0
        };
        Job {
            speaker,
            utterance,
            start_ms: self.start_ms,
            end_ms: self.start_ms + n as u64 * 10,
            audio: self.audio[..n * FRAME].to_vec(),
            is_final,
            voiced_ratio: voiced as f32 / n.max(1) as f32,
            level_dbfs: level as f32,
        }
    }
}

/// Cuts one party's frames into utterance jobs.
#[derive(Debug)]
pub struct Segmenter {
    cfg: StreamConfig,
    speaker: Speaker,
    pre_roll: VecDeque<[f32; FRAME]>,
    current: Option<Building>,
    next: u64,
}

impl Segmenter {
    pub fn new(cfg: StreamConfig, speaker: Speaker) -> Self {
        let frames = (cfg.pre_roll_ms / 10) as usize;
        Self {
            pre_roll: VecDeque::with_capacity(frames + 1),
            cfg,
            speaker,
            current: None,
            next: 0,
        }
    }

    fn capacity(&self) -> usize {
        ((self.cfg.max_ms + self.cfg.pre_roll_ms) / 10) as usize + 1
    }

    /// One 10 ms frame starting at `t_ms`, with the VAD's speech flag. Emits jobs through `out`.
    pub fn push(
        &mut self,
        t_ms: u64,
        frame: &[f32; FRAME],
        speech: bool,
        out: &mut dyn FnMut(Job),
    ) {
        if self.current.is_none() && speech {
            let pre = self.pre_roll.len();
            let mut b =
                Building::with_capacity(t_ms - (pre as u64 * 10).min(t_ms), self.capacity(), t_ms);
            for f in self.pre_roll.drain(..) {
                b.add(&f, false);
            }
            self.current = Some(b);
        }
        let Some(b) = self.current.as_mut() else {
            if self.cfg.pre_roll_ms > 0 {
                if self.pre_roll.len() == (self.cfg.pre_roll_ms / 10) as usize {
                    self.pre_roll.pop_front();
                }
                self.pre_roll.push_back(*frame);
            }
            return;
        };
        b.add(frame, speech);
        let len_ms = b.frames() as u64 * 10;
        let pause_ms = (b.frames() - b.speech_end) as u64 * 10;
        let end = t_ms + 10;
        if !speech && (pause_ms >= self.cfg.merge_pause_ms.max(10) || len_ms >= self.cfg.target_ms)
        {
            self.close(out);
        } else if len_ms >= self.cfg.max_ms {
            self.cut(out);
        } else if self.cfg.partials
            && speech
            && end - b.last_partial_ms >= self.cfg.partial_every_ms
            && b.voiced() as u64 * 10 >= self.cfg.min_ms
        {
            b.last_partial_ms = end;
            out(b.job(self.speaker, self.next, b.frames(), false));
        }
    }

    /// Ends the stream: the utterance in progress becomes final.
    pub fn finish(&mut self, _t_ms: u64, out: &mut dyn FnMut(Job)) {
        self.close(out);
    }

    /// The job ends after its last speech plus at most 200 ms of the pause.
    fn close(&mut self, out: &mut dyn FnMut(Job)) {
        if let Some(b) = self.current.take() {
            let n = (b.speech_end + 20).min(b.frames()).max(b.speech_end);
            // The minimum counts speech, not the pre-roll.
            if b.continuation || b.voiced() as u64 * 10 >= self.cfg.min_ms {
                out(b.job(self.speaker, self.next, n, true));
            }
            self.next += 1;
        }
    }

    /// At the maximum length: cut at the quietest frame of the last `cut_search_ms` and start
    /// the next job with what follows it.
    fn cut(&mut self, out: &mut dyn FnMut(Job)) {
        let Some(b) = self.current.take() else {
            return;
        };
        let n = b.frames();
        let from = n
            .saturating_sub((self.cfg.cut_search_ms / 10) as usize)
            .max(1);
        let cut = (from..n)
            .min_by(|&i, &j| b.power[i].total_cmp(&b.power[j]))
            .unwrap_or(n);
        out(b.job(self.speaker, self.next, cut, true));
        self.next += 1;
        let mut rest = Building::with_capacity(
            b.start_ms + cut as u64 * 10,
            self.capacity(),
            b.start_ms + n as u64 * 10,
        );
        rest.continuation = true;
        for i in cut..n {
            let mut f = [0.0; FRAME];
            f.copy_from_slice(&b.audio[i * FRAME..(i + 1) * FRAME]);
            rest.add(&f, b.speech[i]);
        }
        self.current = Some(rest);
    }
}

/// LocalAgreement-2: of successive hypotheses for one utterance, commit the prefix two
/// consecutive passes agree on; the final pass commits everything.
#[derive(Debug, Default, Clone)]
pub struct Agreement {
    previous: Option<Vec<char>>,
    committed: usize,
}

impl Agreement {
    /// A partial hypothesis; returns newly committed text.
    pub fn partial(&mut self, hypothesis: &str) -> String {
        let hyp: Vec<char> = hypothesis.chars().collect();
        let agreed = match &self.previous {
            Some(prev) => prev.iter().zip(&hyp).take_while(|(a, b)| a == b).count(),
            None => 0,
        };
        let new = if agreed > self.committed {
            hyp[self.committed..agreed].iter().collect()
        } else {
            String::new()
        };
        self.committed = self.committed.max(agreed);
        self.previous = Some(hyp);
        new
    }

    /// The final hypothesis; returns what had not been committed yet.
    pub fn finish(&mut self, hypothesis: &str) -> String {
        let hyp: Vec<char> = hypothesis.chars().collect();
        let rest = hyp
            .get(self.committed.min(hyp.len())..)
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        *self = Self::default();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(flags: &[(u64, bool)]) -> Vec<Job> {
        let cfg = StreamConfig {
            partials: true,
            ..StreamConfig::default()
        };
        let mut s = Segmenter::new(cfg, Speaker::Agent);
        let mut jobs = Vec::new();
        let mut t = 0;
        for &(frames, speech) in flags {
            for _ in 0..frames {
                s.push(t, &[0.1; FRAME], speech, &mut |j| jobs.push(j));
                t += 10;
            }
        }
        s.finish(t, &mut |j| jobs.push(j));
        jobs
    }

    #[test]
    fn utterances_have_pre_roll_minimum_length_and_partials() {
        let jobs = run(&[
            (100, false),
            (250, true),
            (50, false),
            (20, true),
            (100, false),
        ]);
        let finals: Vec<&Job> = jobs.iter().filter(|j| j.is_final).collect();
        assert_eq!(finals.len(), 1, "the 200 ms blip is below the minimum");
        let f = finals[0];
        assert_eq!(f.start_ms, 700, "300 ms of pre-roll before speech at 1.0 s");
        assert_eq!(f.end_ms, 3510);
        assert_eq!(f.audio.len(), 281 * FRAME);
        let partials: Vec<&Job> = jobs.iter().filter(|j| !j.is_final).collect();
        assert_eq!(
            partials.len(),
            2,
            "a partial about every second: {:?}",
            partials.iter().map(|j| j.end_ms).collect::<Vec<_>>()
        );
    }

    #[test]
    fn long_speech_is_cut_at_its_quietest_point_and_nothing_is_lost() {
        let mut s = Segmenter::new(StreamConfig::default(), Speaker::Agent);
        let mut jobs = Vec::new();
        for i in 0..2000u64 {
            // a quiet 10 ms (a syllable boundary) at 14.2 s
            let level = if i == 1420 { 0.001 } else { 0.1 };
            s.push(i * 10, &[level; FRAME], true, &mut |j| jobs.push(j));
        }
        s.finish(20_000, &mut |j| jobs.push(j));
        let finals: Vec<&Job> = jobs.iter().filter(|j| j.is_final).collect();
        assert_eq!(finals.len(), 2);
        assert_eq!((finals[0].start_ms, finals[0].end_ms), (0, 14_200));
        assert_eq!((finals[1].start_ms, finals[1].end_ms), (14_200, 20_000));
        let total: usize = finals.iter().map(|j| j.audio.len()).sum();
        assert_eq!(total, 2000 * FRAME, "every sample is in exactly one job");
        assert!(finals[0].utterance < finals[1].utterance);
    }

    #[test]
    fn the_rest_of_a_cut_job_is_transcribed_however_short() {
        let mut s = Segmenter::new(StreamConfig::default(), Speaker::Agent);
        let mut jobs = Vec::new();
        // 15.2 s of speech with its quietest frame at 14.9 s, then silence: the 0.3 s after
        // the cut is below the 0.5 s minimum but must not be lost
        for i in 0..1600u64 {
            let speech = i < 1520;
            let level = if i == 1490 { 0.001 } else { 0.1 };
            s.push(i * 10, &[level; FRAME], speech, &mut |j| jobs.push(j));
        }
        s.finish(16_000, &mut |j| jobs.push(j));
        let spans: Vec<(u64, u64)> = jobs.iter().map(|j| (j.start_ms, j.end_ms)).collect();
        assert_eq!(spans, vec![(0, 14_900), (14_900, 15_210)]);
    }

    #[test]
    fn offline_jobs_merge_short_pauses_and_have_no_partials() {
        let mut s = Segmenter::new(StreamConfig::offline(), Speaker::Caller);
        let mut jobs = Vec::new();
        let mut t = 0;
        // speech 2 s, pause 0.8 s, speech 2 s, pause 2 s, speech 1 s
        for &(frames, speech) in &[
            (200, true),
            (80, false),
            (200, true),
            (200, false),
            (100, true),
            (50, false),
        ] {
            for _ in 0..frames {
                s.push(t, &[0.1; FRAME], speech, &mut |j| jobs.push(j));
                t += 10;
            }
        }
        s.finish(t, &mut |j| jobs.push(j));
        assert!(
            jobs.iter().all(|j| j.is_final),
            "offline asks for finals only"
        );
        let spans: Vec<(u64, u64)> = jobs.iter().map(|j| (j.start_ms, j.end_ms)).collect();
        // the 0.8 s pause stays inside the first job, which ends 200 ms after its speech;
        // the second starts with 300 ms of pre-roll
        assert_eq!(spans, vec![(0, 4_800 + 200), (6_800 - 300, 7_800 + 200)]);
    }

    #[test]
    fn local_agreement_commits_only_what_two_passes_agree_on() {
        let mut a = Agreement::default();
        assert_eq!(a.partial("您好示"), "");
        assert_eq!(a.partial("您好是例"), "您好");
        assert_eq!(a.partial("您好示例公司"), "");
        assert_eq!(a.partial("您好示例公司请"), "示例公司");
        assert_eq!(a.finish("您好示例公司请问"), "请问");
    }
}
