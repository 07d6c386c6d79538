#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Loudness against BS.1770: sine tones with known loudness, and the real recordings against an
//! independent meter (ffmpeg's ebur128 filter). Tolerance ±0.1 LU as in the ebur128 crate's tests.
mod common;
use common::*;

fn write_sine(path: &std::path::Path, rate: u32, amplitude: f32, seconds: f32, channels: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for i in 0..(rate as f32 * seconds) as u32 {
        let x = amplitude * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / rate as f32).sin();
        for _ in 0..channels {
            w.write_sample(x).expect("sample");
        }
    }
    w.finalize().expect("finalize");
}

#[test]
fn sine_tones_read_their_bs1770_loudness() {
    let dir = tmpdir();
    // A 1 kHz sine of peak A on one channel reads 20·log10(A) − 3.01 LUFS (BS.1770-4, K-weighting
    // is ~0 dB at 1 kHz).
    for rate in [8000, 16000, 44100, 48000] {
        for dbfs in [-6.0f32, -20.0, -35.0] {
            let path = dir.path().join(format!("sine{rate}_{dbfs}.wav"));
            write_sine(&path, rate, 10f32.powf(dbfs / 20.0), 10.0, 1);
            let r = analyze(&path);
            let lufs = r.agent.integrated_lufs.expect("loudness");
            let expected = dbfs - 3.01;
            assert!(
                (lufs - expected).abs() <= 0.1,
                "{rate} Hz {dbfs} dBFS: {lufs} LUFS, expected {expected}"
            );
        }
    }
}

fn ffmpeg_integrated(path: &std::path::Path) -> f32 {
    let out = tool_output(
        "ffmpeg",
        &[
            "-nostats",
            "-hide_banner",
            "-i",
            p(path),
            "-af",
            "ebur128",
            "-f",
            "null",
            "-",
        ],
    );
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = text.rsplit("Summary:").next().expect("ffmpeg summary");
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("I:"))
        .expect("I: line");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("number")
}

#[test]
fn real_recordings_match_ffmpeg_ebur128() {
    for name in [
        "paddlespeech-zh.wav",
        "aishell-BAC009S0724W0121.wav",
        "funasr-asr_example.wav",
        "funasr-paraformer_example_1.wav",
        "funasr-vad_example_70s.wav",
        "funasr-vad_30s_48k.wav",
    ] {
        let path = audio(name);
        let ours = analyze(&path).agent.integrated_lufs.expect("loudness");
        let theirs = ffmpeg_integrated(&path);
        // ffmpeg prints one decimal: allow its rounding on top of the 0.1 LU tolerance.
        assert!(
            (ours - theirs).abs() <= 0.15,
            "{name}: ours {ours} LUFS, ffmpeg {theirs} LUFS"
        );
    }
}

#[test]
fn stereo_call_meters_each_party_separately() {
    let r = analyze(&fixture("demo-call.wav"));
    let a = r.agent.integrated_lufs.expect("agent");
    let c = r
        .caller
        .as_ref()
        .and_then(|c| c.integrated_lufs)
        .expect("caller");
    assert!((a - c).abs() > 0.0);
    assert!(r
        .series
        .agent
        .as_ref()
        .is_some_and(|s| s.momentary_lufs.iter().flatten().count() > 100));
    assert!(r
        .series
        .caller
        .as_ref()
        .is_some_and(|s| s.short_term_lufs.iter().flatten().count() > 100));
}

#[test]
fn momentary_and_short_term_series_equal_the_meters_own_windows() {
    use callcoach_audio::{FeatureConfig, PartyAnalyzer, PartyOutput, FRAME_LEN};
    let mut reader = hound::WavReader::open(audio("funasr-vad_example_70s.wav")).expect("wav");
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample") as f32 / 32768.0)
        .collect();
    let mut ours = PartyAnalyzer::new(FeatureConfig::default()).expect("analyzer");
    let mut reference =
        ebur128::EbuR128::new(1, 16000, ebur128::Mode::M | ebur128::Mode::S).expect("meter");
    let mut expected = Vec::new();
    let mut got = Vec::new();
    let mut frame = [0.0f32; FRAME_LEN];
    for (i, chunk) in samples.chunks_exact(FRAME_LEN).enumerate() {
        frame.copy_from_slice(chunk);
        reference.add_frames_f32(&frame).expect("add");
        if (i + 1) % 10 == 0 {
            expected.push((
                reference.loudness_momentary().expect("m"),
                reference.loudness_shortterm().expect("s"),
            ));
        }
        ours.push_frame(&frame, &mut |o| {
            if let PartyOutput::Frame(f) = o {
                if f.index % 10 == 9 {
                    got.push((f.momentary_lufs, f.short_term_lufs));
                }
            }
        });
    }
    ours.finish(&mut |o| {
        if let PartyOutput::Frame(f) = o {
            if f.index % 10 == 9 {
                got.push((f.momentary_lufs, f.short_term_lufs));
            }
        }
    });
    assert_eq!(got.len(), expected.len());
    for (k, ((m, s), (em, es))) in got.iter().zip(&expected).enumerate() {
        for (v, e) in [(m, em), (s, es)] {
            match v {
                Some(v) => assert!((*v as f64 - e).abs() < 0.001, "block {k}: {v} vs {e}"),
                None => assert!(!e.is_finite() || *e < -100.0, "block {k}: None vs {e}"),
            }
        }
    }
}
