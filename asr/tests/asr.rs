#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! The ASR plumbing with real files: the whisper.cpp test model (real vocabulary, no weights:
//! loads and decodes to no segments) on real recordings cut into utterances by the real VAD.
//! Tests that need real weights use Whisper base as `.ci/fetch-models` imports it (or
//! CALLCOACH_TEST_MODEL) and fail, saying how to get it, when it is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use callcoach_asr::stream::{Job, Segmenter, Speaker, StreamConfig};
use callcoach_asr::transcriber::RawSegment;
use callcoach_asr::{AsrConfig, AsrError, Transcriber, Worker};
use callcoach_audio::{FeatureConfig, PartyAnalyzer, PartyOutput, FRAME_LEN};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(p)
}

/// Utterance jobs of a 16 kHz recording, cut by the audio crate's VAD (speech flag).
fn jobs_of(name: &str, speaker: Speaker) -> Vec<Job> {
    let mut r = hound::WavReader::open(fixture(&format!("audio/{name}"))).unwrap();
    let samples: Vec<f32> = r
        .samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect();
    let frames: Vec<[f32; FRAME_LEN]> = samples
        .chunks_exact(FRAME_LEN)
        .map(|c| c.try_into().unwrap())
        .collect();
    let mut a = PartyAnalyzer::new(FeatureConfig::default()).unwrap();
    let mut speech = Vec::new();
    for f in &frames {
        a.push_frame(f, &mut |o| {
            if let PartyOutput::Frame(x) = o {
                speech.push(x.speech)
            }
        });
    }
    a.finish(&mut |o| {
        if let PartyOutput::Frame(x) = o {
            speech.push(x.speech)
        }
    });
    let mut cfg = StreamConfig::default();
    cfg.partials = true;
    let mut seg = Segmenter::new(cfg, speaker);
    let mut jobs = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        seg.push(i as u64 * 10, f, speech[i], &mut |j| jobs.push(j));
    }
    seg.finish(frames.len() as u64 * 10, &mut |j| jobs.push(j));
    jobs
}

#[test]
fn test_model_loads_and_decodes_real_speech_to_nothing() {
    let mut t = callcoach_asr::load_backend(&fixture("models/for-tests-ggml-tiny.bin")).unwrap();
    let jobs = jobs_of("funasr-asr_example.wav", Speaker::Agent);
    assert!(!jobs.is_empty());
    let segs = t.transcribe(&jobs[0].audio, &AsrConfig::default()).unwrap();
    assert!(segs.is_empty(), "the test model has no weights: {segs:?}");
}

#[test]
fn missing_and_wrong_model_files_say_what_to_do() {
    let e = callcoach_asr::load_backend(Path::new("/nonexistent/ggml-base.bin"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/ggml-base.bin"), "{e}");
    let e = callcoach_asr::load_backend(&fixture("audio/funasr-asr_example.wav"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a Whisper model") && e.contains("models fetch"),
        "{e}"
    );
}

#[test]
fn the_vad_cuts_the_70_s_recording_into_its_utterances() {
    let jobs = jobs_of("funasr-vad_example_70s.wav", Speaker::Caller);
    let finals: Vec<&Job> = jobs.iter().filter(|j| j.is_final).collect();
    // 12 reference segments with 11 pauses; the VAD also splits at shorter pauses inside them
    // (shorter utterances decode faster), and cuts anything longer than 15 s.
    assert!(
        (12..=30).contains(&finals.len()),
        "{} utterances",
        finals.len()
    );
    assert!(finals.iter().all(|j| j.end_ms - j.start_ms <= 15_300));
    assert!(
        jobs.iter().filter(|j| !j.is_final).count() > 30,
        "partials about every second"
    );
}

#[test]
fn the_worker_transcribes_every_job_on_its_own_thread() {
    let t = callcoach_asr::load_backend(&fixture("models/for-tests-ggml-tiny.bin")).unwrap();
    let w = Worker::spawn(t, AsrConfig::default(), 4);
    let jobs = jobs_of("paddlespeech-zh.wav", Speaker::Agent);
    let finals = jobs.iter().filter(|j| j.is_final).count();
    for j in jobs.clone() {
        w.submit_wait(j);
    }
    let (out, stats) = w.finish();
    assert_eq!(stats.submitted as usize, jobs.len());
    assert_eq!(
        (stats.dropped_agent, stats.dropped_caller, stats.errors),
        (0, 0, 0)
    );
    assert_eq!(stats.transcribed + stats.gated, jobs.len() as u64);
    assert_eq!(
        out.iter().filter(|o| o.is_final).count(),
        finals,
        "one final per utterance"
    );
    assert!(
        out.iter().all(|o| o.text.is_empty()),
        "no weights, no words: nothing is invented"
    );
}

/// A deliberately slow transcriber, to overload the queue (a test double, not the backend).
#[derive(Debug)]
struct Slow;
impl Transcriber for Slow {
    fn transcribe(&mut self, _: &[f32], _: &AsrConfig) -> Result<Vec<RawSegment>, AsrError> {
        std::thread::sleep(Duration::from_millis(40));
        Ok(vec![RawSegment {
            start_ms: 0,
            end_ms: 1000,
            text: "好的".into(),
            no_speech_prob: 0.0,
        }])
    }
}

#[test]
fn when_behind_caller_audio_is_dropped_first_and_counted() {
    let w = Worker::spawn(Box::new(Slow), AsrConfig::default(), 2);
    let job = |speaker, k: u64| Job {
        speaker,
        utterance: k,
        start_ms: k * 1000,
        end_ms: k * 1000 + 900,
        audio: vec![0.1; 16_000],
        is_final: true,
        voiced_ratio: 1.0,
        level_dbfs: -20.0,
    };
    let start = std::time::Instant::now();
    for k in 0..10 {
        w.submit(job(Speaker::Caller, k));
        w.submit(job(Speaker::Agent, k));
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "submit never waits on the worker"
    );
    let (out, stats) = w.finish();
    assert!(stats.dropped_caller >= 3, "{stats:?}");
    assert!(stats.dropped_caller > stats.dropped_agent, "{stats:?}");
    assert_eq!(stats.submitted, 20);
    assert_eq!(
        out.len() as u64 + stats.dropped_agent + stats.dropped_caller,
        20,
        "every job is transcribed or counted as dropped: {stats:?}"
    );
}

#[test]
fn real_weights_transcribe_mandarin() {
    let path = std::env::var_os("CALLCOACH_TEST_MODEL")
        .map(std::path::PathBuf::from)
        .or_else(|| callcoach_asr::models::resolve(Some("base-ct2")).ok())
        .unwrap_or_else(|| {
            panic!("this test needs real Whisper base weights: run `bash .ci/fetch-models` (imports faster-whisper-base from PyPI with `callcoach models import`) or set CALLCOACH_TEST_MODEL to a ggml Whisper model")
        });
    let mut t = callcoach_asr::load_backend(Path::new(&path)).unwrap();
    let jobs = jobs_of("aishell-BAC009S0724W0121.wav", Speaker::Agent);
    let j = jobs.iter().find(|j| j.is_final).unwrap();
    let text: String = t
        .transcribe(&j.audio, &AsrConfig::default())
        .unwrap()
        .into_iter()
        .map(|s| s.text)
        .collect();
    let text = callcoach_asr::guard::simplify(&text);
    assert!(text.contains("广州") || text.contains("房地产"), "{text}");
}
