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
    /// Longer speech is cut here (Whisper's window is 30 s; shorter keeps latency low).
    pub max_ms: u64,
    /// A partial hypothesis is requested this often during a long utterance.
    pub partial_every_ms: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            pre_roll_ms: 300,
            min_ms: 500,
            max_ms: 15_000,
            partial_every_ms: 1_000,
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

#[derive(Debug)]
struct Building {
    start_ms: u64,
    audio: Vec<f32>,
    frames: u32,
    voiced: u32,
    voiced_power: f64,
    last_partial_ms: u64,
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

    /// One 10 ms frame starting at `t_ms`, with the VAD's speech flag. Emits jobs through `out`.
    pub fn push(
        &mut self,
        t_ms: u64,
        frame: &[f32; FRAME],
        speech: bool,
        out: &mut dyn FnMut(Job),
    ) {
        let power = frame
            .iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            / FRAME as f64;
        match (&mut self.current, speech) {
            (None, true) => {
                let pre = self.pre_roll.len() as u64;
                let mut audio =
                    Vec::with_capacity((self.cfg.max_ms as usize / 10 + pre as usize) * FRAME);
                for f in self.pre_roll.drain(..) {
                    audio.extend_from_slice(&f);
                }
                audio.extend_from_slice(frame);
                let start = t_ms.saturating_sub(pre * 10);
                self.current = Some(Building {
                    start_ms: start,
                    audio,
                    frames: pre as u32 + 1,
                    voiced: 1,
                    voiced_power: power,
                    last_partial_ms: t_ms,
                });
            }
            (Some(b), _) => {
                b.audio.extend_from_slice(frame);
                b.frames += 1;
                if speech {
                    b.voiced += 1;
                    b.voiced_power += power;
                }
                let end = t_ms + 10;
                if !speech || end - b.start_ms >= self.cfg.max_ms {
                    self.close(end, out);
                } else if end - b.last_partial_ms >= self.cfg.partial_every_ms
                    && u64::from(b.voiced) * 10 >= self.cfg.min_ms
                {
                    b.last_partial_ms = end;
                    out(make_job(
                        self.speaker,
                        self.next,
                        b_clone_view(b),
                        end,
                        false,
                    ));
                }
            }
            (None, false) => {}
        }
        if self.current.is_none() {
            if self.pre_roll.len() == (self.cfg.pre_roll_ms / 10) as usize {
                self.pre_roll.pop_front();
            }
            if self.cfg.pre_roll_ms > 0 {
                self.pre_roll.push_back(*frame);
            }
        }
    }

    /// Ends the stream: the utterance in progress becomes final.
    pub fn finish(&mut self, t_ms: u64, out: &mut dyn FnMut(Job)) {
        self.close(t_ms, out);
    }

    fn close(&mut self, end_ms: u64, out: &mut dyn FnMut(Job)) {
        if let Some(b) = self.current.take() {
            // The minimum counts speech, not the pre-roll.
            if u64::from(b.voiced) * 10 >= self.cfg.min_ms {
                let view = BuildingView {
                    start_ms: b.start_ms,
                    audio: b.audio,
                    frames: b.frames,
                    voiced: b.voiced,
                    voiced_power: b.voiced_power,
                };
                out(make_job(self.speaker, self.next, view, end_ms, true));
            }
            self.next += 1;
        }
    }
}

fn make_job(speaker: Speaker, utterance: u64, b: BuildingView, end_ms: u64, is_final: bool) -> Job {
    {
        let level = if b.voiced > 0 {
            10.0 * (b.voiced_power / f64::from(b.voiced)).max(1e-12).log10()
        } else {
            -120.0
        };
        Job {
            speaker,
            utterance,
            start_ms: b.start_ms,
            end_ms,
            audio: b.audio,
            is_final,
            voiced_ratio: b.voiced as f32 / b.frames.max(1) as f32,
            level_dbfs: level as f32,
        }
    }
}

struct BuildingView {
    start_ms: u64,
    audio: Vec<f32>,
    frames: u32,
    voiced: u32,
    voiced_power: f64,
}

fn b_clone_view(b: &Building) -> BuildingView {
    BuildingView {
        start_ms: b.start_ms,
        audio: b.audio.clone(),
        frames: b.frames,
        voiced: b.voiced,
        voiced_power: b.voiced_power,
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
        let mut s = Segmenter::new(StreamConfig::default(), Speaker::Agent);
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
    fn long_speech_is_cut_at_the_maximum() {
        let jobs = run(&[(2000, true)]);
        let finals: Vec<&Job> = jobs.iter().filter(|j| j.is_final).collect();
        assert_eq!(finals.len(), 2);
        assert_eq!(finals[0].end_ms - finals[0].start_ms, 15_000);
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
