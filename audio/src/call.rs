//! A two-party call: one resampler and one [`PartyAnalyzer`] per party, plus the features that
//! need both parties (per-party silences, mutual silence / dead air, talk-over).
//!
//! [`CallAnalyzer::push`] takes any amount of source-rate samples of one party. Steady-state it
//! does not allocate (party frames wait for the other party in rings built in `new`).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::error::AudioError;
use crate::party::{FeatureConfig, FrameFeatures, LoudnessJump, PartyAnalyzer, PartyOutput};
use crate::resample::{PartyResampler, FRAME_LEN};

/// Who is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Agent,
    Caller,
}

impl Party {
    pub const ALL: [Party; 2] = [Party::Agent, Party::Caller];
    pub fn index(self) -> usize {
        match self {
            Party::Agent => 0,
            Party::Caller => 1,
        }
    }
    pub fn other(self) -> Party {
        match self {
            Party::Agent => Party::Caller,
            Party::Caller => Party::Agent,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Party::Agent => "agent",
            Party::Caller => "caller",
        }
    }
}

/// Thresholds of the cross-party features.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallConfig {
    pub features: FeatureConfig,
    /// Shortest silence (frames) reported per party and as mutual silence.
    pub min_silence_frames: u64,
    /// Shortest overlap (frames) reported as talk-over.
    pub min_talk_over_frames: u64,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            features: FeatureConfig::default(),
            min_silence_frames: 100,
            min_talk_over_frames: 20,
        }
    }
}

/// Time span in frames `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

/// Events with a span, emitted when they end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CallEvent {
    /// A speech segment of one party (the VAD's padded segments).
    Speech(Party, Span),
    /// An utterance (speech with pauses < 0.3 s bridged) and its syllable nuclei.
    Utterance(Party, Span, u32),
    /// A party is silent (not voiced) for at least the minimum silence.
    Silence(Party, Span),
    /// Neither party speaks (dead air).
    MutualSilence(Span),
    /// Both parties speak; `second` started last (the one who talked over).
    TalkOver { span: Span, second: Party },
    /// A sudden loudness rise.
    Jump(Party, LoudnessJump),
}

/// Both parties' raw decisions on one frame, as soon as every party's frame has arrived: the
/// fast path for "still silent" and "both talking" (see [`crate::ArrivedFrame`]). It runs
/// [`PartyAnalyzer::delay_frames`] frames ahead of the confirmed [`CallOutput::Frame`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ahead {
    pub index: u64,
    /// Raw voice decision per party (agent, caller); `None` for a party absent from the call
    /// or whose stream has ended.
    pub voiced: [Option<bool>; 2],
}

/// Output of the call analyzer, in an order that does not depend on how the audio was
/// chunked: `Ahead(t)`, the jumps confirmed at frame `t`, then the confirmed frames and events
/// of frame `t − delay`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CallOutput {
    Ahead(Ahead),
    Frame(Party, FrameFeatures),
    Event(CallEvent),
}

#[derive(Debug, Clone, Copy, Default)]
struct RunState {
    active: bool,
    start: u64,
    nuclei: u32,
}

/// A frame's features with its 16 kHz audio, per party in time order, the moment the features
/// are confirmed: what a recogniser's segmenter needs (the audio and its speech flag), from the
/// same single pass as everything else.
pub type Heard<'a> = dyn FnMut(Party, &FrameFeatures, &[f32; FRAME_LEN]) + 'a;

/// Frames of 16 kHz audio kept per party until their features are confirmed (more than the
/// look-ahead).
const AUDIO_RING: usize = 128;

struct PartyLane {
    resampler: PartyResampler,
    analyzer: PartyAnalyzer,
    /// The last [`AUDIO_RING`] frames of 16 kHz audio, by frame index.
    audio: Box<[[f32; FRAME_LEN]]>,
    /// Raw decisions of arrived frames not yet paired with the other party's.
    arrived: VecDeque<crate::ArrivedFrame>,
    /// Confirmed frames not yet paired with the other party's.
    waiting: VecDeque<FrameFeatures>,
    speech: RunState,
    voiced: RunState,
    utterance: RunState,
    silence: RunState,
    done: bool,
}

/// Streams a whole call (one or two parties) through the feature path.
pub struct CallAnalyzer {
    cfg: CallConfig,
    lanes: [Option<PartyLane>; 2],
    mutual: RunState,
    overlap: RunState,
    overlap_second: Party,
    /// Jumps wait here until every party's frame that confirmed them has arrived, so they come
    /// out at the same place in the stream however the audio was chunked, as soon as known.
    pending_jumps: VecDeque<(Party, LoudnessJump)>,
    /// How far the arriving frames run ahead of the confirmed ones (the VAD look-ahead).
    lead: u64,
    /// Frames that a party produced while the other lagged beyond the ring (live only).
    pub overflow_frames: u64,
}

const WAIT_CAPACITY: usize = 2048;

impl std::fmt::Debug for CallAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallAnalyzer").finish_non_exhaustive()
    }
}

impl CallAnalyzer {
    /// Builds the pipeline for the parties present, given their source sample rates.
    pub fn new(
        cfg: CallConfig,
        agent_rate: Option<u32>,
        caller_rate: Option<u32>,
    ) -> Result<Self, AudioError> {
        let lane = |rate: Option<u32>| -> Result<Option<PartyLane>, AudioError> {
            rate.map(|r| {
                Ok(PartyLane {
                    resampler: PartyResampler::new(r)?,
                    analyzer: PartyAnalyzer::new(cfg.features.clone())?,
                    audio: vec![[0.0; FRAME_LEN]; AUDIO_RING].into_boxed_slice(),
                    arrived: VecDeque::with_capacity(WAIT_CAPACITY),
                    waiting: VecDeque::with_capacity(WAIT_CAPACITY),
                    speech: RunState::default(),
                    voiced: RunState::default(),
                    utterance: RunState::default(),
                    silence: RunState::default(),
                    done: false,
                })
            })
            .transpose()
        };
        let lead = PartyAnalyzer::new(cfg.features.clone())?.delay_frames() as u64;
        if lead as usize >= AUDIO_RING {
            return Err(AudioError::Resampler(format!(
                "a look-ahead of {lead} frames needs more than {AUDIO_RING} frames of audio kept"
            )));
        }
        Ok(Self {
            lead,
            lanes: [lane(agent_rate)?, lane(caller_rate)?],
            mutual: RunState::default(),
            overlap: RunState::default(),
            overlap_second: Party::Caller,
            pending_jumps: VecDeque::with_capacity(16),
            overflow_frames: 0,
            cfg,
        })
    }

    /// Is this party present?
    pub fn has(&self, party: Party) -> bool {
        self.lanes[party.index()].is_some()
    }

    /// The party's analyzer (loudness, noise floor… so far).
    pub fn party(&self, party: Party) -> Option<&PartyAnalyzer> {
        self.lanes[party.index()].as_ref().map(|l| &l.analyzer)
    }

    /// NaN or infinite samples of a party replaced by silence so far.
    pub fn non_finite_samples(&self, party: Party) -> u64 {
        self.lanes[party.index()]
            .as_ref()
            .map_or(0, |l| l.resampler.non_finite_samples())
    }

    /// Pushes source-rate mono samples of one party. Does not allocate in steady state.
    pub fn push(
        &mut self,
        party: Party,
        samples: &[f32],
        out: &mut dyn FnMut(CallOutput),
    ) -> Result<(), AudioError> {
        self.feed(party, Some(samples), out, &mut |_, _, _| {})
    }

    /// [`Self::push`], also handing each frame's features with its 16 kHz audio to `heard` as
    /// they are confirmed (see [`Heard`]).
    pub fn push_heard(
        &mut self,
        party: Party,
        samples: &[f32],
        out: &mut dyn FnMut(CallOutput),
        heard: &mut Heard<'_>,
    ) -> Result<(), AudioError> {
        self.feed(party, Some(samples), out, heard)
    }

    /// Ends one party's stream (flushes its resampler and look-ahead).
    pub fn finish_party(
        &mut self,
        party: Party,
        out: &mut dyn FnMut(CallOutput),
    ) -> Result<(), AudioError> {
        self.feed(party, None, out, &mut |_, _, _| {})
    }

    /// Runs samples (or, with `None`, the end of the stream) through one party's lane.
    fn feed(
        &mut self,
        party: Party,
        samples: Option<&[f32]>,
        out: &mut dyn FnMut(CallOutput),
        heard: &mut Heard<'_>,
    ) -> Result<(), AudioError> {
        let Some(lane) = self.lanes[party.index()].as_mut() else {
            return Ok(());
        };
        let PartyLane {
            resampler,
            analyzer,
            audio,
            arrived,
            waiting,
            done,
            ..
        } = lane;
        let mut overflow = 0;
        let jumps = &mut self.pending_jumps;
        let slot = |i: u64| (i % AUDIO_RING as u64) as usize;
        let mut on_frame = |frame: &[f32; FRAME_LEN]| {
            audio[slot(analyzer.frames())] = *frame;
            let kept = &*audio;
            analyzer.push_frame(frame, &mut |o| {
                if let PartyOutput::Frame(f) = &o {
                    heard(party, f, &kept[slot(f.index)]);
                }
                route(party, o, arrived, waiting, &mut overflow, jumps)
            });
        };
        match samples {
            Some(s) => resampler.push(s, &mut on_frame)?,
            None => {
                resampler.finish(&mut on_frame)?;
                let kept = &*audio;
                analyzer.finish(&mut |o| {
                    if let PartyOutput::Frame(f) = &o {
                        heard(party, f, &kept[slot(f.index)]);
                    }
                    route(party, o, arrived, waiting, &mut overflow, jumps)
                });
                *done = true;
            }
        }
        self.overflow_frames += overflow;
        self.pair(out);
        Ok(())
    }

    /// Ends the call: finishes every party and closes open runs.
    pub fn finish(&mut self, out: &mut dyn FnMut(CallOutput)) -> Result<(), AudioError> {
        self.finish_heard(out, &mut |_, _, _| {})
    }

    /// [`Self::finish`], handing the last frames' features and audio to `heard`.
    pub fn finish_heard(
        &mut self,
        out: &mut dyn FnMut(CallOutput),
        heard: &mut Heard<'_>,
    ) -> Result<(), AudioError> {
        for p in Party::ALL {
            if self.lanes[p.index()].as_ref().is_some_and(|l| !l.done) {
                self.feed(p, None, out, heard)?;
            }
        }
        self.pair(out);
        // A party that ended early is silent for the rest of the call.
        let end = self.frames_total();
        while self.lanes.iter().flatten().any(|l| !l.waiting.is_empty()) {
            let mut frames = [None, None];
            for p in Party::ALL {
                if let Some(l) = self.lanes[p.index()].as_mut() {
                    frames[p.index()] = Some(l.waiting.pop_front().unwrap_or_default());
                }
            }
            self.step(frames, out);
        }
        self.release_jumps(u64::MAX, out);
        let min = self.cfg.min_silence_frames;
        for p in Party::ALL {
            if let Some(l) = self.lanes[p.index()].as_mut() {
                close_run(&mut l.speech, end, 1, |s, _| {
                    out(CallOutput::Event(CallEvent::Speech(p, s)))
                });
                close_run(&mut l.utterance, end, 1, |s, n| {
                    out(CallOutput::Event(CallEvent::Utterance(p, s, n)))
                });
                close_run(&mut l.silence, end, min, |s, _| {
                    out(CallOutput::Event(CallEvent::Silence(p, s)))
                });
            }
        }
        close_run(&mut self.mutual, end, min, |s, _| {
            out(CallOutput::Event(CallEvent::MutualSilence(s)))
        });
        let second = self.overlap_second;
        close_run(
            &mut self.overlap,
            end,
            self.cfg.min_talk_over_frames,
            |s, _| out(CallOutput::Event(CallEvent::TalkOver { span: s, second })),
        );
        Ok(())
    }

    /// Frames analysed (the longer party).
    pub fn frames_total(&self) -> u64 {
        self.lanes
            .iter()
            .flatten()
            .map(|l| l.analyzer.frames())
            .max()
            .unwrap_or(0)
    }

    /// Emits everything every party's arrivals allow: per frame whose arrival every streaming
    /// party has delivered, `Ahead(t)`, the jumps confirmed by then, and the confirmed frames
    /// up to `t − lead`. Once every party has ended, the rest of the confirmed frames.
    fn pair(&mut self, out: &mut dyn FnMut(CallOutput)) {
        loop {
            let mut next: Option<u64> = None;
            let mut blocked = false;
            for l in self.lanes.iter().flatten() {
                match l.arrived.front() {
                    Some(a) => next = Some(next.map_or(a.index, |n| n.min(a.index))),
                    None if l.done => {}
                    None => blocked = true,
                }
            }
            let (Some(index), false) = (next, blocked) else {
                break;
            };
            let mut voiced = [None, None];
            for p in Party::ALL {
                if let Some(l) = self.lanes[p.index()].as_mut() {
                    if l.arrived.front().is_some_and(|a| a.index == index) {
                        voiced[p.index()] = l.arrived.pop_front().map(|a| a.voiced);
                    }
                }
            }
            out(CallOutput::Ahead(Ahead { index, voiced }));
            self.release_jumps(index, out);
            if let Some(limit) = index.checked_sub(self.lead) {
                self.pair_confirmed(limit, out);
            }
        }
        if self.lanes.iter().flatten().all(|l| l.done) {
            self.release_jumps(u64::MAX, out);
            self.pair_confirmed(u64::MAX, out);
        }
    }

    /// Steps the confirmed frames of every party up to frame `limit`, while each party still
    /// streaming has its frame; a party whose stream ended counts as silent, and so does a
    /// frame a party lost to an overflow (frames are paired by their number, never by their
    /// place in the queues).
    fn pair_confirmed(&mut self, limit: u64, out: &mut dyn FnMut(CallOutput)) {
        loop {
            let mut target: Option<u64> = None;
            let mut complete = true;
            for l in self.lanes.iter().flatten() {
                match l.waiting.front() {
                    Some(f) if f.index <= limit => {
                        target = Some(target.map_or(f.index, |t| t.min(f.index)))
                    }
                    // Its frames up to `limit` came out and are gone (an overflow): silent.
                    Some(_) => {}
                    None if l.done => {}
                    None => complete = false,
                }
            }
            let (Some(index), true) = (target, complete) else {
                return;
            };
            let mut frames = [None, None];
            for p in Party::ALL {
                if let Some(l) = self.lanes[p.index()].as_mut() {
                    frames[p.index()] =
                        Some(if l.waiting.front().is_some_and(|f| f.index == index) {
                            l.waiting.pop_front().unwrap_or_default()
                        } else {
                            FrameFeatures {
                                index,
                                ..FrameFeatures::default()
                            }
                        });
                }
            }
            self.step(frames, out);
        }
    }

    /// Emits queued jumps confirmed at or before frame `now`, earliest first (agent first on a
    /// tie): the order does not depend on which party's audio was pushed first.
    fn release_jumps(&mut self, now: u64, out: &mut dyn FnMut(CallOutput)) {
        loop {
            let next = self
                .pending_jumps
                .iter()
                .enumerate()
                .filter(|(_, (_, j))| j.confirmed_index <= now)
                .min_by_key(|(_, (p, j))| (j.confirmed_index, p.index()))
                .map(|(i, _)| i);
            match next.and_then(|i| self.pending_jumps.remove(i)) {
                Some((p, j)) => out(CallOutput::Event(CallEvent::Jump(p, j))),
                None => return,
            }
        }
    }

    fn step(&mut self, frames: [Option<FrameFeatures>; 2], out: &mut dyn FnMut(CallOutput)) {
        let min_silence = self.cfg.min_silence_frames;
        let mut speaking = [false, false];
        let mut index = 0;
        for p in Party::ALL {
            let (Some(f), Some(lane)) = (frames[p.index()], self.lanes[p.index()].as_mut()) else {
                continue;
            };
            index = f.index;
            speaking[p.index()] = f.voiced;
            out(CallOutput::Frame(p, f));
            track(&mut lane.speech, f.speech, f.index, false, 1, |s, _| {
                out(CallOutput::Event(CallEvent::Speech(p, s)))
            });
            track(
                &mut lane.voiced,
                f.voiced,
                f.index,
                false,
                u64::MAX,
                |_, _| {},
            );
            track(
                &mut lane.utterance,
                f.utterance,
                f.index,
                f.nucleus,
                1,
                |s, n| out(CallOutput::Event(CallEvent::Utterance(p, s, n))),
            );
            track(
                &mut lane.silence,
                !f.voiced,
                f.index,
                false,
                min_silence,
                |s, _| out(CallOutput::Event(CallEvent::Silence(p, s))),
            );
        }
        let two = self.lanes.iter().all(Option::is_some);
        if !two {
            return;
        }
        let both_silent = !speaking[0] && !speaking[1];
        track(
            &mut self.mutual,
            both_silent,
            index,
            false,
            min_silence,
            |s, _| out(CallOutput::Event(CallEvent::MutualSilence(s))),
        );
        let both = speaking[0] && speaking[1];
        if both && !self.overlap.active {
            // The one whose current voiced run started later is the one who talked over.
            let a = self.lanes[0].as_ref().map(|l| l.voiced.start).unwrap_or(0);
            let c = self.lanes[1].as_ref().map(|l| l.voiced.start).unwrap_or(0);
            self.overlap_second = if a > c { Party::Agent } else { Party::Caller };
        }
        let second = self.overlap_second;
        track(
            &mut self.overlap,
            both,
            index,
            false,
            self.cfg.min_talk_over_frames,
            |s, _| out(CallOutput::Event(CallEvent::TalkOver { span: s, second })),
        );
    }
}

fn route(
    party: Party,
    o: PartyOutput,
    arrived: &mut VecDeque<crate::ArrivedFrame>,
    waiting: &mut VecDeque<FrameFeatures>,
    overflow: &mut u64,
    jumps: &mut VecDeque<(Party, LoudnessJump)>,
) {
    match o {
        PartyOutput::Arrived(a) => {
            if arrived.len() == WAIT_CAPACITY {
                // The other party lags by more than 20 s: as for confirmed frames below.
                arrived.pop_front();
            }
            arrived.push_back(a);
        }
        PartyOutput::Frame(f) => {
            if waiting.len() == WAIT_CAPACITY {
                // The other party lags by more than 20 s (a stalled live device): drop the
                // oldest pairing slot rather than grow, and count it.
                waiting.pop_front();
                *overflow += 1;
            }
            waiting.push_back(f);
        }
        PartyOutput::Jump(j) => jumps.push_back((party, j)),
    }
}

/// Tracks a boolean run; calls `emit` when a run of at least `min` frames ends.
fn track(
    run: &mut RunState,
    on: bool,
    index: u64,
    nucleus: bool,
    min: u64,
    emit: impl FnOnce(Span, u32),
) {
    if on {
        if !run.active {
            *run = RunState {
                active: true,
                start: index,
                nuclei: 0,
            };
        }
        if nucleus {
            run.nuclei += 1;
        }
    } else {
        close_run(run, index, min, emit);
    }
}

fn close_run(run: &mut RunState, end: u64, min: u64, emit: impl FnOnce(Span, u32)) {
    if run.active {
        run.active = false;
        if end - run.start >= min {
            emit(
                Span {
                    start: run.start,
                    end,
                },
                run.nuclei,
            );
        }
    }
}
