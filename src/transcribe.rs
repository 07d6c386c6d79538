//! Wiring: the feature path's 16 kHz frames and speech flags into the ASR worker, for a
//! recorded call. (Live mode will feed the same segmenters from capture.)

use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use callcoach_asr::stream::{Segmenter, Speaker, StreamConfig};
use callcoach_asr::transcriber::StatsSnapshot;
use callcoach_asr::{AsrConfig, Transcriber, Worker};
use callcoach_audio::analyze::{analyze_call_heard, CallInput, CallReport};
use callcoach_audio::call::{CallConfig, CallOutput};
use callcoach_coach::TranscriptSegment;
use serde::Serialize;

/// What the ASR pass produced.
#[derive(Debug, Clone, Serialize)]
pub struct AsrOutcome {
    pub model: String,
    pub segments: Vec<TranscriptSegment>,
    pub stats: StatsSnapshot,
    /// Audio seconds per second of processing for the whole pass.
    pub real_time_factor: f64,
    /// Wall time of the pass, and the part of it spent inside whisper.cpp, seconds.
    pub wall_s: f64,
    pub decode_s: f64,
    /// Final results: time from the utterance's job being queued to its text (offline: includes
    /// waiting behind earlier jobs), ms, p50 and p99.
    pub final_latency_ms_p50: f64,
    pub final_latency_ms_p99: f64,
}

/// Transcribes both parties of a recorded call with the model at `model` (the report of the
/// same pass is dropped; `analyze` uses [`analyze_with_asr`]).
pub fn transcribe_call(
    input: &CallInput,
    model: &Path,
    cfg: AsrConfig,
) -> anyhow::Result<AsrOutcome> {
    Ok(analyze_with_asr(input, &CallConfig::default(), model, cfg, &mut |_| {})?.1)
}

/// One pass over a recorded call: the audio is read and analysed once; each party's 16 kHz
/// frames are cut into utterance jobs (final jobs only, speech merged across short pauses:
/// [`StreamConfig::offline`]) as the feature path's speech flags come out, and Whisper works on
/// them on its own thread meanwhile. `observer` gets every frame and event of the feature path
/// (the coach's input), the report is the same as `analyze_call`'s.
pub fn analyze_with_asr(
    input: &CallInput,
    call_cfg: &CallConfig,
    model: &Path,
    cfg: AsrConfig,
    observer: &mut dyn FnMut(&CallOutput),
) -> anyhow::Result<(CallReport, AsrOutcome)> {
    let backend = callcoach_asr::load_backend(model)?;
    let (report, outcome, _) = analyze_with_model(input, call_cfg, backend, model, cfg, observer)?;
    Ok((report, outcome))
}

/// A loaded model handed back after use (none if the worker lost it).
pub type LentModel = Option<Box<dyn Transcriber>>;

/// [`analyze_with_asr`] with a model already loaded, handed back at the end (a model is loaded
/// once for many recordings).
pub fn analyze_with_model(
    input: &CallInput,
    call_cfg: &CallConfig,
    backend: Box<dyn Transcriber>,
    model: &Path,
    cfg: AsrConfig,
    observer: &mut dyn FnMut(&CallOutput),
) -> anyhow::Result<(CallReport, AsrOutcome, LentModel)> {
    let worker = Worker::spawn(backend, cfg, 8);
    let started = Instant::now();
    let segmenters = RefCell::new([
        Segmenter::new(StreamConfig::offline(), Speaker::Agent),
        Segmenter::new(StreamConfig::offline(), Speaker::Caller),
    ]);
    // Each frame's audio comes with its confirmed speech flag, from the same single pass.
    let report = analyze_call_heard(input, call_cfg, observer, &mut |p, f, frame| {
        segmenters.borrow_mut()[p.index()].push(f.index * 10, frame, f.speech, &mut |job| {
            worker.submit_wait(job)
        });
    })?;
    let end_ms = (report.summary.duration_s * 1000.0).round() as u64;
    for s in segmenters.borrow_mut().iter_mut() {
        s.finish(end_ms, &mut |job| worker.submit_wait(job));
    }
    let (outs, stats, backend) = worker.finish_keep();
    let mut lat: Vec<f64> = outs
        .iter()
        .filter(|o| o.is_final)
        .map(|o| o.latency_ms)
        .collect();
    let (p50, p99) = crate::stats::percentiles(&mut lat);
    let wall_s = started.elapsed().as_secs_f64();
    let mut segments: Vec<TranscriptSegment> = outs
        .into_iter()
        .filter(|o| o.is_final && !o.text.is_empty())
        .map(to_segment)
        .collect();
    segments.sort_by_key(|s| (s.end_ms, s.start_ms));
    let outcome = AsrOutcome {
        model: model.display().to_string(),
        segments,
        stats,
        real_time_factor: report.summary.duration_s / wall_s.max(1e-9),
        wall_s,
        decode_s: stats.decode_us as f64 / 1e6,
        final_latency_ms_p50: p50,
        final_latency_ms_p99: p99,
    };
    Ok((report, outcome, backend))
}

/// Whisper's initial prompt (`{company}` from the rule book).
pub const DEFAULT_PROMPT: &str = "以下是{company}客服电话的普通话录音，使用简体中文。";

/// Decoding settings biased toward what the rule book listens for: Whisper's initial prompt
/// names the company, so its name comes out as written rather than as a near-homophone. The
/// prompt carries no phrase a rule listens for (a greeting in the prompt leaked into the
/// output of unclear audio in our measurements, which would excuse a missing greeting), and
/// output that repeats the prompt's own wording is dropped by the guard.
/// `CALLCOACH_ASR_PROMPT` replaces the prompt (`{company}` is filled in; empty: Whisper's own
/// default), for measuring alternatives.
pub fn asr_config_for(book: &callcoach_coach::RuleBook) -> AsrConfig {
    let mut cfg = AsrConfig::default();
    let template =
        std::env::var("CALLCOACH_ASR_PROMPT").unwrap_or_else(|_| DEFAULT_PROMPT.to_string());
    cfg.initial_prompt = template.replace("{company}", &book.settings.company);
    cfg.guard
        .blacklist
        .extend(["普通话录音", "客服电话录音", "使用简体中文"].map(String::from));
    cfg
}

/// A final ASR result as the coach's transcript segment.
pub fn to_segment(o: callcoach_asr::transcriber::TranscriptOut) -> TranscriptSegment {
    TranscriptSegment {
        party: match o.speaker {
            Speaker::Agent => callcoach_coach::Party::Agent,
            Speaker::Caller => callcoach_coach::Party::Caller,
        },
        start_ms: o.start_ms,
        end_ms: o.end_ms,
        text: o.text,
    }
}
