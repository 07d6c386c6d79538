//! The call report: what `analyze` and every live call write, and the collector that builds
//! it from the feature path's output as the call streams through.

use serde::{Deserialize, Serialize};

use crate::call::{CallAnalyzer, CallEvent, CallOutput, Party, Span};

pub(crate) const FRAME_S: f64 = 0.01;

/// Which channel of a stereo file is the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AgentChannel {
    #[default]
    Left,
    Right,
}

/// A problem with the input that does not stop the analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputWarning {
    /// Stable code: `identical-channels`, `digital-silence`, `clipping`, `agent-only`.
    pub code: String,
    pub party: Option<Party>,
    pub message: String,
}

/// One decoded file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: usize,
    pub duration_s: f64,
}

/// A time span in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start_s: f64,
    pub end_s: f64,
}

impl From<Span> for Segment {
    fn from(s: Span) -> Self {
        Self {
            start_s: s.start as f64 * FRAME_S,
            end_s: s.end as f64 * FRAME_S,
        }
    }
}

impl Segment {
    pub fn duration_s(&self) -> f64 {
        self.end_s - self.start_s
    }
}

/// An utterance with its syllable count and rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    pub start_s: f64,
    pub end_s: f64,
    pub syllables: u32,
    pub chars_per_minute: f64,
}

/// Two parties speaking at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TalkOver {
    pub start_s: f64,
    pub end_s: f64,
    /// Who started speaking second (talked over the other).
    pub second_speaker: Party,
}

/// A sudden loudness rise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Jump {
    pub time_s: f64,
    pub level_dbfs: f32,
    pub baseline_dbfs: f32,
    pub rise_db: f32,
}

/// Everything about one party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyReport {
    pub party: Party,
    pub integrated_lufs: Option<f32>,
    pub loudness_range_lu: Option<f32>,
    pub speaking_time_s: f64,
    /// Share of the two parties' speaking time; 1.0 when only this party is present.
    pub talk_ratio: f64,
    /// Syllable nuclei in utterances (≈ Chinese characters).
    pub syllables: u64,
    /// Summed utterance time (pauses ≥ 0.3 s excluded), the rate's denominator.
    pub utterance_time_s: f64,
    /// Characters per minute over the call: syllables ÷ utterance time.
    pub chars_per_minute: Option<f64>,
    pub longest_silence_s: f64,
    /// Longest stretch of this party talking without the other party taking the floor
    /// (the other's speech under 0.3 s, e.g. 嗯, does not end it; 3 s of silence does).
    pub longest_monologue_s: f64,
    pub noise_floor_dbfs: Option<f32>,
    pub speech_level_dbfs: Option<f32>,
    pub snr_db: Option<f32>,
    pub peak_dbfs: f32,
    pub clipped_samples: u64,
    pub speech_segments: Vec<Segment>,
    pub utterances: Vec<Utterance>,
    pub silences: Vec<Segment>,
    pub loudness_jumps: Vec<Jump>,
}

/// 10 Hz time series of one party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PartySeries {
    pub momentary_lufs: Vec<Option<f32>>,
    pub short_term_lufs: Vec<Option<f32>>,
    /// Fraction of the 100 ms that was speech.
    pub speech: Vec<f32>,
    /// Characters per minute over the last 15 s of utterance time (None below 2 s of speech).
    pub chars_per_minute: Vec<Option<f32>>,
}

/// Time series at 10 Hz; entry `i` covers `[i·0.1 s, (i+1)·0.1 s)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Series {
    pub step_s: f64,
    pub agent: Option<PartySeries>,
    pub caller: Option<PartySeries>,
}

/// Summary of the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    pub duration_s: f64,
    pub parties: usize,
    pub talk_over_count: usize,
    pub talk_over_s: f64,
    pub mutual_silence_count: usize,
    pub longest_mutual_silence_s: f64,
}

/// The full report of `callcoach analyze`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    pub format_version: u32,
    pub files: Vec<FileInfo>,
    pub layout: String,
    pub agent_channel: AgentChannel,
    pub warnings: Vec<InputWarning>,
    pub summary: CallSummary,
    pub agent: PartyReport,
    pub caller: Option<PartyReport>,
    pub mutual_silences: Vec<Segment>,
    pub talk_overs: Vec<TalkOver>,
    pub series: Series,
}

/// Per-channel checks made on the source samples.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SourceStats {
    pub(crate) peak: f32,
    pub(crate) clipped: u64,
    pub(crate) nonzero: u64,
    pub(crate) samples: u64,
}

impl SourceStats {
    /// Separate simple passes: each one vectorises (this runs on every source sample).
    pub(crate) fn add_block(&mut self, block: &[f32]) {
        self.peak = block.iter().fold(self.peak, |m, x| m.max(x.abs()));
        self.clipped += block.iter().filter(|x| x.abs() >= 0.999).count() as u64;
        self.nonzero += block.iter().filter(|&&x| x != 0.0).count() as u64;
        self.samples += block.len() as u64;
    }
}

/// Collects the report while the call streams through.
pub(crate) struct Collector {
    pub(crate) parties: [Option<PartyCollect>; 2],
    pub(crate) monologue: Monologue,
    pub(crate) mutual: Vec<Segment>,
    pub(crate) talk_overs: Vec<TalkOver>,
}

#[derive(Default)]
pub(crate) struct PartyCollect {
    pub(crate) speech: Vec<Segment>,
    pub(crate) utterances: Vec<Utterance>,
    pub(crate) silences: Vec<Segment>,
    pub(crate) jumps: Vec<Jump>,
    pub(crate) series: PartySeries,
    pub(crate) bucket_speech: u32,
    pub(crate) window: std::collections::VecDeque<(u32, u32)>, // per 100 ms: (utterance frames, nuclei)
    pub(crate) bucket_utt: u32,
    pub(crate) bucket_nuclei: u32,
    pub(crate) bucket_momentary: Option<f32>,
    pub(crate) bucket_short: Option<f32>,
}

pub(crate) const RATE_WINDOW_BUCKETS: usize = 150; // 15 s of call time

impl PartyCollect {
    pub(crate) fn frame(&mut self, f: &crate::party::FrameFeatures) {
        self.bucket_speech += u32::from(f.speech);
        self.bucket_utt += u32::from(f.utterance);
        self.bucket_nuclei += u32::from(f.nucleus);
        if f.momentary_lufs.is_some() {
            self.bucket_momentary = f.momentary_lufs;
            self.bucket_short = f.short_term_lufs;
        }
        if f.index % 10 == 9 {
            self.close_bucket(10);
        }
    }

    pub(crate) fn close_bucket(&mut self, frames: u32) {
        self.series
            .momentary_lufs
            .push(self.bucket_momentary.take());
        self.series.short_term_lufs.push(self.bucket_short.take());
        self.series
            .speech
            .push(self.bucket_speech as f32 / frames as f32);
        if self.window.len() == RATE_WINDOW_BUCKETS {
            self.window.pop_front();
        }
        self.window.push_back((self.bucket_utt, self.bucket_nuclei));
        let (utt, nuc) = self
            .window
            .iter()
            .fold((0u32, 0u32), |a, b| (a.0 + b.0, a.1 + b.1));
        let rate = (utt >= 200).then(|| nuc as f32 / (utt as f32 * FRAME_S as f32 / 60.0));
        self.series.chars_per_minute.push(rate);
        self.bucket_speech = 0;
        self.bucket_utt = 0;
        self.bucket_nuclei = 0;
    }
}

/// Tracks monologues: runs of one party's speech that the other does not interrupt.
#[derive(Default)]
pub(crate) struct Monologue {
    /// Per party: start of the current monologue, last voiced frame, other party's voiced run.
    pub(crate) start: [Option<u64>; 2],
    pub(crate) last: [u64; 2],
    pub(crate) other_run: [u64; 2],
    pub(crate) longest: [u64; 2],
}

impl Monologue {
    pub(crate) fn frame(&mut self, p: Party, index: u64, voiced: bool) {
        let (i, o) = (p.index(), p.other().index());
        if voiced {
            self.start[i].get_or_insert(index);
            self.last[i] = index;
            self.other_run[o] += 1;
            if self.other_run[o] >= 30 {
                self.close(o);
            }
        } else {
            self.other_run[o] = 0;
            if self.start[i].is_some() && index > self.last[i] + 300 {
                self.close(i);
            }
        }
    }
    pub(crate) fn close(&mut self, i: usize) {
        if let Some(s) = self.start[i].take() {
            self.longest[i] = self.longest[i].max(self.last[i] + 1 - s);
        }
    }
}

impl Collector {
    pub(crate) fn on(&mut self, o: CallOutput) {
        match o {
            CallOutput::Frame(p, f) => {
                self.monologue.frame(p, f.index, f.voiced);
                if let Some(c) = self.parties[p.index()].as_mut() {
                    c.frame(&f);
                }
            }
            CallOutput::Event(e) => self.event(e),
            // The report is built on the confirmed stream.
            CallOutput::Ahead(_) => {}
        }
    }

    pub(crate) fn event(&mut self, e: CallEvent) {
        match e {
            CallEvent::Speech(p, s) => self.with(p, |c| c.speech.push(s.into())),
            CallEvent::Utterance(p, s, n) => self.with(p, |c| {
                let seg = Segment::from(s);
                let d = seg.duration_s();
                c.utterances.push(Utterance {
                    start_s: seg.start_s,
                    end_s: seg.end_s,
                    syllables: n,
                    chars_per_minute: if d > 0.0 { n as f64 * 60.0 / d } else { 0.0 },
                })
            }),
            CallEvent::Silence(p, s) => self.with(p, |c| c.silences.push(s.into())),
            CallEvent::MutualSilence(s) => self.mutual.push(s.into()),
            CallEvent::TalkOver { span, second } => {
                let s = Segment::from(span);
                self.talk_overs.push(TalkOver {
                    start_s: s.start_s,
                    end_s: s.end_s,
                    second_speaker: second,
                })
            }
            CallEvent::Jump(p, j) => self.with(p, |c| {
                c.jumps.push(Jump {
                    time_s: j.index as f64 * FRAME_S,
                    level_dbfs: j.level_db,
                    baseline_dbfs: j.baseline_db,
                    rise_db: j.level_db - j.baseline_db,
                })
            }),
        }
    }

    pub(crate) fn with(&mut self, p: Party, f: impl FnOnce(&mut PartyCollect)) {
        if let Some(c) = self.parties[p.index()].as_mut() {
            f(c);
        }
    }
}

pub(crate) fn build_report(
    layout: &str,
    agent_channel: AgentChannel,
    files: Vec<FileInfo>,
    warnings: Vec<InputWarning>,
    analyzer: &CallAnalyzer,
    mut collector: Collector,
    stats: &[SourceStats; 2],
) -> CallReport {
    let total_frames = analyzer.frames_total();
    let duration_s = total_frames as f64 * FRAME_S;
    let speaking: Vec<f64> = Party::ALL
        .iter()
        .map(|p| {
            analyzer
                .party(*p)
                .map(|a| a.voiced_frames() as f64 * FRAME_S)
                .unwrap_or(0.0)
        })
        .collect();
    let both: f64 = speaking.iter().sum();
    collector.monologue.close(0);
    collector.monologue.close(1);
    let longest = collector.monologue.longest;
    let mut party_report = |p: Party| -> Option<(PartyReport, PartySeries)> {
        let a = analyzer.party(p)?;
        let mut c = collector.parties[p.index()].take()?;
        let rest = (total_frames % 10) as u32;
        if rest != 0 {
            c.close_bucket(rest);
        }
        let (syllables, utt_frames) = a.nuclei_and_utterance_frames();
        let utterance_time_s = utt_frames as f64 * FRAME_S;
        let st = stats[p.index()];
        let report = PartyReport {
            party: p,
            integrated_lufs: a.integrated_lufs(),
            loudness_range_lu: a.loudness_range_lu(),
            speaking_time_s: speaking[p.index()],
            talk_ratio: if both > 0.0 {
                speaking[p.index()] / both
            } else {
                0.0
            },
            syllables,
            utterance_time_s,
            chars_per_minute: (utterance_time_s >= 1.0)
                .then(|| syllables as f64 * 60.0 / utterance_time_s),
            longest_silence_s: c
                .silences
                .iter()
                .map(Segment::duration_s)
                .fold(0.0, f64::max),
            longest_monologue_s: longest[p.index()] as f64 * FRAME_S,
            noise_floor_dbfs: a.noise_floor_db(),
            speech_level_dbfs: a.speech_level_db(),
            snr_db: a.snr_db(),
            peak_dbfs: if st.peak > 0.0 {
                20.0 * st.peak.log10()
            } else {
                -120.0
            },
            clipped_samples: st.clipped,
            speech_segments: c.speech,
            utterances: c.utterances,
            silences: c.silences,
            loudness_jumps: c.jumps,
        };
        Some((report, c.series))
    };
    let agent = party_report(Party::Agent);
    let caller = party_report(Party::Caller);
    let (agent, agent_series) = agent.unwrap_or_else(unreachable_agent);
    let (caller, caller_series) = match caller {
        Some((r, s)) => (Some(r), Some(s)),
        None => (None, None),
    };
    let summary = CallSummary {
        duration_s,
        parties: 1 + usize::from(caller.is_some()),
        talk_over_count: collector.talk_overs.len(),
        talk_over_s: collector
            .talk_overs
            .iter()
            .map(|t| t.end_s - t.start_s)
            .sum(),
        mutual_silence_count: collector.mutual.len(),
        longest_mutual_silence_s: collector
            .mutual
            .iter()
            .map(Segment::duration_s)
            .fold(0.0, f64::max),
    };
    CallReport {
        format_version: 1,
        files,
        layout: layout.to_string(),
        agent_channel,
        warnings,
        summary,
        agent,
        caller,
        mutual_silences: collector.mutual,
        talk_overs: collector.talk_overs,
        series: Series {
            step_s: 0.1,
            agent: Some(agent_series),
            caller: caller_series,
        },
    }
}

/// The agent lane always exists (every layout has an agent); this keeps the types honest.
pub(crate) fn unreachable_agent() -> (PartyReport, PartySeries) {
    (
        PartyReport {
            party: Party::Agent,
            integrated_lufs: None,
            loudness_range_lu: None,
            speaking_time_s: 0.0,
            talk_ratio: 0.0,
            syllables: 0,
            utterance_time_s: 0.0,
            chars_per_minute: None,
            longest_silence_s: 0.0,
            longest_monologue_s: 0.0,
            noise_floor_dbfs: None,
            speech_level_dbfs: None,
            snr_db: None,
            peak_dbfs: -120.0,
            clipped_samples: 0,
            speech_segments: Vec::new(),
            utterances: Vec::new(),
            silences: Vec::new(),
            loudness_jumps: Vec::new(),
        },
        PartySeries::default(),
    )
}
