#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! `callcoach live --input FILE`: a recording replayed through the live pipeline (source →
//! rings → features/coach thread → screen, call lifecycle, report, recording).
mod common;
use std::path::{Path, PathBuf};

use common::*;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The call reports (`call-*.json`) in `dir`, oldest first.
fn reports(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("call-") && n.ends_with(".json")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn replay_raises_what_analyze_raises() {
    let dir = tmpdir();
    let json_path = dir.path().join("r.json");
    let a = callcoach(&[
        "analyze",
        p(&fixture("demo-call.wav")),
        "--json",
        p(&json_path),
        "--no-asr",
    ]);
    assert!(a.status.success());
    let v = json(&json_path);
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
    let out = callcoach(&[
        "live",
        "--input",
        p(&fixture("demo-call.wav")),
        "--out",
        p(dir.path()),
        "--no-asr",
    ]);
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
    assert!(text.contains("≡ agent"), "meters are printed: {text}");
    assert!(
        !text.contains("overflow"),
        "a file replayed fast waits for the pipeline: {text}"
    );
}

/// The report a live call leaves equals what `analyze` gives for its recording (with the
/// transcript file it leaves beside them), stereo 16 kHz and mono 8 kHz.
#[test]
fn live_report_equals_analyze_of_its_recording() {
    let dir = tmpdir();
    let mono8k = dir.path().join("mono8k.wav");
    tool(
        "sox",
        &[
            p(&audio("funasr-vad_example_70s.wav")),
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            p(&mono8k),
            "trim",
            "0",
            "30",
        ],
    );
    for (input, channels, rate) in [
        (fixture("demo-call.wav"), 2, 16000),
        (mono8k.clone(), 1, 8000),
    ] {
        let out_dir = dir.path().join(format!("out{rate}"));
        let out = callcoach(&[
            "live",
            "--input",
            p(&input),
            "--out",
            p(&out_dir),
            "--record",
            "--no-asr",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = reports(&out_dir);
        assert_eq!(r.len(), 1, "one call, one report");
        let live = json(&r[0]);
        let wav = r[0].with_extension("wav");
        let transcript =
            PathBuf::from(r[0].to_string_lossy().replace(".json", ".transcript.jsonl"));
        assert!(wav.exists() && transcript.exists());
        let spec = hound::WavReader::open(&wav).unwrap().spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (channels, rate, 16)
        );
        let again = dir.path().join("again.json");
        let a = callcoach(&[
            "analyze",
            p(&wav),
            "--transcript",
            p(&transcript),
            "--json",
            p(&again),
        ]);
        assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
        let offline = json(&again);
        for key in [
            "summary",
            "agent",
            "caller",
            "series",
            "talk_overs",
            "mutual_silences",
            "warnings",
            "layout",
        ] {
            assert_eq!(live[key], offline[key], "{key} differs at {rate} Hz");
        }
        assert!(
            live["coach"]["warnings"] == offline["coach"]["warnings"],
            "coach warnings differ at {rate} Hz"
        );
        assert_eq!(live["coach"]["scores"], offline["coach"]["scores"]);
        assert_eq!(live["files"][0]["codec"], offline["files"][0]["codec"]);
        assert_eq!(live["asr"]["status"], "off");
        assert!(live["summary"]["duration_s"].as_f64().unwrap() > 29.0);
    }
}

/// Sustained speech of both parties starts a call by itself, with the half second before the
/// first word kept; a long silence ends it.
#[test]
fn sustained_two_party_speech_starts_and_ends_a_call() {
    let dir = tmpdir();
    let lead = dir.path().join("lead.wav");
    let tail = dir.path().join("tail.wav");
    let call = dir.path().join("call.wav");
    for (f, secs) in [(&lead, "8"), (&tail, "20")] {
        silence(f, secs, "2");
    }
    tool(
        "sox",
        &[p(&lead), p(&fixture("demo-call.wav")), p(&tail), p(&call)],
    );
    let before = analyze(&fixture("demo-call.wav"));
    let first_speech = before.agent.speech_segments[0]
        .start_s
        .min(before.caller.as_ref().unwrap().speech_segments[0].start_s);
    let out = callcoach(&[
        "live",
        "--input",
        p(&call),
        "--call-start",
        "auto",
        "--auto-end-s",
        "10",
        "--out",
        p(dir.path()),
        "--record",
        "--no-asr",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("started (auto)"), "{text}");
    let r = reports(dir.path());
    assert_eq!(r.len(), 1, "{text}");
    let v = json(&r[0]);
    // The call starts 0.5 s before the first speech (8 s + first_speech into the stream).
    let agent_first = v["agent"]["speech_segments"][0]["start_s"]
        .as_f64()
        .unwrap();
    let caller_first = v["caller"]["speech_segments"][0]["start_s"]
        .as_f64()
        .unwrap();
    let got = agent_first.min(caller_first);
    assert!((got - 0.5).abs() < 0.15, "first speech at {got} s of the call (want 0.5 s; it starts at {first_speech} s in the demo)");
    // It ends 10 s after the last speech (± the meter step), not at the end of the stream.
    let dur = v["summary"]["duration_s"].as_f64().unwrap();
    let last_end = before.agent.speech_segments.last().unwrap().end_s.max(
        before
            .caller
            .as_ref()
            .unwrap()
            .speech_segments
            .last()
            .unwrap()
            .end_s,
    );
    // + about 0.3 s: the audio runs 0.68 s ahead of the VAD's decisions, and the silence timer
    // counts from the last voiced frame, some 0.35 s before the padded end of the speech.
    let want = last_end - first_speech + 0.5 + 10.0 + 0.3;
    assert!(
        (dur - want).abs() < 0.25,
        "call lasted {dur} s, want ≈ {want} s"
    );
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

fn post(addr: &str, path: &str) -> String {
    post_auth(addr, path, None)
}

fn post_auth(addr: &str, path: &str, token: Option<&str>) -> String {
    use std::io::{Read, Write};
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            write!(
                s,
                "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut r = String::new();
            let _ = s.read_to_string(&mut r);
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the API did not come up on {addr}");
}

/// `live` replaying a recording in real time, calls driven through the API at `addr`, reports
/// in `out`; `extra` arguments appended. Stdout piped (the text UI).
fn api_live(addr: &str, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = cmd();
    c.args([
        "live",
        "--input",
        p(&audio("funasr-asr_example.wav")),
        "--realtime",
        "--call-start",
        "api",
        "--api",
        addr,
        "--out",
        p(out),
        "--no-asr",
    ])
    .args(extra)
    .stdout(std::process::Stdio::piped());
    c
}

#[test]
fn the_call_control_api_starts_holds_and_ends_a_call() {
    let dir = tmpdir();
    let addr = free_addr();
    let child = api_live(&addr, dir.path(), &[]).spawn().unwrap();
    let r = post(&addr, "/v1/call/start");
    assert!(
        r.starts_with("HTTP/1.1 200") && r.contains("CallStart"),
        "{r}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1000));
    // 50 concurrent hold requests (a retrying CTI connector): one hold.
    let posts: Vec<_> = (0..50)
        .map(|_| {
            let a = addr.clone();
            std::thread::spawn(move || post(&a, "/v1/hold/start"))
        })
        .collect();
    for h in posts {
        let r = h.join().unwrap();
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains("HoldStart"),
            "{r}"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(1000));
    post(&addr, "/v1/hold/end");
    post(&addr, "/v1/call/end");
    let r = post(&addr, "/v1/hold/lunch");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("started (api)"), "{text}");
    assert!(text.contains("● HoldStart"), "{text}");
    assert!(text.contains("● CallEnd"), "{text}");
    let r = reports(dir.path());
    assert_eq!(r.len(), 1, "only the API's call: {text}");
    let v = json(&r[0]);
    let dur = v["summary"]["duration_s"].as_f64().unwrap();
    assert!(
        (1.8..3.5).contains(&dur),
        "the call lasted from start to end request: {dur} s"
    );
    let t = std::fs::read_to_string(r[0].to_string_lossy().replace(".json", ".transcript.jsonl"))
        .unwrap();
    assert!(
        t.contains("hold_start") && t.contains("hold_end") && t.contains("call_end"),
        "{t}"
    );
    assert_eq!(
        t.matches("hold_start").count(),
        1,
        "repeated holds are one: {t}"
    );
    assert_eq!(text.matches("● HoldStart").count(), 1, "{text}");
}

#[test]
fn the_api_listens_beyond_loopback_only_with_a_token_and_checks_it() {
    let dir = tmpdir();
    let port = free_addr().rsplit(':').next().unwrap().to_string();
    let open = format!("0.0.0.0:{port}");
    let refused = callcoach(&[
        "live",
        "--input",
        p(&audio("funasr-asr_example.wav")),
        "--api",
        &open,
        "--out",
        p(dir.path()),
        "--no-asr",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(
        e.contains("not a loopback address") && e.contains("token"),
        "{e}"
    );
    // A token file with the API off is a mistake, said at once (not silently ignored).
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "a-long-enough-test-token-1234").unwrap();
    let ignored = callcoach(&[
        "live",
        "--input",
        p(&audio("funasr-asr_example.wav")),
        "--api-token-file",
        p(&token_file),
        "--out",
        p(dir.path()),
        "--no-asr",
    ]);
    assert_eq!(ignored.status.code(), Some(2));
    let e = String::from_utf8_lossy(&ignored.stderr);
    assert!(e.contains("without --api"), "{e}");

    let token = "a-long-enough-test-token-1234";
    let child = api_live(&open, dir.path(), &[])
        .env("CALLCOACH_API_TOKEN", token)
        .spawn()
        .unwrap();
    let here = format!("127.0.0.1:{port}");
    let r = post(&here, "/v1/call/start");
    assert!(r.starts_with("HTTP/1.1 401"), "no token: {r}");
    let r = post_auth(
        &here,
        "/v1/call/start",
        Some("a-long-enough-test-token-9999"),
    );
    assert!(r.starts_with("HTTP/1.1 401"), "wrong token: {r}");
    let r = post_auth(&here, "/v1/call/start", Some(token));
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let r = post_auth(&here, "/v1/call/end", Some(token));
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        reports(dir.path()).len(),
        1,
        "one call, started and ended with the token: {text}"
    );
}

#[test]
fn realtime_replay_is_paced_and_reports_latency() {
    let dir = tmpdir();
    let start = std::time::Instant::now();
    let out = callcoach(&[
        "live",
        "--input",
        p(&audio("paddlespeech-zh.wav")),
        "--realtime",
        "--out",
        p(dir.path()),
        "--model",
        p(&fixture("models/for-tests-ggml-tiny.bin")),
    ]);
    assert!(out.status.success());
    // Paced: a 5 s recording takes at least about 5 s (a lower bound, not a speed check).
    assert!(start.elapsed().as_secs_f64() >= 4.5);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("call ended at 5.0 s"), "{text}");
    // The test model loads and transcribes nothing: ASR is on, and says so in the report.
    let v = json(&reports(dir.path())[0]);
    assert_eq!(v["asr"]["status"], "on", "{}", v["asr"]);
    assert!(
        v["asr"]["stats"]["transcribed"].as_u64().unwrap()
            + v["asr"]["stats"]["gated"].as_u64().unwrap()
            >= 1,
        "{}",
        v["asr"]
    );
    let bad = callcoach(&[
        "live",
        "--input",
        p(&audio("paddlespeech-zh.wav")),
        "--ui",
        "nonsense",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

/// Ctrl-C ends the audio, not the record: the call in progress is finished and written.
#[test]
fn ctrl_c_finishes_and_writes_the_call() {
    let dir = tmpdir();
    let child = cmd()
        .args([
            "live",
            "--input",
            p(&fixture("demo-call.wav")),
            "--realtime",
            "--out",
            p(dir.path()),
            "--record",
            "--no-asr",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3000));
    tool("kill", &["-INT", &child.id().to_string()]);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let r = reports(dir.path());
    assert_eq!(r.len(), 1, "{text}");
    let dur = json(&r[0])["summary"]["duration_s"].as_f64().unwrap();
    assert!((2.5..6.0).contains(&dur), "the call up to Ctrl-C: {dur} s");
    assert!(r[0].with_extension("wav").exists());
}

/// The output directory removed during a call (a full or vanished disk): coaching goes on, the
/// report is kept in the fallback directory and says the recording failed; nothing is lost
/// silently.
#[test]
fn a_vanished_output_directory_costs_the_recording_not_the_report() {
    let dir = tmpdir();
    let out = dir.path().join("out");
    let fallback = dir.path().join("fallback");
    let child = cmd()
        .args([
            "live",
            "--input",
            p(&audio("funasr-asr_example.wav")),
            "--realtime",
            "--record",
            "--out",
            p(&out),
            "--no-asr",
        ])
        .env("CALLCOACH_FALLBACK_DIR", &fallback)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::remove_dir_all(&out).unwrap();
    let done = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{text}");
    assert!(
        text.contains("kept in"),
        "the move is said on screen: {text}"
    );
    let kept = reports(&fallback);
    assert_eq!(kept.len(), 1, "{text}");
    let v = json(&kept[0]);
    let codes: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(codes.contains(&"recording-failed"), "{codes:?}");
    assert!(
        v["summary"]["duration_s"].as_f64().unwrap() > 5.0,
        "the whole call"
    );
    assert!(fallback.read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".transcript.jsonl")));
}

/// `--out` gone between two calls: the second call cannot be recorded, and still is coached
/// and reported (in the fallback directory), and the run goes on.
#[test]
fn a_call_that_cannot_be_recorded_is_still_coached_and_reported() {
    let dir = tmpdir();
    let out = dir.path().join("out");
    let fallback = dir.path().join("fallback");
    let addr = free_addr();
    let child = api_live(&addr, &out, &["--record"])
        .env("CALLCOACH_FALLBACK_DIR", &fallback)
        .spawn()
        .unwrap();
    assert!(post(&addr, "/v1/call/start").starts_with("HTTP/1.1 200"));
    std::thread::sleep(std::time::Duration::from_millis(800));
    post(&addr, "/v1/call/end");
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::remove_dir_all(&out).unwrap();
    assert!(post(&addr, "/v1/call/start").starts_with("HTTP/1.1 200"));
    std::thread::sleep(std::time::Duration::from_millis(800));
    post(&addr, "/v1/call/end");
    let done = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&done.stdout);
    assert!(done.status.success(), "{text}");
    assert_eq!(text.matches("started (api)").count(), 2, "{text}");
    assert!(text.contains("cannot record"), "{text}");
    let kept = reports(&fallback);
    assert!(
        kept.iter().any(|r| json(r)["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "recording-failed")),
        "{text}"
    );
}
