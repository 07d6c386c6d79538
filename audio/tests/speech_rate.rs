#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Speech rate in characters per minute without a model, against transcripts.
//!
//! Reference: characters of the transcript ÷ voiced span (speech time without leading/trailing
//! silence and without pauses longer than 0.3 s). The voiced span is the report's
//! `utterance_time_s`, so the rate error equals the syllable-count error, checked here.
mod common;
use common::*;

const LABELLED: [(&str, u64); 4] = [
    ("paddlespeech-zh.wav", 20),
    ("aishell-BAC009S0724W0121.wav", 12),
    ("funasr-asr_example.wav", 18),
    ("funasr-paraformer_example_1.wav", 60),
];

fn check(path: &std::path::Path, chars: u64, tolerance: f64, label: &str) -> f64 {
    let r = analyze(path);
    let a = &r.agent;
    let cpm = a.chars_per_minute.expect("rate");
    let reference = chars as f64 * 60.0 / a.utterance_time_s;
    // Equal to syllables / chars - 1; the 1e-9 absorbs float rounding at an exact bound.
    let err = cpm / reference - 1.0;
    eprintln!(
        "{label}: {} syllables for {chars} chars, {cpm:.0} vs {reference:.0} chars/min ({:+.1} %)",
        a.syllables,
        err * 100.0
    );
    assert!(
        err.abs() <= tolerance + 1e-9,
        "{label}: {:+.1} % off (limit ±{:.0} %)",
        err * 100.0,
        tolerance * 100.0
    );
    cpm
}

#[test]
fn real_recordings_at_16k_and_8k_telephone() {
    let dir = tmpdir();
    for (name, chars) in LABELLED {
        check(&audio(name), chars, 0.15, name);
        let tel = dir.path().join(format!("tel-{name}"));
        tool(
            "sox",
            &[
                p(&audio(name)),
                "-r",
                "8000",
                "-e",
                "mu-law",
                p(&tel),
                "sinc",
                "300-3400",
            ],
        );
        check(&tel, chars, 0.15, &format!("{name} 8 kHz µ-law"));
    }
}

#[test]
fn real_recordings_slowed_down() {
    let dir = tmpdir();
    for (name, chars) in LABELLED {
        let slow = dir.path().join(format!("slow-{name}"));
        tool("sox", &[p(&audio(name)), p(&slow), "tempo", "0.8"]);
        check(&slow, chars, 0.15, &format!("{name} tempo 0.8"));
    }
}

/// Fast connected speech (×1.25, 6–7 syllables/s) is where envelope peaks merge: the
/// hardest case; the bound is met with little margin (see README).
#[test]
fn real_recordings_sped_up() {
    let dir = tmpdir();
    for (name, chars) in LABELLED {
        let fast = dir.path().join(format!("fast-{name}"));
        tool("sox", &[p(&audio(name)), p(&fast), "tempo", "1.25"]);
        check(&fast, chars, 0.15, &format!("{name} tempo 1.25"));
    }
}

#[test]
fn synthesized_mandarin_at_three_rates_within_10_percent_and_ordered() {
    let dir = tmpdir();
    let mut rates = Vec::new();
    for speed in [90, 140, 200] {
        let path = dir.path().join(format!("espeak{speed}.wav"));
        speak(PINYIN_40, speed, &path);
        rates.push(check(
            &path,
            PINYIN_40_SYLLABLES,
            0.10,
            &format!("espeak -s {speed}"),
        ));
    }
    assert!(
        rates[0] < rates[1] && rates[1] < rates[2],
        "rates must order: {rates:?}"
    );
    // espeak -s 90 is about the 120 chars/min target.
    assert!(
        (100.0..150.0).contains(&rates[0]),
        "slow rate {} chars/min",
        rates[0]
    );
}

#[test]
fn rate_series_is_reported_over_a_sliding_window() {
    let r = analyze(&audio("funasr-vad_example_70s.wav"));
    let series = r.series.agent.expect("series");
    let values: Vec<f32> = series.chars_per_minute.iter().flatten().copied().collect();
    assert!(values.len() > 400, "rate available for most of the call");
    assert!(values.iter().all(|v| (60.0..500.0).contains(v)));
}
