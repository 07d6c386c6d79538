#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! `callcoach live --input FILE`: a recording replayed through the live pipeline (source →
//! rings → features/coach thread → screen) raises the same warnings as `analyze`.
mod common;
use common::*;

#[test]
fn replay_raises_what_analyze_raises() {
    let dir = tmpdir();
    let json = dir.path().join("r.json");
    let a = callcoach(&[
        "analyze",
        p(&fixture("demo-call.wav")),
        "--json",
        p(&json),
        "--no-asr",
    ]);
    assert!(a.status.success());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let want: Vec<(String, f64)> = v["coach"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["state"] == "raised")
        .map(|w| {
            (
                w["rule"].as_str().unwrap().to_string(),
                w["t_ms"].as_f64().unwrap() / 1000.0,
            )
        })
        .collect();
    assert!(!want.is_empty());
    let out = callcoach(&["live", "--input", p(&fixture("demo-call.wav"))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for (rule, t) in &want {
        let line = format!("{t:>7.1} s  ▲ {rule:<13}");
        assert!(text.contains(&line), "live output lacks `{line}`:\n{text}");
    }
    assert!(text.contains("call ended at 38.0 s"), "{text}");
    assert!(
        !text.contains("overflow"),
        "a file replayed fast waits for the pipeline: {text}"
    );
}

#[test]
fn realtime_replay_is_paced_and_reports_latency() {
    let start = std::time::Instant::now();
    let out = callcoach(&[
        "live",
        "--input",
        p(&audio("paddlespeech-zh.wav")),
        "--realtime",
    ]);
    assert!(out.status.success());
    // Paced: a 5 s recording takes at least about 5 s (a lower bound, not a speed check).
    assert!(start.elapsed().as_secs_f64() >= 4.5);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("call ended at 5.0 s"), "{text}");
    let bad = callcoach(&[
        "live",
        "--input",
        p(&audio("paddlespeech-zh.wav")),
        "--ui",
        "overlay",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}
