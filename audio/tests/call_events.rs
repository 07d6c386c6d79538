#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Silences, loudness jumps and talk-over on two-channel calls synthesized from espeak-ng
//! Mandarin placed on a timeline with known truth.
mod common;
use common::*;
use std::path::Path;

const A: &str = "nin2 hao3 huan1 ying2 zhi4 dian4 ke4 hu4 fu2 wu4 zhong1 xin1 qing3 wen4 you3 shen2 me5 ke3 yi3 bang1 nin2";
const B: &str = "wo3 xiang3 cha2 yi2 xia4 wo3 de5 zhang4 dan1 wei4 shen2 me5 zhe4 me5 gao1";

fn utterance(dir: &Path, name: &str, pinyin: &str, speed: u32) -> Vec<f32> {
    trimmed_speech(dir, name, pinyin, speed, 0.5)
}

fn place(track: &mut Vec<f32>, at_s: f64, samples: &[f32], gain: f32) {
    let start = (at_s * 16000.0).round() as usize;
    if track.len() < start + samples.len() {
        track.resize(start + samples.len(), 0.0);
    }
    for (i, x) in samples.iter().enumerate() {
        track[start + i] += x * gain;
    }
}

fn write_stereo(path: &Path, agent: &[f32], caller: &[f32], tail_s: f64) {
    let len = agent.len().max(caller.len()) + (tail_s * 16000.0) as usize;
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("wav");
    for i in 0..len {
        for t in [agent, caller] {
            let x = t.get(i).copied().unwrap_or(0.0);
            w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16)
                .expect("sample");
        }
    }
    w.finalize().expect("finalize");
}

fn secs(samples: &[f32]) -> f64 {
    samples.len() as f64 / 16000.0
}

#[test]
fn inserted_silences_of_2_5_and_12_s_are_found_within_100_ms() {
    let dir = tmpdir();
    let a = utterance(dir.path(), "a", A, 150);
    let b = utterance(dir.path(), "b", B, 150);
    let (mut agent, mut caller) = (Vec::new(), Vec::new());
    let mut t = 1.0;
    let mut expected = Vec::new();
    for (i, gap) in [2.0, 5.0, 12.0].into_iter().enumerate() {
        let (track, speech) = if i % 2 == 0 {
            (&mut agent, &a)
        } else {
            (&mut caller, &b)
        };
        place(track, t, speech, 1.0);
        t += secs(speech);
        expected.push((t, t + gap));
        t += gap;
    }
    place(&mut caller, t, &b, 1.0);
    let path = dir.path().join("silences.wav");
    write_stereo(&path, &agent, &caller, 1.0);
    let r = analyze(&path);
    for &(start, end) in &expected {
        let found = r
            .mutual_silences
            .iter()
            .find(|s| (s.start_s - start).abs() < 0.5);
        eprintln!("{found:?} vs {start:.3}-{end:.3}");
    }
    for (start, end) in expected {
        let found = r
            .mutual_silences
            .iter()
            .find(|s| (s.start_s - start).abs() < 0.5)
            .unwrap_or_else(|| {
                panic!(
                    "no mutual silence near {start:.2} s: {:?}",
                    r.mutual_silences
                )
            });
        eprintln!(
            "silence {:.3}-{:.3} vs {start:.3}-{end:.3}",
            found.start_s, found.end_s
        );
        assert!(
            (found.start_s - start).abs() <= 0.1,
            "silence start {} vs {start}",
            found.start_s
        );
        assert!(
            (found.end_s - end).abs() <= 0.1,
            "silence end {} vs {end}",
            found.end_s
        );
    }
    // The mid-call silences are the longest ones; no silence is invented inside the speech.
    assert!(r.mutual_silences.iter().all(|s| s.duration_s() >= 1.0));
    assert!((r.summary.longest_mutual_silence_s - 12.0).abs() <= 0.2);
}

/// Agent speech about 25 s long, with a gain curve applied: `gain_db(t)`.
fn agent_with_gain(dir: &Path, gain_db: impl Fn(f64) -> f64) -> (std::path::PathBuf, Vec<f32>) {
    let a = utterance(dir, "long", &format!("{A} {B} {A} {B} {A}"), 160);
    let shaped: Vec<f32> = a
        .iter()
        .enumerate()
        .map(|(i, x)| x * 0.25 * 10f32.powf(gain_db(i as f64 / 16000.0) as f32 / 20.0))
        .collect();
    let mut agent = Vec::new();
    place(&mut agent, 0.5, &shaped, 1.0);
    let path = dir.join("gain.wav");
    write_stereo(&path, &agent, &[], 1.0);
    (path, agent)
}

#[test]
fn a_10_db_step_gives_one_jump_within_500_ms() {
    let dir = tmpdir();
    let step_at = 14.0;
    let (path, agent) =
        agent_with_gain(dir.path(), |t| if t >= step_at - 0.5 { 10.0 } else { 0.0 });
    // First voiced sample at or after the step (the step may fall between syllables).
    let first = (step_at * 16000.0) as usize
        + agent[(step_at * 16000.0) as usize..]
            .iter()
            .position(|x| x.abs() > 0.01)
            .expect("speech after step");
    let resume = first as f64 / 16000.0;
    let r = analyze(&path);
    let jumps = &r.agent.loudness_jumps;
    assert_eq!(jumps.len(), 1, "exactly one jump: {jumps:?}");
    assert!(
        (jumps[0].time_s - resume).abs() <= 0.5,
        "jump at {} s, step heard at {resume} s",
        jumps[0].time_s
    );
    assert!(jumps[0].rise_db >= 6.0);
}

#[test]
fn a_10_db_ramp_over_20_s_gives_no_jump() {
    let dir = tmpdir();
    let (path, _) = agent_with_gain(dir.path(), |t| ((t - 2.0) / 20.0).clamp(0.0, 1.0) * 10.0);
    let r = analyze(&path);
    assert!(
        r.agent.loudness_jumps.is_empty(),
        "a gradual rise is not a jump: {:?}",
        r.agent.loudness_jumps
    );
    // The ramp is there: the level rose by about 10 dB.
    let s = r.series.agent.expect("series");
    let st: Vec<f32> = s.short_term_lufs.iter().flatten().copied().collect();
    assert!(st[st.len() - 40] - st[40] > 6.0);
}

#[test]
fn a_known_1_5_s_overlap_is_found_within_150_ms() {
    let dir = tmpdir();
    let a = utterance(dir.path(), "a", A, 150);
    let b = utterance(dir.path(), "b", B, 150);
    let (mut agent, mut caller) = (Vec::new(), Vec::new());
    place(&mut agent, 1.0, &a, 1.0);
    let agent_end = 1.0 + secs(&a);
    let caller_start = agent_end - 1.5;
    place(&mut caller, caller_start, &b, 1.0);
    let path = dir.path().join("overlap.wav");
    write_stereo(&path, &agent, &caller, 1.0);
    let r = analyze(&path);
    assert_eq!(r.talk_overs.len(), 1, "{:?}", r.talk_overs);
    let o = r.talk_overs[0];
    assert!(
        (o.start_s - caller_start).abs() <= 0.15,
        "overlap starts {} vs {caller_start}",
        o.start_s
    );
    assert!(
        (o.end_s - agent_end).abs() <= 0.15,
        "overlap ends {} vs {agent_end}",
        o.end_s
    );
    assert_eq!(o.second_speaker, callcoach_audio::call::Party::Caller);
    let c = r.caller.expect("caller");
    assert!(c.talk_ratio > 0.3 && c.talk_ratio < 0.7);
}
