//! `callcoach live`: sound devices (or a recording replayed as if it were live) through the
//! same feature → coach path as `analyze`.
//!
//! Threads: source (cpal callback, or the replay thread) → lock-free rings sized in
//! milliseconds (full: drop and count) → the pipeline thread (features, coach, ASR segmenting,
//! call lifecycle) → bounded channels to the ASR worker, the recorder and the screen, each of
//! which drops and counts rather than block. A call's end hands its finishing (waiting for the
//! last transcripts, writing the report) to a thread of its own so the audio keeps flowing.
//!
//! Calls start from the API or hotkeys ([`Control::CallStart`]), at the first sample of a
//! replayed recording, or on sustained two-party speech (pre-roll kept, so the call's start is
//! not lost); every call leaves `call-ID.json` (the same report `analyze` writes, see
//! [`crate::report`]), `call-ID.transcript.jsonl` (its transcript and call events) and, with
//! recording on, `call-ID.wav` (16-bit, agent left): `callcoach analyze call-ID.wav
//! --transcript call-ID.transcript.jsonl` reproduces the report.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use callcoach_asr::stream::{Segmenter, Speaker, StreamConfig};
use callcoach_asr::{Transcriber, Worker};
use callcoach_audio::analyze::{AgentChannel, CallReport, CallStream, FileInfo, InputWarning};
use callcoach_audio::call::{CallAnalyzer, CallConfig, CallOutput, Party};
use callcoach_audio::decode::Decoder;
use callcoach_audio::FRAME_LEN;
use callcoach_coach::rate::{RateSource, RateTracker};
use callcoach_coach::transcript::Transcript;
use callcoach_coach::{Coach, Event, RuleBook, TranscriptSegment, Warning, WarningState};
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use rtrb::RingBuffer;

use crate::coaching::CoachFeed;
use crate::report::{AsrReport, CoachReport, FullReport, SpeechRates};
use crate::transcribe::{to_segment, AsrOutcome};
use crate::uitx::UiTx;

/// Call control from outside the audio (local HTTP API, overlay hotkeys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    CallStart,
    CallEnd,
    HoldStart,
    HoldEnd,
}

/// From the capture side to the pipeline: a party's device went away, or came back with a
/// new ring.
#[derive(Debug)]
pub enum SourceMsg {
    Lost {
        party: Party,
        reason: String,
    },
    Restored {
        party: Party,
        ring: rtrb::Consumer<f32>,
    },
}

/// Live meters, sent about every 100 ms of audio.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Meters {
    /// Call time, when a call is in progress.
    pub call_ms: Option<u64>,
    /// Momentary loudness (400 ms), LUFS, per party (agent, caller).
    pub loudness_lufs: [Option<f32>; 2],
    pub speaking: [bool; 2],
    /// Characters per minute over the last 15 s of the party's speech…
    pub chars_per_minute: [Option<f32>; 2],
    /// …and which estimate it is (the transcript's characters, or syllable nuclei).
    pub rate_source: [Option<RateSource>; 2],
    /// The agent's share of the speaking time so far.
    pub agent_talk_ratio: Option<f32>,
    /// Time since either party last spoke, ms.
    pub silence_ms: u64,
    /// Time on hold, ms.
    pub hold_ms: Option<u64>,
    /// A party whose device is lost (filled with silence until it is back).
    pub lost: [bool; 2],
}

/// What the live run hands the screen.
#[derive(Debug, Clone)]
pub enum UiEvent {
    Warning {
        warning: Box<Warning>,
        /// Wall-clock delay after the audio at the warning's call time entered the pipeline.
        latency_ms: Option<f64>,
    },
    Meters(Meters),
    /// Samples dropped because a ring was full (the pipeline fell behind).
    Overflow {
        party: Party,
        samples: u64,
    },
    /// Missing audio seen in the device's timestamps.
    Gap {
        party: Party,
        ms: f64,
    },
    CallStarted {
        id: String,
        how: &'static str,
    },
    CallEnded {
        id: String,
        call_ms: u64,
        report: PathBuf,
        recording: Option<PathBuf>,
    },
    /// A call-control event was applied at this call time.
    Control {
        control: Control,
        call_ms: u64,
    },
    PartyLost {
        party: Party,
        reason: String,
    },
    PartyRestored {
        party: Party,
        gap_ms: u64,
    },
    Transcript {
        segment: TranscriptSegment,
        /// Wall-clock delay after the utterance ended.
        latency_ms: Option<f64>,
    },
    Note(String),
    /// The audio ended and every call is written.
    End {
        stream_ms: u64,
    },
}

/// How the live run behaves; shared by replay and capture.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub book: RuleBook,
    /// How the report names the rule book.
    pub rules_name: String,
    pub agent_id: Option<String>,
    /// A call is in progress from the first sample (a replayed recording).
    pub call_at_start: bool,
    /// Start calls on sustained speech of both parties (besides the API and hotkeys).
    pub auto_start: bool,
    /// End an auto-started call after this many seconds in which nobody spoke.
    pub auto_end_s: f64,
    /// Where each call's report, transcript and recording go.
    pub out_dir: PathBuf,
    pub record: bool,
    /// Whisper model; `None`: ASR off for `asr_off_reason`.
    pub model: Option<PathBuf>,
    pub asr_off_reason: String,
    /// Ring size per party, milliseconds of audio.
    pub ring_ms: u32,
    /// Set to stop (Ctrl-C, the overlay closed): the source ends, the call in progress is
    /// finished and written like any other.
    pub stop: Arc<AtomicBool>,
}

type Ring = (rtrb::Producer<f32>, rtrb::Consumer<f32>);

/// One party's ring, `ring_ms` of audio at `rate`.
fn party_ring(rate: u32, ring_ms: u32) -> Ring {
    RingBuffer::<f32>::new((rate as usize * ring_ms as usize / 1000).max(1024))
}

/// Rounds to what a 16-bit device delivers (recordings are 16-bit; a replayed float file is
/// heard as a device would deliver it, so the recording holds exactly what was analysed).
fn to_16_bit(x: f32) -> f32 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) / 32768.0
}

/// Starts replaying `input` as a live source (at real-time pace with `realtime`, else as fast
/// as the pipeline takes it); returns the UI event stream.
pub fn replay(
    input: &Path,
    realtime: bool,
    cfg: LiveConfig,
    control: Receiver<Control>,
) -> anyhow::Result<Receiver<UiEvent>> {
    let mut decoder = Decoder::open(input)?;
    let rate = decoder.rate();
    let channels = decoder.channels();
    let parties = if channels >= 2 { 2 } else { 1 };
    let (mut agent_tx, agent_rx) = party_ring(rate, cfg.ring_ms);
    let (mut caller_tx, caller_rx) = party_ring(rate, cfg.ring_ms);
    let (ui_tx, ui_rx) = bounded::<UiEvent>(1024);
    let (src_tx, src_rx) = bounded::<SourceMsg>(16);
    let start = Instant::now();
    let ui_source = ui_tx.clone();
    let cfg_stop = cfg.stop.clone();
    std::thread::Builder::new()
        .name("callcoach-source".into())
        .spawn(move || {
            let _keep = src_tx; // the source ends when this thread does
            let mut sent: u64 = 0;
            let mut dropped = [0u64; 2];
            let stop = cfg_stop;
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let block = match decoder.next_block() {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = ui_source.send(UiEvent::Note(format!("replay stopped: {e}")));
                        break;
                    }
                };
                // Delivered like a device: 10 ms periods, each when its time has come.
                let period = (rate as usize / 100).max(1) * channels;
                for chunk in block.chunks(period) {
                    let frames = chunk.len() / channels;
                    if realtime {
                        let due =
                            Duration::from_secs_f64((sent + frames as u64) as f64 / rate as f64);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    for (ch, tx) in [&mut agent_tx, &mut caller_tx]
                        .into_iter()
                        .enumerate()
                        .take(parties)
                    {
                        for x in chunk.iter().skip(ch).step_by(channels).take(frames) {
                            // A device cannot wait: at real-time pace a full ring drops and
                            // counts. A file replayed as fast as possible waits for room.
                            while tx.push(to_16_bit(*x)).is_err() {
                                if realtime {
                                    dropped[ch] += 1;
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                    }
                    sent += frames as u64;
                }
            }
            for (i, d) in dropped.iter().enumerate() {
                if *d > 0 {
                    let party = if i == 0 { Party::Agent } else { Party::Caller };
                    let _ = ui_source.send(UiEvent::Overflow { party, samples: *d });
                }
            }
            // Dropping the producers tells the pipeline the stream has ended.
        })?;
    spawn_pipeline(
        rate,
        [Some(agent_rx), (parties == 2).then_some(caller_rx)],
        cfg,
        realtime.then_some(start),
        ui_tx,
        control,
        src_rx,
    )?;
    Ok(ui_rx)
}

/// Audio kept before "now" so that a call detected late starts where the talking did.
struct History {
    buf: Vec<f32>,
    /// Samples ever written.
    written: u64,
}

impl History {
    fn new(cap: usize) -> Self {
        Self {
            buf: vec![0.0; cap.max(1)],
            written: 0,
        }
    }
    /// Allocation-free.
    fn push(&mut self, samples: &[f32]) {
        let cap = self.buf.len();
        for &x in samples {
            self.buf[(self.written % cap as u64) as usize] = x;
            self.written += 1;
        }
    }
    fn oldest(&self) -> u64 {
        self.written.saturating_sub(self.buf.len() as u64)
    }
    /// Samples `from..written` (allocates; at a call's start only).
    fn since(&self, from: u64) -> Vec<f32> {
        let cap = self.buf.len() as u64;
        (from.max(self.oldest())..self.written)
            .map(|i| self.buf[(i % cap) as usize])
            .collect()
    }
}

const HISTORY_S: u64 = 15;
/// Sliding window of the auto-start detector, frames.
const AUTO_WINDOW: usize = 1000;
/// Speech each party needs inside the window, frames (1 s; 3 s when only the agent is heard).
const AUTO_NEED: u32 = 100;
const AUTO_NEED_ALONE: u32 = 300;

/// Sustained speech of both parties → a call. Runs on the idle analyser's frames.
struct AutoStart {
    voiced: [VecDeque<(u64, bool)>; 2],
    count: [u32; 2],
}

impl AutoStart {
    fn new() -> Self {
        Self {
            voiced: [
                VecDeque::with_capacity(AUTO_WINDOW + 1),
                VecDeque::with_capacity(AUTO_WINDOW + 1),
            ],
            count: [0; 2],
        }
    }
    fn frame(&mut self, p: Party, index: u64, speech: bool) {
        let q = &mut self.voiced[p.index()];
        q.push_back((index, speech));
        self.count[p.index()] += u32::from(speech);
        if q.len() > AUTO_WINDOW {
            if let Some((_, v)) = q.pop_front() {
                self.count[p.index()] -= u32::from(v);
            }
        }
    }
    /// The frame where the talking began, once it has been sustained.
    fn fired(&self, parties: usize) -> Option<u64> {
        let ok = if parties == 2 {
            self.count[0] >= AUTO_NEED && self.count[1] >= AUTO_NEED
        } else {
            self.count[0] >= AUTO_NEED_ALONE
        };
        ok.then(|| {
            self.voiced
                .iter()
                .take(parties)
                .filter_map(|q| q.iter().find(|v| v.1).map(|v| v.0))
                .min()
                .unwrap_or(0)
        })
    }
}

/// Meter state, fed with the current analyser's frames (idle or call).
struct MeterState {
    m: Meters,
    /// Per party: chars/min from the transcript where it has arrived, calibrated syllable
    /// nuclei for the speech not yet transcribed (the coach's own computation).
    rates: [RateTracker; 2],
    /// The rule book's rate window and the voiced speech it needs (the coach's rate rule).
    rate_window_ms: u64,
    rate_min_voiced_ms: u64,
    voiced_frames: [u64; 2],
    last_voiced: u64,
    now_frame: u64,
    sent_frame: u64,
}

impl MeterState {
    fn new(book: &RuleBook) -> Self {
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
    fn on(&mut self, o: &CallOutput) {
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
    fn transcript(&mut self, seg: &TranscriptSegment) {
        self.rates[seg.party.index()].transcript(seg.start_ms, seg.end_ms, &seg.text);
    }

    /// Meters to send, every 100 ms of audio.
    fn due(&mut self, call_ms: Option<u64>, hold_ms: Option<u64>) -> Option<Meters> {
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

type PendingFrames = [VecDeque<(u64, [f32; FRAME_LEN])>; 2];

/// The live session's loaded Whisper model, lent to each call's worker and handed back when
/// the call is finished: the model is loaded once per session, not per call (a call that starts
/// while the previous one is still finishing loads a second copy meanwhile).
type ModelSlot = Arc<std::sync::Mutex<Option<Box<dyn Transcriber>>>>;

/// A call's transcription: segmenters on the pipeline thread, Whisper on its own thread.
struct AsrLane {
    worker: Worker,
    slot: ModelSlot,
    segmenters: [Segmenter; 2],
    /// 16 kHz frames waiting for their speech flag (it comes after the VAD look-ahead).
    pending: PendingFrames,
    model: PathBuf,
    started: Instant,
}

impl AsrLane {
    fn start(model: &Path, slot: &ModelSlot, book: &RuleBook) -> Self {
        let path = model.to_path_buf();
        let mut cfg = crate::transcribe::asr_config_for(book);
        // Whisper on every core, at the lowest priority: the audio path (a few % of one core)
        // always runs first, and the transcripts use what is left.
        cfg.threads = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
        cfg.background = true;
        let loaded = slot.lock().ok().and_then(|mut s| s.take());
        let worker = match loaded {
            Some(t) => Worker::spawn(t, cfg, 8),
            None => Worker::spawn_loading(move || callcoach_asr::load_backend(&path), cfg, 8),
        };
        Self {
            worker,
            slot: slot.clone(),
            segmenters: [
                Segmenter::new(StreamConfig::default(), Speaker::Agent),
                Segmenter::new(StreamConfig::default(), Speaker::Caller),
            ],
            pending: [VecDeque::with_capacity(128), VecDeque::with_capacity(128)],
            model: model.to_path_buf(),
            started: Instant::now(),
        }
    }
    fn frame(&mut self, p: Party, index: u64, speech: bool) {
        let AsrLane {
            worker,
            segmenters,
            pending,
            ..
        } = self;
        let q = &mut pending[p.index()];
        while let Some((idx, frame)) = q.front().copied() {
            if idx > index {
                break;
            }
            q.pop_front();
            if idx == index {
                // Never blocks: a full queue drops its oldest job and counts it.
                segmenters[p.index()].push(idx * 10, &frame, speech, &mut |job| worker.submit(job));
            }
        }
    }
}

/// Writes a call's audio on its own thread: 16-bit WAV, agent left. Samples carry their offset
/// in the call so that anything dropped on the way becomes counted silence, not a shift.
struct Recorder {
    tx: Sender<(Party, u64, Vec<f32>)>,
    handle: JoinHandle<anyhow::Result<RecordingInfo>>,
    /// Chunks the pipeline could not hand over (the disk fell behind).
    dropped_chunks: u64,
}

#[derive(Debug)]
struct RecordingInfo {
    path: PathBuf,
    frames: u64,
    /// Samples written as silence because they never reached the recorder.
    filled: u64,
}

impl Recorder {
    fn start(path: PathBuf, rate: u32, parties: usize) -> anyhow::Result<Self> {
        let spec = hound::WavSpec {
            channels: parties as u16,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec)
            .with_context(|| format!("{}: cannot create the recording", path.display()))?;
        let (tx, rx) = bounded::<(Party, u64, Vec<f32>)>(1024);
        let handle = std::thread::Builder::new()
            .name("callcoach-recorder".into())
            .spawn(move || -> anyhow::Result<RecordingInfo> {
                let mut lanes: [VecDeque<i16>; 2] = [VecDeque::new(), VecDeque::new()];
                let mut next = [0u64; 2];
                let mut filled = 0u64;
                let mut frames = 0u64;
                let q = |x: f32| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                let mut write = |lanes: &mut [VecDeque<i16>; 2],
                                 writer: &mut hound::WavWriter<_>|
                 -> anyhow::Result<()> {
                    let n = lanes
                        .iter()
                        .take(parties)
                        .map(VecDeque::len)
                        .min()
                        .unwrap_or(0);
                    for _ in 0..n {
                        for lane in lanes.iter_mut().take(parties) {
                            writer.write_sample(lane.pop_front().unwrap_or(0))?;
                        }
                    }
                    frames += n as u64;
                    Ok(())
                };
                for (party, offset, samples) in rx {
                    let i = party.index();
                    if offset > next[i] {
                        filled += offset - next[i];
                        lanes[i].extend(std::iter::repeat_n(0, (offset - next[i]) as usize));
                    }
                    lanes[i].extend(samples.iter().map(|&x| q(x)));
                    next[i] = offset.max(next[i]) + samples.len() as u64;
                    write(&mut lanes, &mut writer)?;
                }
                // The parties were padded to the same length before the end.
                let longest = lanes
                    .iter()
                    .take(parties)
                    .map(VecDeque::len)
                    .max()
                    .unwrap_or(0);
                for lane in lanes.iter_mut().take(parties) {
                    let short = longest - lane.len();
                    filled += short as u64;
                    lane.extend(std::iter::repeat_n(0, short));
                }
                write(&mut lanes, &mut writer)?;
                writer.finalize()?;
                Ok(RecordingInfo {
                    path,
                    frames,
                    filled,
                })
            })?;
        Ok(Self {
            tx,
            handle,
            dropped_chunks: 0,
        })
    }
    fn push(&mut self, party: Party, offset: u64, samples: &[f32]) {
        if self.tx.try_send((party, offset, samples.to_vec())).is_err() {
            self.dropped_chunks += 1;
        }
    }
}

/// One call in progress.
struct CallSession {
    id: String,
    /// How it started (`api`, `auto`, `stream`).
    how: &'static str,
    /// The stream sample where the call begins.
    start_sample: u64,
    /// Samples of this call pushed per party.
    pushed: [u64; 2],
    stream: CallStream,
    feed: CoachFeed,
    asr: Option<AsrLane>,
    recorder: Option<Recorder>,
    /// Why the call could not be recorded, when it could not.
    recording_error: Option<String>,
    /// Call events for the transcript file (hold, call end).
    controls: Vec<Event>,
    transcripts: Vec<TranscriptSegment>,
    transcript_latency_ms: Vec<f64>,
    /// (party, start ms, end ms) of audio filled with silence because a device was lost.
    gaps: Vec<(Party, u64, u64)>,
    hold_since: Option<u64>,
}

impl CallSession {
    fn call_ms(&self) -> u64 {
        self.stream.frames_total() * 10
    }

    /// Pushes one party's samples through features, coach, ASR and recorder.
    fn push(&mut self, p: Party, samples: &[f32], meters: &mut MeterState) -> anyhow::Result<()> {
        let CallSession {
            stream, feed, asr, ..
        } = self;
        let lane = RefCell::new(asr.as_mut());
        stream.push_tapped(
            p,
            samples,
            &mut |o| {
                feed.on(o);
                meters.on(o);
                if let CallOutput::Frame(p, f) = o {
                    if let Some(a) = lane.borrow_mut().as_mut() {
                        a.frame(*p, f.index, f.speech);
                    }
                }
            },
            &mut |p, idx, frame| {
                if let Some(a) = lane.borrow_mut().as_mut() {
                    a.pending[p.index()].push_back((idx, *frame));
                }
            },
        )?;
        if let Some(r) = self.recorder.as_mut() {
            r.push(p, self.pushed[p.index()], samples);
        }
        self.pushed[p.index()] += samples.len() as u64;
        Ok(())
    }
}

/// Everything a finished call still needs, handed to its finishing thread.
struct EndedCall {
    id: String,
    report: CallReport,
    feed: CoachFeed,
    asr: Option<AsrLane>,
    recorder: Option<Recorder>,
    controls: Vec<Event>,
    transcripts: Vec<TranscriptSegment>,
    transcript_latency_ms: Vec<f64>,
    end_ms: u64,
    rate: u32,
    parties: usize,
    /// Wall-clock instant of the call's time 0, for latencies.
    origin: Option<Instant>,
}

/// Waits for the last transcripts, runs the coach to the end, writes report, transcript and
/// recording. Runs off the pipeline thread (the ASR queue may take seconds to drain).
fn finish_call(
    c: EndedCall,
    cfg: &LiveConfig,
    ui: &UiTx,
) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let EndedCall {
        id,
        mut report,
        mut feed,
        asr,
        recorder,
        mut controls,
        mut transcripts,
        mut transcript_latency_ms,
        end_ms,
        rate,
        parties,
        origin,
    } = c;
    let asr_report = match asr {
        Some(lane) => {
            let load_error = lane.worker.load_error();
            let (outs, stats, model) = lane.worker.finish_keep();
            if let (Some(m), Ok(mut slot)) = (model, lane.slot.lock()) {
                *slot = Some(m);
            }
            for o in outs.into_iter().filter(|o| o.is_final) {
                let latency = origin.map(|t0| latency_after(t0, o.end_ms));
                if let Some(l) = latency {
                    transcript_latency_ms.push(l);
                }
                if o.text.is_empty() {
                    continue;
                }
                let seg = to_segment(o);
                ui.send(UiEvent::Transcript {
                    segment: seg.clone(),
                    latency_ms: latency,
                });
                feed.control(Event::Transcript(seg.clone()));
                transcripts.push(seg);
            }
            let (p50, p99) = percentiles(&mut transcript_latency_ms);
            let wall_s = lane.started.elapsed().as_secs_f64();
            match load_error {
                Some(e) => AsrReport::off(e),
                None => AsrReport {
                    status: "on".into(),
                    reason: None,
                    outcome: Some(AsrOutcome {
                        model: lane.model.display().to_string(),
                        segments: transcripts.clone(),
                        stats,
                        real_time_factor: end_ms as f64 / 1000.0 / wall_s.max(1e-9),
                        wall_s,
                        decode_s: stats.decode_us as f64 / 1e6,
                        final_latency_ms_p50: p50,
                        final_latency_ms_p99: p99,
                    }),
                },
            }
        }
        None => AsrReport::off(cfg.asr_off_reason.clone()),
    };
    let asr_on = asr_report.status == "on";
    let seen = feed.seen();
    let (coach, warnings) = feed.finish(end_ms);
    for w in &warnings[seen..] {
        ui.send(UiEvent::Warning {
            warning: Box::new(w.clone()),
            latency_ms: None,
        });
    }
    let not_recorded = |report: &mut CallReport| {
        report.files = vec![FileInfo {
            path: "(live, not recorded)".into(),
            codec: "live capture, 16-bit".into(),
            sample_rate: rate,
            channels: parties,
            duration_s: end_ms as f64 / 1000.0,
        }];
    };
    // A recorder that failed (disk full, directory gone) costs the recording, not the report.
    let recorded = recorder.map(|r| {
        let dropped = r.dropped_chunks;
        drop(r.tx);
        let info = r
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("the recorder thread failed"))
            .and_then(|x| x);
        info.and_then(|info| Ok((Decoder::open(&info.path)?, info, dropped)))
    });
    let recording = match recorded {
        Some(Err(e)) => {
            ui.send(UiEvent::Note(format!(
                "call {id}: the recording failed ({e:#}); the report is still written"
            )));
            report.warnings.insert(
                0,
                InputWarning {
                    code: "recording-failed".into(),
                    party: None,
                    message: format!("the call could not be recorded: {e:#}"),
                },
            );
            not_recorded(&mut report);
            None
        }
        Some(Ok((d, info, dropped))) => {
            report.files = vec![FileInfo {
                path: info.path.display().to_string(),
                codec: d.codec().to_string(),
                sample_rate: d.rate(),
                channels: d.channels(),
                duration_s: info.frames as f64 / rate as f64,
            }];
            if info.filled > 0 || dropped > 0 {
                report.warnings.insert(0, InputWarning {
                    code: "recording-gap".into(),
                    party: None,
                    message: format!("{:.2} s of the recording were written as silence ({dropped} chunk(s) did not reach the recorder in time: a slow disk?)", info.filled as f64 / rate as f64 / parties as f64),
                });
            }
            Some(info.path)
        }
        None => {
            not_recorded(&mut report);
            None
        }
    };
    controls.sort_by_key(Event::time_ms);
    transcripts.sort_by_key(|s| (s.end_ms, s.start_ms));
    let full = FullReport {
        call: report,
        asr: asr_report,
        coach: CoachReport {
            rules: cfg.rules_name.clone(),
            transcript: asr_on || !transcripts.is_empty(),
            warnings,
            scores: coach.scores(),
            speech_rate: SpeechRates::of(&coach),
        },
    };
    let text = serde_json::to_string_pretty(&full).context("serialising the report")?;
    let path = write_kept(
        cfg,
        &format!("call-{id}.json"),
        (text + "\n").as_bytes(),
        ui,
    )?;
    let t = Transcript {
        segments: transcripts,
        events: controls,
    };
    write_kept(
        cfg,
        &format!("call-{id}.transcript.jsonl"),
        callcoach_coach::transcript::to_jsonl(&t).as_bytes(),
        ui,
    )?;
    Ok((path, recording))
}

/// Where a call's files go when `--out` cannot take them: `$CALLCOACH_FALLBACK_DIR`, else the
/// user's own state directory (`$XDG_STATE_HOME` or `~/.local/state`, `callcoach/unsaved`:
/// reports hold personal data, so not a shared temporary directory), else the temporary one.
fn fallback_dir() -> PathBuf {
    let user_state = || {
        std::env::var_os("XDG_STATE_HOME")
            .filter(|x| !x.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
    };
    std::env::var_os("CALLCOACH_FALLBACK_DIR")
        .map(PathBuf::from)
        .or_else(|| user_state().map(|d| d.join("callcoach/unsaved")))
        .unwrap_or_else(|| std::env::temp_dir().join("callcoach-unsaved"))
}

/// Writes one of a call's files in `--out`; when that fails (disk full, directory removed), in
/// the fallback directory, saying so on screen. An error only if neither can take it.
fn write_kept(cfg: &LiveConfig, name: &str, bytes: &[u8], ui: &UiTx) -> anyhow::Result<PathBuf> {
    let path = cfg.out_dir.join(name);
    let first = match std::fs::write(&path, bytes) {
        Ok(()) => return Ok(path),
        Err(e) => e,
    };
    let dir = fallback_dir();
    let kept = dir.join(name);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&kept, bytes))
        .with_context(|| {
            format!(
                "{}: cannot write ({first}), nor {}",
                path.display(),
                kept.display()
            )
        })?;
    ui.send(UiEvent::Note(format!(
        "{}: cannot write ({first}); kept in {} instead",
        path.display(),
        kept.display()
    )));
    Ok(kept)
}

/// ms since the audio at call time `t_ms` entered (call time 0 entered at `origin`).
fn latency_after(origin: Instant, t_ms: u64) -> f64 {
    (origin.elapsed().as_secs_f64() * 1000.0 - t_ms as f64).max(0.0)
}

/// p50 and p99 (nearest rank) of `v`; zeros when empty.
pub fn percentiles(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// A call id from the wall clock (UTC), e.g. `20261123-101502Z-1`.
fn call_id(seq: u32) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}Z-{seq}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

struct Lost {
    /// Stream sample (of this party) where the device went away.
    since: u64,
    wall: Instant,
}

/// The pipeline thread's state.
struct Pipeline {
    cfg: LiveConfig,
    rate: u32,
    parties: usize,
    /// Wall-clock instant of stream sample 0 (real-time sources), for latencies.
    clock: Option<Instant>,
    ui: UiTx,
    history: [History; 2],
    lost: [Option<Lost>; 2],
    /// Idle: the analyser behind meters and auto-start, with its first stream sample.
    idle: Option<(CallAnalyzer, u64, AutoStart)>,
    call: Option<CallSession>,
    meters: MeterState,
    finishers: Vec<JoinHandle<()>>,
    calls: u32,
    zeros: Vec<f32>,
    model_slot: ModelSlot,
}

impl Pipeline {
    fn total(&self, p: Party) -> u64 {
        self.history[p.index()].written
    }

    fn parties(&self) -> impl Iterator<Item = Party> {
        Party::ALL.into_iter().take(self.parties)
    }

    /// The stream sample every party has reached.
    fn common_total(&self) -> u64 {
        self.parties().map(|p| self.total(p)).min().unwrap_or(0)
    }

    fn origin_of(&self, start_sample: u64) -> Option<Instant> {
        self.clock
            .map(|c| c + Duration::from_secs_f64(start_sample as f64 / self.rate as f64))
    }

    /// One party's new samples (at most 50 ms) through history, features, coach, ASR and
    /// recorder. Never blocks (every hand-off is a `try_send` or a lock-free ring); allocates
    /// only the recorder's copy of the chunk, finished ASR jobs and the report's growing lists;
    /// adds no delay of its own beyond the analyser's 0.68 s VAD look-ahead on speech decisions.
    fn feed(&mut self, p: Party, samples: &[f32]) -> anyhow::Result<()> {
        self.history[p.index()].push(samples);
        if let Some(call) = self.call.as_mut() {
            call.push(p, samples, &mut self.meters)?;
            return Ok(());
        }
        let mut fired = None;
        if let Some((analyzer, _, auto)) = self.idle.as_mut() {
            let meters = &mut self.meters;
            analyzer.push(p, samples, &mut |o| {
                meters.on(&o);
                if let CallOutput::Frame(p, f) = o {
                    auto.frame(p, f.index, f.speech);
                }
            })?;
            if self.cfg.auto_start {
                fired = auto.fired(self.parties);
            }
        }
        if let (Some(frame), Some((_, origin, _))) = (fired, self.idle.as_ref()) {
            // Half a second before the first speech, as far as the history reaches.
            let rate = u64::from(self.rate);
            let start = origin + frame.saturating_sub(50) * rate / 100;
            self.start_call(start, "auto")?;
        }
        Ok(())
    }

    fn new_idle(&mut self) -> anyhow::Result<()> {
        let start = self.common_total();
        let mut analyzer = CallAnalyzer::new(
            CallConfig::default(),
            Some(self.rate),
            (self.parties == 2).then_some(self.rate),
        )?;
        self.meters = MeterState::new(&self.cfg.book);
        // The party that is ahead catches up from its history, so both start together.
        for p in Party::ALL.into_iter().take(self.parties) {
            let back = self.history[p.index()].since(start);
            let meters = &mut self.meters;
            analyzer.push(p, &back, &mut |o| meters.on(&o))?;
        }
        self.idle = Some((analyzer, start, AutoStart::new()));
        Ok(())
    }

    fn start_call(&mut self, from: u64, how: &'static str) -> anyhow::Result<()> {
        if self.call.is_some() {
            return Ok(());
        }
        let oldest = self
            .parties()
            .map(|p| self.history[p.index()].oldest())
            .max()
            .unwrap_or(0);
        let start = from.max(oldest).min(self.common_total());
        self.calls += 1;
        let id = call_id(self.calls);
        let stream = CallStream::new(
            CallConfig::default(),
            Some(self.rate),
            (self.parties == 2).then_some(self.rate),
            if self.parties == 2 { "stereo" } else { "mono" },
            AgentChannel::Left,
        )?;
        // A recording that cannot be started (disk full, --out gone) costs the recording, not
        // the call: coaching goes on and the report says why.
        let (recorder, recording_error) = if self.cfg.record {
            match Recorder::start(
                self.cfg.out_dir.join(format!("call-{id}.wav")),
                self.rate,
                self.parties,
            ) {
                Ok(r) => (Some(r), None),
                Err(e) => {
                    self.ui.send(UiEvent::Note(format!(
                        "call {id}: cannot record ({e:#}); coaching goes on"
                    )));
                    (None, Some(format!("{e:#}")))
                }
            }
        } else {
            (None, None)
        };
        let coach = Coach::new(self.cfg.book.clone(), self.cfg.agent_id.as_deref());
        let mut call = CallSession {
            id: id.clone(),
            how,
            start_sample: start,
            pushed: [0; 2],
            stream,
            feed: CoachFeed::new(coach, Transcript::default()),
            asr: self
                .cfg
                .model
                .as_deref()
                .map(|m| AsrLane::start(m, &self.model_slot, &self.cfg.book)),
            recorder,
            recording_error,
            controls: Vec::new(),
            transcripts: Vec::new(),
            transcript_latency_ms: Vec::new(),
            gaps: Vec::new(),
            hold_since: None,
        };
        self.idle = None;
        self.meters = MeterState::new(&self.cfg.book);
        for p in Party::ALL.into_iter().take(self.parties) {
            let back = self.history[p.index()].since(start);
            call.push(p, &back, &mut self.meters)?;
        }
        self.ui.send(UiEvent::CallStarted { id, how });
        self.call = Some(call);
        self.send_warnings();
        Ok(())
    }

    fn end_call(&mut self, hung_up: bool) -> anyhow::Result<()> {
        let Some(mut call) = self.call.take() else {
            return Ok(());
        };
        // Both parties end at the same sample (the recording is padded the same way).
        let longest = call
            .pushed
            .iter()
            .take(self.parties)
            .copied()
            .max()
            .unwrap_or(0);
        for p in Party::ALL.into_iter().take(self.parties) {
            let short = (longest - call.pushed[p.index()]) as usize;
            if short > 0 {
                let pad = vec![0.0; short];
                call.push(p, &pad, &mut self.meters)?;
            }
        }
        let CallSession {
            id,
            start_sample,
            stream,
            mut feed,
            mut asr,
            recorder,
            recording_error,
            controls,
            transcripts,
            transcript_latency_ms,
            gaps,
            ..
        } = call;
        let mut capture_warnings: Vec<InputWarning> = gaps
            .iter()
            .map(|&(party, s, e)| InputWarning {
                code: "device-lost".into(),
                party: Some(party),
                message: format!(
                    "the {} device was lost from {:.1} s to {:.1} s ({:.1} s): that audio is silence in the analysis and the recording",
                    party.name(),
                    s as f64 / 1000.0,
                    e as f64 / 1000.0,
                    (e - s) as f64 / 1000.0
                ),
            })
            .collect();
        let lane = RefCell::new(asr.as_mut());
        let mut report = stream.finish(Vec::new(), Vec::new(), &mut |o| {
            feed.on(o);
            if let CallOutput::Frame(p, f) = o {
                if let Some(a) = lane.borrow_mut().as_mut() {
                    a.frame(*p, f.index, f.speech);
                }
            }
        })?;
        // The call's length as the report (and `analyze` of the recording) gives it.
        let end_ms = (report.summary.duration_s * 1000.0).round() as u64;
        let mut controls = controls;
        if hung_up {
            let e = Event::CallEnd {
                t_ms: end_ms,
                hung_up_by: None,
            };
            controls.push(e.clone());
            feed.control(e);
        }
        if let Some(e) = recording_error {
            capture_warnings.push(InputWarning {
                code: "recording-failed".into(),
                party: None,
                message: format!("the call could not be recorded: {e}"),
            });
        }
        capture_warnings.append(&mut report.warnings);
        report.warnings = capture_warnings;
        if let Some(a) = asr.as_mut() {
            let AsrLane {
                worker, segmenters, ..
            } = a;
            for s in segmenters.iter_mut() {
                s.finish(end_ms, &mut |job| worker.submit(job));
            }
        }
        Self::send_from(&self.ui, &mut feed, self.origin_of(start_sample));
        let ended = EndedCall {
            id: id.clone(),
            report,
            feed,
            asr,
            recorder,
            controls,
            transcripts,
            transcript_latency_ms,
            end_ms,
            rate: self.rate,
            parties: self.parties,
            origin: self.origin_of(start_sample),
        };
        let cfg = self.cfg.clone();
        let ui = self.ui.clone();
        let handle = std::thread::Builder::new()
            .name("callcoach-call-end".into())
            .spawn(move || match finish_call(ended, &cfg, &ui) {
                Ok((report, recording)) => {
                    ui.send(UiEvent::CallEnded {
                        id,
                        call_ms: end_ms,
                        report,
                        recording,
                    });
                }
                Err(e) => {
                    ui.send(UiEvent::Note(format!("call {id}: {e:#}")));
                }
            })?;
        self.finishers.push(handle);
        self.new_idle()
    }

    /// The wall-clock instant of the call in progress's time 0.
    fn call_origin(&self) -> Option<Instant> {
        self.call
            .as_ref()
            .and_then(|c| self.origin_of(c.start_sample))
    }

    fn send_warnings(&mut self) {
        let origin = self.call_origin();
        if let Some(call) = self.call.as_mut() {
            Self::send_from(&self.ui, &mut call.feed, origin);
        }
    }

    fn send_from(ui: &UiTx, feed: &mut CoachFeed, origin: Option<Instant>) {
        for w in feed.take_new() {
            let latency_ms = origin.map(|t0| latency_after(t0, w.t_ms));
            ui.send(UiEvent::Warning {
                warning: Box::new(w.clone()),
                latency_ms,
            });
        }
    }

    fn control(&mut self, c: Control) -> anyhow::Result<()> {
        match c {
            Control::CallStart => {
                if self.call.is_some() {
                    // Idempotent: a call is in progress.
                    return Ok(());
                }
                let now = self.common_total();
                self.start_call(now, "api")?;
            }
            Control::CallEnd => {
                let t = self.call.as_ref().map(CallSession::call_ms).unwrap_or(0);
                self.ui.send(UiEvent::Control {
                    control: c,
                    call_ms: t,
                });
                self.end_call(true)?;
                return Ok(());
            }
            Control::HoldStart | Control::HoldEnd => {}
        }
        if let Some(call) = self.call.as_mut() {
            // Call time now: what has entered the analyser.
            let t_ms = call.call_ms();
            // Idempotent: a repeated hold start (or end) changes nothing and logs nothing.
            let e = match (c, call.hold_since) {
                (Control::HoldStart, None) => {
                    call.hold_since = Some(t_ms);
                    Some(Event::HoldStart { t_ms })
                }
                (Control::HoldEnd, Some(_)) => {
                    call.hold_since = None;
                    Some(Event::HoldEnd { t_ms })
                }
                _ => None,
            };
            let changed = e.is_some();
            if let Some(e) = e {
                call.controls.push(e.clone());
                call.feed.control(e);
            }
            if changed || c == Control::CallStart {
                self.ui.send(UiEvent::Control {
                    control: c,
                    call_ms: t_ms,
                });
            }
        }
        Ok(())
    }

    /// Final transcripts that came back: into the coach (at once: their time is past).
    fn poll_asr(&mut self) {
        let origin = self.call_origin();
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(lane) = call.asr.as_mut() else {
            return;
        };
        while let Ok(o) = lane.worker.results().try_recv() {
            if !o.is_final {
                continue;
            }
            // Every final result counts for the latency, empty ones too (the plumbing).
            let latency = origin.map(|t0| latency_after(t0, o.end_ms));
            if let Some(l) = latency {
                call.transcript_latency_ms.push(l);
            }
            if o.text.is_empty() {
                continue;
            }
            let seg = to_segment(o);
            self.meters.transcript(&seg);
            self.ui.send(UiEvent::Transcript {
                segment: seg.clone(),
                latency_ms: latency,
            });
            call.feed.control(Event::Transcript(seg.clone()));
            call.transcripts.push(seg);
        }
    }

    /// Silence for a lost party, keeping the parties aligned (and the call's clock running
    /// when every device is gone).
    fn fill_lost(&mut self) -> anyhow::Result<()> {
        for p in Party::ALL.into_iter().take(self.parties) {
            let Some(lost) = self.lost[p.index()].as_ref() else {
                continue;
            };
            let other_alive = self
                .parties()
                .filter(|q| *q != p && self.lost[q.index()].is_none())
                .map(|q| self.total(q))
                .max();
            let target = other_alive.unwrap_or_else(|| {
                lost.since + (lost.wall.elapsed().as_secs_f64() * self.rate as f64) as u64
            });
            let mut need = target.saturating_sub(self.total(p));
            while need > 0 {
                let n = need.min(self.zeros.len() as u64) as usize;
                let zeros = std::mem::take(&mut self.zeros);
                let r = self.feed(p, &zeros[..n]);
                self.zeros = zeros;
                r?;
                need -= n as u64;
            }
        }
        Ok(())
    }
}

/// The feature/coach thread: rings → features → coach → UI events. `clock` (the wall-clock
/// moment of stream sample 0) turns warnings into latencies.
pub fn spawn_pipeline(
    rate: u32,
    rings: [Option<rtrb::Consumer<f32>>; 2],
    cfg: LiveConfig,
    clock: Option<Instant>,
    ui_tx: Sender<UiEvent>,
    control: Receiver<Control>,
    source: Receiver<SourceMsg>,
) -> anyhow::Result<JoinHandle<()>> {
    std::fs::create_dir_all(&cfg.out_dir).with_context(|| {
        format!(
            "{}: cannot create the directory for call reports (--out)",
            cfg.out_dir.display()
        )
    })?;
    let parties = if rings[1].is_some() { 2 } else { 1 };
    let cap = rings
        .iter()
        .flatten()
        .map(|r| r.slots() + 1)
        .max()
        .unwrap_or(1024)
        .max((rate as usize * cfg.ring_ms as usize / 1000).max(1024));
    let handle = std::thread::Builder::new()
        .name("callcoach-pipeline".into())
        .spawn(move || {
            let ui = UiTx::new(ui_tx);
            let mut rings = rings;
            let mut run = || -> anyhow::Result<u64> {
                let history_cap = (u64::from(rate) * HISTORY_S) as usize;
                let mut pl = Pipeline {
                    cfg: cfg.clone(),
                    rate,
                    parties,
                    clock,
                    ui: ui.clone(),
                    history: [History::new(history_cap), History::new(history_cap)],
                    lost: [None, None],
                    idle: None,
                    call: None,
                    meters: MeterState::new(&cfg.book),
                    finishers: Vec::new(),
                    calls: 0,
                    zeros: vec![0.0; (rate / 100) as usize * 10],
                    model_slot: ModelSlot::default(),
                };
                if cfg.call_at_start {
                    pl.start_call(0, "stream")?;
                } else {
                    pl.new_idle()?;
                }
                let mut buf = vec![0.0f32; cap.max(1)];
                // At most 50 ms per party per turn, so the parties advance together even when
                // a ring holds seconds (a source faster than real time, a stall catching up).
                let turn = (rate as usize / 20).max(1);
                let mut source_open = true;
                loop {
                    let mut moved = false;
                    for p in Party::ALL.into_iter().take(parties) {
                        // Lockstep: a party more than two turns ahead of the other waits while
                        // more of the other can still come, unless its own ring is filling (a
                        // stalled device must not make the other drop). A lost party is padded
                        // in step; an ended one is waited for no longer.
                        let other_coming = rings[p.other().index()]
                            .as_ref()
                            .is_some_and(|r| !r.is_abandoned() || !r.is_empty());
                        let ahead = parties == 2
                            && other_coming
                            && pl.total(p) > pl.total(p.other()) + 2 * turn as u64;
                        let Some(rx) = rings[p.index()].as_mut() else {
                            continue;
                        };
                        if ahead && rx.slots() < rx.buffer().capacity() / 2 {
                            continue;
                        }
                        let n = rx.slots().min(buf.len()).min(turn);
                        if n > 0 {
                            let chunk = rx.read_chunk(n).context("ring")?;
                            let (a, b) = chunk.as_slices();
                            buf[..a.len()].copy_from_slice(a);
                            buf[a.len()..a.len() + b.len()].copy_from_slice(b);
                            chunk.commit_all();
                            pl.feed(p, &buf[..n])?;
                            moved = true;
                        }
                    }
                    loop {
                        match source.try_recv() {
                            Ok(SourceMsg::Lost { party, reason }) => {
                                if let Some(rx) = rings[party.index()].as_mut() {
                                    // What the device delivered before it went.
                                    let n = rx.slots().min(buf.len());
                                    if let Ok(chunk) = rx.read_chunk(n) {
                                        let (a, b) = chunk.as_slices();
                                        buf[..a.len()].copy_from_slice(a);
                                        buf[a.len()..a.len() + b.len()].copy_from_slice(b);
                                        chunk.commit_all();
                                        pl.feed(party, &buf[..n])?;
                                    }
                                }
                                rings[party.index()] = None;
                                pl.lost[party.index()] = Some(Lost {
                                    since: pl.total(party),
                                    wall: Instant::now(),
                                });
                                pl.meters.m.lost[party.index()] = true;
                                pl.ui.send(UiEvent::PartyLost { party, reason });
                            }
                            Ok(SourceMsg::Restored { party, ring }) => {
                                pl.fill_lost()?;
                                if let Some(lost) = pl.lost[party.index()].take() {
                                    let gap = pl.total(party) - lost.since;
                                    let gap_ms = gap * 1000 / u64::from(rate);
                                    if let Some(call) = pl.call.as_mut() {
                                        let end =
                                            call.pushed[party.index()] * 1000 / u64::from(rate);
                                        call.gaps.push((party, end.saturating_sub(gap_ms), end));
                                    }
                                    pl.ui.send(UiEvent::PartyRestored { party, gap_ms });
                                }
                                pl.meters.m.lost[party.index()] = false;
                                rings[party.index()] = Some(ring);
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => {
                                source_open = false;
                                break;
                            }
                        }
                    }
                    pl.fill_lost()?;
                    while let Ok(c) = control.try_recv() {
                        pl.control(c)?;
                    }
                    pl.poll_asr();
                    pl.send_warnings();
                    let call_ms = pl.call.as_ref().map(CallSession::call_ms);
                    let hold_ms = pl
                        .call
                        .as_ref()
                        .and_then(|c| c.hold_since.map(|h| c.call_ms().saturating_sub(h)));
                    // Events the screen had no room for go first, in order.
                    pl.ui.flush();
                    if let Some(m) = pl.meters.due(call_ms, hold_ms) {
                        pl.ui.send(UiEvent::Meters(m));
                        // An auto-started call ends when nobody has spoken for a while.
                        if pl.call.as_ref().is_some_and(|c| c.how == "auto")
                            && m.silence_ms as f64 >= cfg.auto_end_s * 1000.0
                        {
                            pl.end_call(false)?;
                        }
                    }
                    let drained = Party::ALL.into_iter().take(parties).all(|p| {
                        rings[p.index()]
                            .as_ref()
                            .is_none_or(|r| r.is_abandoned() && r.is_empty())
                    });
                    if !source_open && drained {
                        break;
                    }
                    if !moved {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                let ended = pl.end_call(false);
                // Every call's files are written before the run ends, error or not.
                for h in pl.finishers.drain(..) {
                    let _ = h.join();
                }
                ended?;
                Ok(pl.common_total() * 1000 / u64::from(rate))
            };
            // The last events (the run's end) may wait for the screen: nothing is dropped.
            let result = run();
            ui.finish();
            match result {
                Ok(stream_ms) => ui.send_waiting(UiEvent::End { stream_ms }),
                Err(e) => {
                    ui.send_waiting(UiEvent::Note(format!("error: {e:#}")));
                    ui.send_waiting(UiEvent::End { stream_ms: 0 });
                }
            }
        })?;
    Ok(handle)
}

/// Where live audio comes from.
#[derive(Debug, Clone)]
pub enum Devices {
    /// One device, agent on channel 0 (left), caller on channel 1.
    Stereo(String),
    /// Separate devices; the caller's may be absent (agent only).
    Pair {
        agent: String,
        caller: Option<String>,
    },
}

/// Opens a device: (id, rate, channels, rings for its channels, frame limit).
pub type Opener = dyn FnMut(
        &str,
        u32,
        u16,
        Vec<rtrb::Producer<f32>>,
        Option<u64>,
    ) -> anyhow::Result<crate::capture::Capture>
    + Send;

/// One device the supervisor keeps open.
struct Slot {
    id: String,
    parties: Vec<Party>,
    capture: Option<crate::capture::Capture>,
    retry_at: Instant,
    backoff: Duration,
    /// Frames delivered by earlier openings (for the `--seconds` limit).
    frames_before: u64,
    reported: (u64, u64),
    /// Overruns reported so far.
    xruns: u64,
}

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Keeps the capture devices open: a device that errors or disappears is reported lost to the
/// pipeline (which fills silence and marks the gap) and reopened with backoff (0.5 s doubling
/// to 8 s). Runs on the caller's thread via [`Supervisor::tick`].
pub struct Supervisor {
    slots: Vec<Slot>,
    rate: u32,
    ring_ms: u32,
    max_frames: Option<u64>,
    source: Option<Sender<SourceMsg>>,
    ui: Sender<UiEvent>,
    open: Box<Opener>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field(
                "devices",
                &self.slots.iter().map(|s| &s.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Frames delivered so far by the slowest device.
    pub fn frames(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| {
                s.frames_before
                    + s.capture
                        .as_ref()
                        .map_or(0, |c| c.counters.frames.load(Ordering::Relaxed))
            })
            .min()
            .unwrap_or(0)
    }

    /// Samples dropped because a ring was full, all devices.
    pub fn dropped(&self) -> u64 {
        self.slots.iter().map(|s| s.reported.0).sum()
    }

    /// Checks the devices once; call it every few tens of milliseconds.
    pub fn tick(&mut self) {
        let now = Instant::now();
        for slot in &mut self.slots {
            if let Some(c) = slot.capture.as_ref() {
                let (dropped, gap) = (
                    c.counters.dropped.load(Ordering::Relaxed),
                    c.counters.gap_frames.load(Ordering::Relaxed),
                );
                if dropped > slot.reported.0 {
                    for p in &slot.parties {
                        let _ = self.ui.try_send(UiEvent::Overflow {
                            party: *p,
                            samples: dropped - slot.reported.0,
                        });
                    }
                }
                if gap > slot.reported.1 {
                    for p in &slot.parties {
                        let _ = self.ui.try_send(UiEvent::Gap {
                            party: *p,
                            ms: (gap - slot.reported.1) as f64 * 1000.0 / self.rate as f64,
                        });
                    }
                }
                slot.reported = (dropped, gap);
                let xruns = c.counters.xruns.load(Ordering::Relaxed);
                if xruns > slot.xruns {
                    let _ = self.ui.try_send(UiEvent::Note(format!(
                        "{}: {} overrun(s) or reroute(s), recovered by the driver; any gap is filled with silence",
                        slot.id,
                        xruns - slot.xruns
                    )));
                    slot.xruns = xruns;
                }
                if c.counters.failed.load(Ordering::Relaxed) {
                    let reason = c.error().unwrap_or_else(|| "device error".into());
                    // Tell the pipeline first, then close: it must not take the closed ring
                    // for the end of the stream.
                    if let Some(src) = &self.source {
                        for p in &slot.parties {
                            let _ = src.send(SourceMsg::Lost {
                                party: *p,
                                reason: format!("{}: {reason}", slot.id),
                            });
                        }
                    }
                    slot.frames_before += c.counters.frames.load(Ordering::Relaxed);
                    slot.capture = None;
                    slot.reported = (0, 0);
                    slot.xruns = 0;
                    slot.backoff = BACKOFF_FIRST;
                    slot.retry_at = now + slot.backoff;
                }
            } else if now >= slot.retry_at {
                let rings: Vec<Ring> = slot
                    .parties
                    .iter()
                    .map(|_| party_ring(self.rate, self.ring_ms))
                    .collect();
                let (producers, consumers): (Vec<_>, Vec<_>) = rings.into_iter().unzip();
                let left = self
                    .max_frames
                    .map(|m| m.saturating_sub(slot.frames_before));
                match (self.open)(
                    &slot.id,
                    self.rate,
                    slot.parties.len() as u16,
                    producers,
                    left,
                ) {
                    Ok(c) => {
                        slot.capture = Some(c);
                        if let Some(src) = &self.source {
                            for (p, ring) in slot.parties.iter().zip(consumers) {
                                let _ = src.send(SourceMsg::Restored { party: *p, ring });
                            }
                        }
                    }
                    Err(e) => {
                        slot.backoff = (slot.backoff * 2).min(BACKOFF_MAX);
                        slot.retry_at = now + slot.backoff;
                        let _ = self.ui.try_send(UiEvent::Note(format!(
                            "{}: still unavailable ({e:#}); retrying in {:.1} s",
                            slot.id,
                            slot.backoff.as_secs_f64()
                        )));
                    }
                }
            }
        }
    }

    /// Stops capture; the pipeline then finishes the call and ends.
    pub fn stop(&mut self) {
        self.source = None;
        for s in &mut self.slots {
            s.capture = None;
        }
    }
}

/// Opens the devices (failing at once if one cannot be opened: a wrong id is a setup error)
/// and starts the pipeline. Returns the supervisor to [`Supervisor::tick`] and the UI events.
pub fn capture(
    devices: &Devices,
    rate: u32,
    max_seconds: Option<f64>,
    cfg: LiveConfig,
    control: Receiver<Control>,
    mut open: Box<Opener>,
) -> anyhow::Result<(Supervisor, Receiver<UiEvent>)> {
    let max_frames = max_seconds.map(|s| (s * rate as f64) as u64);
    let plan: Vec<(String, Vec<Party>)> = match devices {
        Devices::Stereo(id) => vec![(id.clone(), vec![Party::Agent, Party::Caller])],
        Devices::Pair {
            agent,
            caller: None,
        } => vec![(agent.clone(), vec![Party::Agent])],
        Devices::Pair {
            agent,
            caller: Some(c),
        } => vec![
            (agent.clone(), vec![Party::Agent]),
            (c.clone(), vec![Party::Caller]),
        ],
    };
    let mut consumers: [Option<rtrb::Consumer<f32>>; 2] = [None, None];
    let mut slots = Vec::new();
    for (id, parties) in plan {
        let mut producers = Vec::new();
        for p in &parties {
            let (tx, rx) = party_ring(rate, cfg.ring_ms);
            producers.push(tx);
            consumers[p.index()] = Some(rx);
        }
        let c = open(&id, rate, parties.len() as u16, producers, max_frames)?;
        slots.push(Slot {
            id,
            parties,
            capture: Some(c),
            retry_at: Instant::now(),
            backoff: BACKOFF_FIRST,
            frames_before: 0,
            reported: (0, 0),
            xruns: 0,
        });
    }
    let (ui_tx, ui_rx) = bounded::<UiEvent>(1024);
    let (src_tx, src_rx) = bounded::<SourceMsg>(16);
    spawn_pipeline(
        rate,
        consumers,
        cfg.clone(),
        Some(Instant::now()),
        ui_tx.clone(),
        control,
        src_rx,
    )?;
    Ok((
        Supervisor {
            slots,
            rate,
            ring_ms: cfg.ring_ms,
            max_frames,
            source: Some(src_tx),
            ui: ui_tx,
            open,
        },
        ui_rx,
    ))
}

/// `--ui text`: prints what the overlay shows; returns the raise latencies of audio-path
/// warnings and the transcript latencies.
pub fn text_ui(events: Receiver<UiEvent>) -> (Vec<f64>, Vec<f64>) {
    let mut latencies = Vec::new();
    let mut transcript_latencies = Vec::new();
    let mut last_meter_s = 0u64;
    for e in events {
        match e {
            UiEvent::Warning {
                warning: w,
                latency_ms,
            } => {
                let lat = latency_ms
                    .map(|l| format!(" (+{l:.0} ms)"))
                    .unwrap_or_default();
                match w.state {
                    WarningState::Raised => {
                        if let Some(l) = latency_ms {
                            latencies.push(l);
                        }
                        let shown = if w.hidden.is_some() {
                            " [not shown]"
                        } else {
                            ""
                        };
                        println!(
                            "{:>7.1} s  ▲ {:<13} {}{shown}{lat}\n            参考话术: {}",
                            w.t_ms as f64 / 1000.0,
                            w.rule,
                            w.message_zh,
                            w.line
                        );
                    }
                    WarningState::Updated => println!(
                        "{:>7.1} s  ~ {:<13} {}",
                        w.t_ms as f64 / 1000.0,
                        w.rule,
                        w.message_zh
                    ),
                    WarningState::Cleared => println!(
                        "{:>7.1} s  ▽ {:<13} cleared",
                        w.t_ms as f64 / 1000.0,
                        w.rule
                    ),
                }
            }
            UiEvent::Meters(m) => {
                // Every 10 s of call time: the meters the overlay draws continuously.
                if let Some(t) = m.call_ms {
                    if t / 10_000 != last_meter_s {
                        last_meter_s = t / 10_000;
                        let f = |x: Option<f32>, d: usize| {
                            x.map_or("–".to_string(), |v| format!("{v:.d$}"))
                        };
                        println!(
                            "{:>7.1} s  ≡ agent {} LUFS {} 字/分 ({}) · caller {} LUFS · talk {} · silence {:.1} s",
                            t as f64 / 1000.0,
                            f(m.loudness_lufs[0], 1),
                            f(m.chars_per_minute[0], 0),
                            m.rate_source[0].map_or("–", |s| s.as_str()),
                            f(m.loudness_lufs[1], 1),
                            m.agent_talk_ratio.map_or("–".into(), |r| format!("{:.0} %", r * 100.0)),
                            m.silence_ms as f64 / 1000.0
                        );
                    }
                }
            }
            UiEvent::Overflow { party, samples } => println!(
                "  ! {} ring overflow: {samples} samples dropped",
                party.name()
            ),
            UiEvent::Gap { party, ms } => {
                println!(
                    "  ! {} device skipped {ms:.0} ms (timestamps)",
                    party.name()
                )
            }
            UiEvent::CallStarted { id, how } => println!("● call {id} started ({how})"),
            UiEvent::CallEnded {
                id,
                call_ms,
                report,
                recording,
            } => {
                println!(
                    "call ended at {:.1} s: {id}\n  report: {}",
                    call_ms as f64 / 1000.0,
                    report.display()
                );
                if let Some(r) = recording {
                    println!("  recording: {}", r.display());
                }
            }
            UiEvent::Control { control, call_ms } => {
                println!("{:>7.1} s  ● {control:?}", call_ms as f64 / 1000.0)
            }
            UiEvent::PartyLost { party, reason } => {
                println!("  ✖ {} lost: {reason} (reconnecting)", party.name())
            }
            UiEvent::PartyRestored { party, gap_ms } => println!(
                "  ✔ {} back after {:.1} s",
                party.name(),
                gap_ms as f64 / 1000.0
            ),
            UiEvent::Transcript {
                segment,
                latency_ms,
            } => {
                if let Some(l) = latency_ms {
                    transcript_latencies.push(l);
                }
                println!(
                    "{:>7.1} s  “ {}: {}",
                    segment.end_ms as f64 / 1000.0,
                    match segment.party {
                        callcoach_coach::Party::Agent => "agent",
                        callcoach_coach::Party::Caller => "caller",
                    },
                    segment.text
                );
            }
            UiEvent::Note(n) => println!("  · {n}"),
            UiEvent::End { stream_ms } => {
                println!("audio ended at {:.1} s", stream_ms as f64 / 1000.0);
                let _ = std::io::Write::flush(&mut std::io::stdout());
                break;
            }
        }
        // Show it now, also when stdout is a pipe or a file.
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
    (latencies, transcript_latencies)
}
