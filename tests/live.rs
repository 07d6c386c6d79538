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

#[test]
fn the_call_control_api_drives_hold_during_a_live_call() {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_callcoach"))
        .args([
            "live",
            "--input",
            p(&audio("funasr-asr_example.wav")),
            "--realtime",
            "--api",
            &addr,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let post = |path: &str| -> String {
        for _ in 0..50 {
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                write!(s, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
                let mut r = String::new();
                let _ = s.read_to_string(&mut r);
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the API did not come up on {addr}");
    };
    std::thread::sleep(std::time::Duration::from_millis(800));
    let r = post("/v1/hold/start");
    assert!(
        r.starts_with("HTTP/1.1 200") && r.contains("HoldStart"),
        "{r}"
    );
    let r = post("/v1/hold/lunch");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("● HoldStart"), "{text}");
    assert!(text.contains("call ended at 5."), "{text}");
}
