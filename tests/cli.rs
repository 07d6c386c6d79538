#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! `callcoach analyze` as a user runs it: formats, layouts, bad input and suspicious input.
mod common;
use common::*;
use std::path::Path;

fn run_ok(args: &[&str]) -> String {
    let out = callcoach(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "callcoach {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs and expects a clean failure: exit code 2, one line naming the file, no panic.
fn run_err(args: &[&str], file: &Path, what: &str) -> String {
    let out = callcoach(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one-line error: {stderr}");
    assert!(
        stderr.contains(&file.display().to_string()),
        "error names the file: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains(what),
        "error says '{what}': {stderr}"
    );
    stderr
}

#[test]
fn demo_call_summary_and_json_report() {
    let dir = tmpdir();
    let json = dir.path().join("report.json");
    let text = run_ok(&["analyze", p(&fixture("demo-call.wav")), "--json", p(&json)]);
    for needle in [
        "agent:",
        "caller:",
        "LUFS",
        "chars/min",
        "talk ratio",
        "longest silence",
        "overlaps",
        "jumps",
    ] {
        assert!(text.contains(needle), "summary lacks {needle}: {text}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid json");
    assert_eq!(v["layout"], "stereo");
    assert!(v["agent"]["speech_segments"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    assert!(v["caller"]["utterances"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    let series = v["series"]["agent"]["momentary_lufs"]
        .as_array()
        .expect("series");
    assert_eq!(series.len(), 380, "10 Hz series over 38 s");
    assert!(v["talk_overs"].as_array().is_some_and(|a| a.len() == 1));
    assert_eq!(v["talk_overs"][0]["second_speaker"], "caller");
}

#[test]
fn agent_channel_right_swaps_parties() {
    let dir = tmpdir();
    let (l, r) = (dir.path().join("l.json"), dir.path().join("r.json"));
    run_ok(&["analyze", p(&fixture("demo-call.wav")), "--json", p(&l)]);
    run_ok(&[
        "analyze",
        p(&fixture("demo-call.wav")),
        "--agent-channel",
        "right",
        "--json",
        p(&r),
    ]);
    let l: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(l).expect("l")).expect("json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r).expect("r")).expect("json");
    assert_eq!(
        l["agent"]["integrated_lufs"],
        r["caller"]["integrated_lufs"]
    );
    assert_eq!(
        l["caller"]["speaking_time_s"],
        r["agent"]["speaking_time_s"]
    );
}

#[test]
fn two_mono_files_equal_the_stereo_call() {
    let dir = tmpdir();
    let demo = fixture("demo-call.wav");
    let (a, c) = (dir.path().join("agent.wav"), dir.path().join("caller.wav"));
    tool("sox", &[p(&demo), p(&a), "remix", "1"]);
    tool("sox", &[p(&demo), p(&c), "remix", "2"]);
    let stereo = analyze(&demo);
    let split = analyze_with(&a, Some(&c));
    assert_eq!(split.layout, "two-mono");
    assert_eq!(split.agent.speech_segments, stereo.agent.speech_segments);
    assert_eq!(split.talk_overs, stereo.talk_overs);
    assert_eq!(split.mutual_silences, stereo.mutual_silences);
}

/// Bytes in the middle of a file scrambled: one damaged stretch, not a broken file.
fn damage(src: &Path, out: &Path) {
    let mut d = std::fs::read(src).expect("read");
    let mid = d.len() / 2;
    for b in &mut d[mid..mid + 300] {
        *b = b.wrapping_mul(7).wrapping_add(13);
    }
    std::fs::write(out, d).expect("write");
}

#[test]
fn a_damaged_stretch_is_skipped_counted_and_filled_so_the_parties_stay_aligned() {
    let dir = tmpdir();
    let demo = fixture("demo-call.wav");
    let reference = analyze(&demo);
    let flac = dir.path().join("demo.flac");
    tool("sox", &[p(&demo), p(&flac)]);
    let mp3 = dir.path().join("demo.mp3");
    tool(
        "ffmpeg",
        &["-loglevel", "error", "-i", p(&demo), "-b:a", "64k", p(&mp3)],
    );
    // two mono files, only the agent's damaged: the caller must not slide against it
    let (a, c) = (
        dir.path().join("agent.flac"),
        dir.path().join("caller.flac"),
    );
    tool("sox", &[p(&demo), p(&a), "remix", "1"]);
    tool("sox", &[p(&demo), p(&c), "remix", "2"]);
    for (src, caller) in [(&flac, None), (&mp3, None), (&a, Some(&c))] {
        let bad = dir.path().join(format!(
            "bad-{}",
            src.file_name().unwrap().to_string_lossy()
        ));
        damage(src, &bad);
        let r = analyze_with(&bad, caller.map(|c| c.as_path()));
        let w = r
            .warnings
            .iter()
            .find(|w| w.code == "damaged-packets")
            .unwrap_or_else(|| {
                panic!(
                    "{}: no damaged-packets warning: {:?}",
                    bad.display(),
                    r.warnings
                )
            });
        assert!(w.message.contains("silence"), "{}", w.message);
        assert!(
            (r.summary.duration_s - reference.summary.duration_s).abs() < 0.1,
            "{}: {} s, the whole call",
            bad.display(),
            r.summary.duration_s
        );
        // the agent's loudness jump (25 s) and the caller's talk-over (28 s), after the damage
        // at about 19 s, are where they were
        let jump = r.agent.loudness_jumps.first().expect("jump").time_s;
        let want = reference.agent.loudness_jumps[0].time_s;
        assert!(
            (jump - want).abs() < 0.35,
            "{}: jump at {jump}, not {want}",
            bad.display()
        );
        let (t, want) = (&r.talk_overs[0], &reference.talk_overs[0]);
        assert!(
            (t.start_s - want.start_s).abs() < 0.2 && (t.end_s - want.end_s).abs() < 0.2,
            "{}: talk-over {t:?}, not {want:?}",
            bad.display()
        );
        // Replayed as a live call, the damage is said too: on screen and in the call's report.
        if caller.is_none() {
            let out = dir.path().join(format!(
                "live-{}",
                src.file_name().unwrap().to_string_lossy()
            ));
            let text = run_ok(&["live", "--input", p(&bad), "--out", p(&out), "--no-asr"]);
            assert!(text.contains("damaged packet"), "{text}");
            let report = std::fs::read_dir(&out)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|f| f.extension().is_some_and(|x| x == "json"))
                .expect("the call's report");
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
            assert!(
                v["warnings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|w| w["code"] == "damaged-packets"),
                "{}: {}",
                bad.display(),
                v["warnings"]
            );
        }
    }
}

#[test]
fn mono_file_is_agent_only_and_says_so() {
    let text = run_ok(&["analyze", p(&audio("paddlespeech-zh.wav"))]);
    assert!(text.contains("agent-only"), "{text}");
    assert!(text.contains("caller: not in the recording"), "{text}");
}

#[test]
fn every_supported_format_decodes_to_the_same_call() {
    let dir = tmpdir();
    let src = audio("funasr-asr_example.wav");
    let reference = analyze(&src);
    let base = reference.agent.integrated_lufs.expect("lufs");
    let cases: Vec<(&str, Vec<&str>, f32)> = vec![
        ("u8.wav", vec!["-b", "8", "-e", "unsigned-integer"], 0.3),
        ("s24.wav", vec!["-b", "24"], 0.05),
        ("f32.wav", vec!["-e", "floating-point", "-b", "32"], 0.05),
        ("mulaw.wav", vec!["-e", "mu-law"], 0.3),
        ("alaw.wav", vec!["-e", "a-law"], 0.3),
        ("x.flac", vec![], 0.05),
        ("x.ogg", vec![], 0.5),
        ("r8k.wav", vec!["-r", "8000"], 0.5),
        ("r22k.wav", vec!["-r", "22050"], 0.3),
        ("r44k.wav", vec!["-r", "44100"], 0.3),
    ];
    for (name, opts, tol) in cases {
        let out = dir.path().join(name);
        let mut args = vec![p(&src)];
        args.extend(opts);
        args.push(p(&out));
        tool("sox", &args);
        let r = analyze(&out);
        let lufs = r.agent.integrated_lufs.expect("lufs");
        assert!((lufs - base).abs() <= tol, "{name}: {lufs} vs {base}");
        assert!(
            (r.summary.duration_s - reference.summary.duration_s).abs() < 0.06,
            "{name}: duration {}",
            r.summary.duration_s
        );
    }
    let mp3 = dir.path().join("x.mp3");
    tool(
        "ffmpeg",
        &["-loglevel", "error", "-i", p(&src), "-b:a", "64k", p(&mp3)],
    );
    let r = analyze(&mp3);
    assert!((r.agent.integrated_lufs.expect("lufs") - base).abs() <= 0.5);
}

#[test]
fn bad_input_gets_one_clear_line_and_exit_code_2() {
    let dir = tmpdir();
    let d = dir.path();
    let missing = d.join("missing.wav");
    run_err(&["analyze", p(&missing)], &missing, "cannot read");

    let empty = d.join("empty.wav");
    std::fs::write(&empty, b"").expect("write");
    run_err(&["analyze", p(&empty)], &empty, "empty");

    let text = d.join("notes.wav");
    std::fs::write(
        &text,
        "这不是音频文件 — just some text, not audio at all\n".repeat(20),
    )
    .expect("write");
    run_err(&["analyze", p(&text)], &text, "not a supported audio file");

    let zero = d.join("zero.wav");
    hound::WavWriter::create(
        &zero,
        hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        },
    )
    .expect("wav")
    .finalize()
    .expect("finalize");
    run_err(&["analyze", p(&zero)], &zero, "no audio samples");

    let full = std::fs::read(audio("funasr-asr_example.wav")).expect("read");
    let truncated = d.join("truncated.wav");
    std::fs::write(&truncated, &full[..full.len() / 2]).expect("write");
    run_err(&["analyze", p(&truncated)], &truncated, "truncated");
    // …and the user can still analyse the part that is there.
    run_ok(&["analyze", p(&truncated), "--allow-truncated"]);

    let corrupt = d.join("corrupt.flac");
    let flac = d.join("good.flac");
    tool("sox", &[p(&audio("funasr-asr_example.wav")), p(&flac)]);
    let mut bytes = std::fs::read(&flac).expect("read");
    for b in bytes.iter_mut().skip(8000).take(4000) {
        *b ^= 0x5a;
    }
    std::fs::write(&corrupt, &bytes).expect("write");
    // A damaged stretch is skipped, filled and reported, not the end of the analysis…
    let text = run_ok(&["analyze", p(&corrupt)]);
    assert!(text.contains("damaged-packets"), "{text}");
    // …but a file damaged from there to its end is.
    for b in bytes.iter_mut().skip(8000) {
        *b ^= 0x5a;
    }
    std::fs::write(&corrupt, &bytes).expect("write");
    run_err(&["analyze", p(&corrupt)], &corrupt, "corrupt");

    let opus = d.join("call.opus");
    tool(
        "ffmpeg",
        &[
            "-loglevel",
            "error",
            "-i",
            p(&audio("funasr-asr_example.wav")),
            "-c:a",
            "libopus",
            p(&opus),
        ],
    );
    run_err(&["analyze", p(&opus)], &opus, "not a supported audio file");

    let stereo = fixture("demo-call.wav");
    run_err(
        &[
            "analyze",
            p(&stereo),
            "--caller",
            p(&audio("funasr-asr_example.wav")),
        ],
        &stereo,
        "must be mono",
    );
}

#[test]
fn suspicious_input_is_analysed_with_a_warning() {
    let dir = tmpdir();
    let d = dir.path();
    let src = audio("funasr-asr_example.wav");
    let dup = d.join("dup.wav");
    tool("sox", &[p(&src), p(&dup), "remix", "1", "1"]);
    let text = run_ok(&["analyze", p(&dup)]);
    assert!(text.contains("identical-channels"), "{text}");

    let silent_caller = d.join("silent.wav");
    tool("sox", &[p(&src), p(&silent_caller), "remix", "1", "0"]);
    let text = run_ok(&["analyze", p(&silent_caller)]);
    assert!(
        text.contains("digital-silence") && text.contains("caller"),
        "{text}"
    );
    assert!(!text.contains("identical-channels"), "{text}");

    // Line noise on a quiet caller is not digital silence.
    let noisy = d.join("noisy.wav");
    let noise = d.join("noise.wav");
    tool(
        "sox",
        &[
            "-n",
            "-r",
            "16000",
            "-c",
            "1",
            "-b",
            "16",
            p(&noise),
            "synth",
            "5.55",
            "whitenoise",
            "vol",
            "0.003",
        ],
    );
    tool("sox", &["-M", p(&src), p(&noise), p(&noisy)]);
    let text = run_ok(&["analyze", p(&noisy)]);
    assert!(!text.contains("digital-silence"), "{text}");

    let clipped = d.join("clipped.wav");
    tool("sox", &[p(&src), p(&clipped), "gain", "20"]);
    let text = run_ok(&["analyze", p(&clipped)]);
    assert!(text.contains("[clipping]"), "{text}");
    let clean = run_ok(&["analyze", p(&src)]);
    assert!(!clean.contains("[clipping]"), "{clean}");
}
