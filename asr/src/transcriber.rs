//! The transcriber interface, its configuration, and the worker thread that runs it.
//!
//! Whisper runs on its own thread, fed by bounded channels (one per party). `submit` never
//! blocks: when the queue is full, the oldest caller job is dropped before any agent job, and
//! every drop is counted. Offline analysis uses `submit_wait`, which waits instead of dropping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{
    bounded, never, select, unbounded, Receiver, Sender, TryRecvError, TrySendError,
};
use serde::{Deserialize, Serialize};

use crate::guard::{audio_gate, check_segment, collapse_repeats, GuardConfig};
use crate::stream::{Agreement, Job, Speaker};

/// One decoded segment, times relative to the job's audio.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSegment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub no_speech_prob: f32,
}

/// ASR failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsrError {
    #[error(
        "{path}: cannot load the Whisper model: {detail}; check it with `callcoach models verify`"
    )]
    Load { path: String, detail: String },
    #[error("transcription failed: {0}")]
    Decode(String),
    #[error("this build has no Whisper backend (built without the `whisper` feature); ASR is off. Rebuild with `cargo build --release --features whisper`")]
    NoBackend,
    #[error(transparent)]
    Model(#[from] crate::models::ModelError),
}

/// Something that turns 16 kHz mono audio into text segments.
pub trait Transcriber: Send + std::fmt::Debug {
    /// Transcribes one utterance. Blocks for as long as decoding takes.
    fn transcribe(&mut self, audio: &[f32], cfg: &AsrConfig) -> Result<Vec<RawSegment>, AsrError>;
}

/// Decoding settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AsrConfig {
    /// Forced language (auto-detection is unreliable on short telephone speech).
    pub language: String,
    /// Biases the decoder to Simplified Chinese with punctuation.
    pub initial_prompt: String,
    pub threads: usize,
    /// Encoder context: `None` scales it to the utterance (short segments decode faster);
    /// `Some(0)` uses the full 30 s window.
    pub audio_ctx: Option<i32>,
    /// 1: greedy decoding; more: beam search with this many beams.
    pub beam_size: usize,
    /// whisper.cpp's temperature fallback (re-decode with sampling when the output looks
    /// bad). Off: sampling draws from a random generator that lives in the decoding state, so
    /// the same audio would come out differently depending on what was decoded before it.
    pub temperature_fallback: bool,
    /// Run Whisper at the lowest scheduling priority (nice 19; whisper.cpp's compute threads
    /// inherit it), so it can use every core and still never delay the audio path (live).
    pub background: bool,
    pub guard: GuardConfig,
}

impl Default for AsrConfig {
    fn default() -> Self {
        Self {
            language: "zh".into(),
            initial_prompt: "以下是普通话的客服电话录音，使用简体中文。".into(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            audio_ctx: None,
            beam_size: 1,
            temperature_fallback: false,
            background: false,
            guard: GuardConfig::default(),
        }
    }
}

impl AsrConfig {
    /// Encoder frames for `samples` of audio: Whisper's 1500 frames cover 30 s; a little
    /// margin keeps the last word.
    pub fn audio_ctx_for(&self, samples: usize) -> i32 {
        match self.audio_ctx {
            Some(n) => n,
            None => {
                let secs = samples as f64 / 16_000.0;
                ((secs / 30.0 * 1500.0).ceil() as i32 + 128).min(1500)
            }
        }
    }
}

/// Text that came out of the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptOut {
    pub speaker: Speaker,
    pub utterance: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Final: the whole utterance. Partial: the newly committed (agreed) text.
    pub text: String,
    pub is_final: bool,
    /// Speech end (job submitted) to text out, wall-clock ms.
    pub latency_ms: f64,
}

/// Counters of the worker.
#[derive(Debug, Default)]
pub struct Stats {
    pub submitted: AtomicU64,
    pub dropped_agent: AtomicU64,
    pub dropped_caller: AtomicU64,
    pub gated: AtomicU64,
    pub rejected_segments: AtomicU64,
    pub transcribed: AtomicU64,
    pub errors: AtomicU64,
    /// Time spent inside the transcriber (whisper.cpp), microseconds.
    pub decode_us: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StatsSnapshot {
    pub submitted: u64,
    pub dropped_agent: u64,
    pub dropped_caller: u64,
    pub gated: u64,
    pub rejected_segments: u64,
    pub transcribed: u64,
    pub errors: u64,
    pub decode_us: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            submitted: g(&self.submitted),
            dropped_agent: g(&self.dropped_agent),
            dropped_caller: g(&self.dropped_caller),
            gated: g(&self.gated),
            rejected_segments: g(&self.rejected_segments),
            transcribed: g(&self.transcribed),
            errors: g(&self.errors),
            decode_us: g(&self.decode_us),
        }
    }
}

type Queued = (Job, Instant);

/// The ASR worker thread.
#[derive(Debug)]
pub struct Worker {
    agent: (Sender<Queued>, Receiver<Queued>),
    caller: (Sender<Queued>, Receiver<Queued>),
    results: Receiver<TranscriptOut>,
    stats: Arc<Stats>,
    /// The thread hands the loaded model back when it ends, so the next call reuses it.
    handle: Option<JoinHandle<Option<Box<dyn Transcriber>>>>,
    load_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Worker {
    /// Starts the worker thread with queues of `capacity` jobs per party.
    pub fn spawn(transcriber: Box<dyn Transcriber>, cfg: AsrConfig, capacity: usize) -> Self {
        Self::spawn_loading(move || Ok(transcriber), cfg, capacity)
    }

    /// [`Self::spawn`], loading the model on the worker thread itself, so the caller (the live
    /// pipeline at a call's start) never waits for it; jobs queue meanwhile. If loading fails,
    /// every job is counted as an error and the error is kept for [`Self::load_error`].
    pub fn spawn_loading(
        load: impl FnOnce() -> Result<Box<dyn Transcriber>, AsrError> + Send + 'static,
        cfg: AsrConfig,
        capacity: usize,
    ) -> Self {
        let agent = bounded::<Queued>(capacity.max(1));
        let caller = bounded::<Queued>(capacity.max(1));
        let (out_tx, results) = unbounded();
        let stats = Arc::new(Stats::default());
        let (arx, crx, st) = (agent.1.clone(), caller.1.clone(), stats.clone());
        let load_error = Arc::new(std::sync::Mutex::new(None));
        let load_error_out = load_error.clone();
        let handle = std::thread::Builder::new()
            .name("callcoach-asr".into())
            .spawn(move || {
                if cfg.background {
                    // Best effort: without it Whisper competes with the audio path as equals.
                    let _ = thread_priority::set_current_thread_priority(
                        thread_priority::ThreadPriority::Min,
                    );
                }
                let mut transcriber = match load() {
                    Ok(t) => t,
                    Err(e) => {
                        if let Ok(mut slot) = load_error.lock() {
                            *slot = Some(e.to_string());
                        }
                        for _ in arx.iter().chain(crx.iter()) {
                            st.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        return None;
                    }
                };
                let mut agreements: std::collections::HashMap<(Speaker, u64), Agreement> =
                    std::collections::HashMap::new();
                let (mut agent_done, mut caller_done) = (false, false);
                let mut handle = |queued: Queued| {
                    let (job, at) = queued;
                    match run_job(transcriber.as_mut(), &cfg, &st, &mut agreements, job, at) {
                        Some(out) => out_tx.send(out).is_ok(),
                        None => true,
                    }
                };
                loop {
                    // Agent audio first: the coach's text rules are mostly about the agent.
                    match arx.try_recv() {
                        Ok(q) => {
                            if !handle(q) {
                                break;
                            }
                            continue;
                        }
                        Err(TryRecvError::Disconnected) => agent_done = true,
                        Err(TryRecvError::Empty) => {}
                    }
                    match crx.try_recv() {
                        Ok(q) => {
                            if !handle(q) {
                                break;
                            }
                            continue;
                        }
                        Err(TryRecvError::Disconnected) => caller_done = true,
                        Err(TryRecvError::Empty) => {}
                    }
                    if agent_done && caller_done {
                        break;
                    }
                    // Sleep until either queue has a job (a closed queue is never waited on).
                    let a = if agent_done { never() } else { arx.clone() };
                    let c = if caller_done { never() } else { crx.clone() };
                    select! {
                        recv(a) -> q => if let Ok(q) = q { if !handle(q) { break; } },
                        recv(c) -> q => if let Ok(q) = q { if !handle(q) { break; } },
                    }
                }
                Some(transcriber)
            })
            .ok();
        Self {
            agent,
            caller,
            results,
            stats,
            handle,
            load_error: load_error_out,
        }
    }

    /// Why the model did not load (with [`Self::spawn_loading`]), once the worker knows.
    pub fn load_error(&self) -> Option<String> {
        self.load_error.lock().ok().and_then(|e| e.clone())
    }

    /// Queues a job without ever blocking. When the party's queue is full its oldest job is
    /// dropped and counted. The worker serves agent jobs first, so under overload the caller
    /// queue fills and drops first; agent audio is dropped only when agent jobs alone outrun it.
    pub fn submit(&self, job: Job) {
        self.stats.submitted.fetch_add(1, Ordering::Relaxed);
        let (tx, rx, dropped) = match job.speaker {
            Speaker::Agent => (&self.agent.0, &self.agent.1, &self.stats.dropped_agent),
            Speaker::Caller => (&self.caller.0, &self.caller.1, &self.stats.dropped_caller),
        };
        let mut item = (job, Instant::now());
        loop {
            match tx.try_send(item) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(back)) => {
                    item = back;
                    if rx.try_recv().is_ok() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Queues a job, waiting for room (offline analysis: nothing is dropped).
    pub fn submit_wait(&self, job: Job) {
        self.stats.submitted.fetch_add(1, Ordering::Relaxed);
        let tx = match job.speaker {
            Speaker::Agent => &self.agent.0,
            Speaker::Caller => &self.caller.0,
        };
        let _ = tx.send((job, Instant::now()));
    }

    /// Results so far (non-blocking).
    pub fn results(&self) -> &Receiver<TranscriptOut> {
        &self.results
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Closes the queues, waits for the worker to finish what is queued, returns the rest of
    /// the results and the counters.
    pub fn finish(self) -> (Vec<TranscriptOut>, StatsSnapshot) {
        let (outs, stats, _) = self.finish_keep();
        (outs, stats)
    }

    /// [`Self::finish`], also handing back the loaded model (none if it failed to load), so a
    /// live session loads it once and lends it to each call's worker.
    pub fn finish_keep(
        mut self,
    ) -> (
        Vec<TranscriptOut>,
        StatsSnapshot,
        Option<Box<dyn Transcriber>>,
    ) {
        let Worker {
            agent,
            caller,
            results,
            stats,
            handle,
            ..
        } = &mut self;
        drop(std::mem::replace(&mut agent.0, bounded(1).0));
        drop(std::mem::replace(&mut caller.0, bounded(1).0));
        // The worker's own receivers stay alive until it exits; replacing ours lets the
        // channels disconnect once drained.
        let _ = std::mem::replace(&mut agent.1, bounded(1).1);
        let _ = std::mem::replace(&mut caller.1, bounded(1).1);
        let model = handle.take().and_then(|h| h.join().ok().flatten());
        (results.try_iter().collect(), stats.snapshot(), model)
    }
}

fn run_job(
    t: &mut dyn Transcriber,
    cfg: &AsrConfig,
    st: &Stats,
    agreements: &mut std::collections::HashMap<(Speaker, u64), Agreement>,
    job: Job,
    queued: Instant,
) -> Option<TranscriptOut> {
    if audio_gate(&cfg.guard, job.voiced_ratio, job.level_dbfs).is_err() {
        st.gated.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    let decode_start = Instant::now();
    let decoded = t.transcribe(&job.audio, cfg);
    st.decode_us
        .fetch_add(decode_start.elapsed().as_micros() as u64, Ordering::Relaxed);
    let segments = match decoded {
        Ok(s) => s,
        Err(_) => {
            st.errors.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    st.transcribed.fetch_add(1, Ordering::Relaxed);
    // Cleaned text, a sentence decoded twice in a row kept once. One text per job: the rules
    // match phrases and the greeting over the whole utterance, whatever Whisper's own
    // segmentation inside it.
    let mut previous = String::new();
    let mut text = String::new();
    for s in &segments {
        match check_segment(&cfg.guard, &s.text, s.no_speech_prob) {
            Ok(clean) => text.push_str(&collapse_repeats(&clean, &mut previous)),
            Err(_) => {
                st.rejected_segments.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let key = (job.speaker, job.utterance);
    let text = if job.is_final {
        agreements.remove(&key);
        text
    } else {
        let new = agreements.entry(key).or_default().partial(&text);
        if new.is_empty() {
            return None;
        }
        new
    };
    // A final is always answered, empty or not (latency of the plumbing, bookkeeping).
    Some(TranscriptOut {
        speaker: job.speaker,
        utterance: job.utterance,
        start_ms: job.start_ms,
        end_ms: job.end_ms,
        text,
        is_final: job.is_final,
        latency_ms: queued.elapsed().as_secs_f64() * 1000.0,
    })
}
