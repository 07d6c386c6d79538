#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Voice activity on a real recording against its reference segments
//! (tests/fixtures/audio/SOURCES.md: FSMN-VAD reference output for funasr-vad_example_70s.wav).
mod common;
use common::*;

const REFERENCE_MS: [(u64, u64); 12] = [
    (70, 2340),
    (2620, 6200),
    (6480, 23670),
    (23950, 26250),
    (26780, 28990),
    (29950, 31430),
    (31750, 37600),
    (38210, 46900),
    (47310, 49630),
    (49910, 56460),
    (56740, 59540),
    (59820, 70450),
];

#[test]
fn finds_every_reference_pause_and_95_percent_of_speech() {
    let r = analyze(&audio("funasr-vad_example_70s.wav"));
    let segs = &r.agent.speech_segments;
    let speech_at = |ms: u64| {
        let t = ms as f64 / 1000.0;
        segs.iter().any(|s| s.start_s <= t && t < s.end_s)
    };
    let (mut hit, mut total) = (0u32, 0u32);
    for &(a, b) in &REFERENCE_MS {
        for ms in (a..b).step_by(10) {
            total += 1;
            hit += u32::from(speech_at(ms + 5));
        }
    }
    let recall = hit as f64 / total as f64;
    assert!(
        recall >= 0.95,
        "speech recall {:.1} % < 95 %",
        recall * 100.0
    );
    let mut found = 0;
    for w in REFERENCE_MS.windows(2) {
        let (a, b) = (w[0].1, w[1].0);
        let silent = (a..b).step_by(10).filter(|&ms| !speech_at(ms + 5)).count() as f64 * 10.0;
        let covered = silent / (b - a) as f64;
        if covered >= 0.5 {
            found += 1;
        } else {
            eprintln!("pause {a}–{b} ms only {:.0} % non-speech", covered * 100.0);
        }
    }
    assert_eq!(found, 11, "all 11 reference pauses must be found");
}

#[test]
fn resampled_48k_recording_starts_speech_near_12_s() {
    let r = analyze(&audio("funasr-vad_30s_48k.wav"));
    // Short mouth clicks before 6 s score like weak voice; the talking starts near 12 s.
    let first = r
        .agent
        .speech_segments
        .iter()
        .find(|s| s.duration_s() > 1.0)
        .expect("speech found");
    assert!(
        (11.0..13.0).contains(&first.start_s),
        "speech starts at {} s",
        first.start_s
    );
    let before: f64 = r
        .agent
        .speech_segments
        .iter()
        .filter(|s| s.end_s < 10.0)
        .map(|s| s.duration_s())
        .sum();
    assert!(before < 2.0, "{before} s of 'speech' before 10 s");
}
