#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! `callcoach analyze` and `callcoach models` with and without a Whisper model.
mod common;
use common::*;

/// Runs callcoach where no model can be found (empty HOME and working directory).
fn without_models(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_callcoach"))
        .args(args)
        .env("HOME", dir)
        .env_remove("XDG_DATA_HOME")
        .env_remove("CALLCOACH_MODEL")
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn without_a_model_asr_is_off_and_says_how_to_fix_it() {
    let dir = tmpdir();
    let out = without_models(&["analyze", p(&fixture("demo-call.wav"))], dir.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ASR: off") && text.contains("callcoach models fetch base-q5_1"),
        "{text}"
    );
    let path = without_models(&["models", "path"], dir.path());
    assert_eq!(path.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&path.stderr).contains("models fetch"));
}

#[test]
fn with_the_test_model_every_utterance_goes_through_whisper() {
    let dir = tmpdir();
    let json = dir.path().join("r.json");
    let model = fixture("models/for-tests-ggml-tiny.bin");
    let out = callcoach(&[
        "analyze",
        p(&fixture("demo-call.wav")),
        "--model",
        p(&model),
        "--json",
        p(&json),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ASR: on"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(v["asr"]["status"], "on");
    let stats = &v["asr"]["stats"];
    assert!(stats["transcribed"].as_u64().unwrap() >= 5, "{stats}");
    assert_eq!(
        stats["dropped_agent"].as_u64(),
        Some(0),
        "offline analysis never drops"
    );
    assert_eq!(
        v["asr"]["segments"].as_array().map(Vec::len),
        Some(0),
        "the test model has no weights: no invented text"
    );
    // A wrong file is refused with the fix.
    let o = callcoach(&[
        "analyze",
        p(&fixture("demo-call.wav")),
        "--model",
        p(&fixture("audio/paddlespeech-zh.wav")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a Whisper model"));
    // --transcript skips ASR.
    let o = callcoach(&[
        "analyze",
        p(&fixture("demo-call.wav")),
        "--model",
        p(&model),
        "--transcript",
        p(&fixture("demo-call.transcript.jsonl")),
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("ASR: skipped"));
}

#[test]
fn models_list_and_verify() {
    let o = callcoach(&["models", "list"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for name in [
        "tiny",
        "base-q5_1",
        "small-q8_0",
        "large-v3-turbo",
        "large-v3-turbo-q5_0",
    ] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name}: {text}");
    }
    let dir = tmpdir();
    let fake = dir.path().join("ggml-base-q5_1.bin");
    std::fs::copy(fixture("models/for-tests-ggml-tiny.bin"), &fake).unwrap();
    let o = callcoach(&["models", "verify", p(&fake)]);
    assert_eq!(o.status.code(), Some(2));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("sha1") && text.contains("callcoach models fetch base-q5_1"),
        "{text}"
    );
}
