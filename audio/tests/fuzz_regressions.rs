#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Inputs the fuzzer (fuzz/) found: each must give a report or a clean error, never a panic.
//! `.ci/run` also runs this file in a debug build, where the libraries' debug assertions
//! (earshot checks its input range) are active.

use callcoach_audio::analyze::{analyze_call, AgentChannel, CallInput};
use callcoach_audio::call::CallConfig;

#[test]
fn fuzz_findings_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fuzz");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz fixtures") {
        let path = entry.expect("entry").path();
        let input = CallInput {
            call: path.clone(),
            caller: None,
            agent_channel: AgentChannel::Left,
            allow_truncated: true,
        };
        match analyze_call(&input, &CallConfig::default()) {
            Ok(r) => assert!(r.summary.duration_s > 0.0),
            Err(e) => assert!(e.to_string().contains(&path.display().to_string())),
        }
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn full_scale_square_wave_at_8k_does_not_break_the_detector() {
    // Upsampling a full-scale square wave overshoots ±1 (Gibbs); the VAD needs [-1, 1].
    let dir = std::env::temp_dir().join(format!("callcoach-square-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("square.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).expect("wav");
    for i in 0..16000 {
        w.write_sample(if (i / 20) % 2 == 0 {
            i16::MAX
        } else {
            i16::MIN
        })
        .expect("sample");
    }
    w.finalize().expect("finalize");
    let r = callcoach_audio::analyze::analyze_file(&path).expect("analysable");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(r.warnings.iter().any(|w| w.code == "clipping"));
}
