#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Real cpal capture without a sound card: ALSA's `file` plugin reads a raw file (or a FIFO)
//! as a capture device (`alsa:filesrc`, defined in a config named by ALSA_CONFIG_PATH), and
//! `callcoach live` coaches it through the same pipeline as `analyze`.
mod common;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn raw(input: &Path, out: &Path, rate: u32, channels: u32, pad_s: u32) {
    let (r, c, pad) = (rate.to_string(), channels.to_string(), pad_s.to_string());
    tool(
        "sox",
        &[
            p(input),
            "-t",
            "raw",
            "-e",
            "signed",
            "-b",
            "16",
            "-r",
            &r,
            "-c",
            &c,
            p(out),
            "pad",
            "0",
            &pad,
        ],
    );
}

fn alsa_conf(dir: &Path, infile: &Path) -> String {
    let conf = dir.join("asound.conf");
    std::fs::write(&conf, format!("pcm.filesrc {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n infile \"{}\"\n format \"raw\"\n}}\n", infile.display())).unwrap();
    format!("/usr/share/alsa/alsa.conf:{}", conf.display())
}

/// Unpaced: the plugin reads the file as fast as cpal asks (thousands × real time).
#[test]
fn live_capture_through_alsa_reaches_the_coach() {
    let dir = tmpdir();
    let file = dir.path().join("call.raw");
    // Zero padding: the unpaced plugin repeats stale data after the end of the file.
    raw(&fixture("demo-call.wav"), &file, 16000, 2, 12);
    let alsa = alsa_conf(dir.path(), &file);
    let list = cmd()
        .arg("devices")
        .env("ALSA_CONFIG_PATH", &alsa)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("alsa:filesrc"),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );
    let out = cmd()
        .args([
            "live",
            "--stereo-device",
            "alsa:filesrc",
            "--seconds",
            "48",
            "--ring-ms",
            "60000",
            "--out",
            p(dir.path()),
            "--no-asr",
        ])
        .env("ALSA_CONFIG_PATH", &alsa)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("started (auto)"), "{text}");
    assert!(text.contains("capture: 0 samples dropped"), "{text}");
    // The demo's agent switches from a quiet to a loud recording: the jump comes through.
    assert!(text.contains("▲ gradual"), "{text}");
    let missing = cmd()
        .args([
            "live",
            "--stereo-device",
            "alsa:nothing-here",
            "--out",
            p(dir.path()),
        ])
        .env("ALSA_CONFIG_PATH", &alsa)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("callcoach devices"));
}

/// Feeds `data` into the FIFO one 10 ms period per 10 ms (the device's period), re-opening
/// it whenever the reader closes it (cpal opens the device more than once).
fn paced_writer(fifo: PathBuf, data: Vec<u8>, period_bytes: usize, stop: Instant) {
    std::thread::spawn(move || {
        let mut at = 0usize;
        while at < data.len() && Instant::now() < stop {
            let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&fifo) else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let start = Instant::now();
            let mut sent = 0u32;
            while at < data.len() {
                let end = (at + period_bytes).min(data.len());
                if f.write_all(&data[at..end]).is_err() {
                    break; // the reader closed: open again
                }
                at = end;
                sent += 1;
                let due = Duration::from_millis(10 * u64::from(sent));
                if let Some(w) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(w);
                }
            }
        }
    });
}

/// Paced like a real device through a FIFO: mono and stereo, 8 and 16 kHz, all at once (each
/// takes the demo call's 38 s of real time).
#[test]
fn paced_capture_mono_and_stereo_at_8_and_16_khz() {
    let dir = tmpdir();
    let runs: Vec<_> = [(2u32, 16000u32), (2, 8000), (1, 16000), (1, 8000)]
        .into_iter()
        .map(|(channels, rate)| {
            let sub = dir.path().join(format!("c{channels}r{rate}"));
            std::fs::create_dir_all(&sub).unwrap();
            let file = sub.join("call.raw");
            let src = if channels == 2 {
                fixture("demo-call.wav")
            } else {
                let m = sub.join("agent.wav");
                tool("sox", &[p(&fixture("demo-call.wav")), p(&m), "remix", "1"]);
                m
            };
            raw(&src, &file, rate, channels, 6);
            let fifo = sub.join("call.fifo");
            tool("mkfifo", &[p(&fifo)]);
            let alsa = alsa_conf(&sub, &fifo);
            let data = std::fs::read(&file).unwrap();
            let period = (rate / 100 * channels * 2) as usize;
            paced_writer(fifo, data, period, Instant::now() + Duration::from_secs(90));
            let device = if channels == 2 {
                "--stereo-device"
            } else {
                "--agent-device"
            };
            let child = cmd()
                .args([
                    "live",
                    device,
                    "alsa:filesrc",
                    "--rate",
                    &rate.to_string(),
                    "--seconds",
                    "41",
                    "--out",
                    p(&sub),
                    "--record",
                    "--no-asr",
                ])
                .env("ALSA_CONFIG_PATH", &alsa)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (channels, rate, sub, child, Instant::now())
        })
        .collect();
    for (channels, rate, sub, child, started) in runs {
        let out = child.wait_with_output().unwrap();
        let took = started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout);
        let what = format!("{channels} channel(s) at {rate} Hz");
        assert!(
            out.status.success(),
            "{what}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Paced: 41 s of capture takes about that long (a lower bound, not a speed check).
        assert!(
            took > 35.0,
            "{what}: captured 41 s in {took:.1} s: not paced?"
        );
        assert!(text.contains("started (auto)"), "{what}: {text}");
        assert!(
            text.contains("capture: 0 samples dropped"),
            "{what}: {text}"
        );
        assert!(
            text.contains("▲ gradual"),
            "{what}: the agent's jump at 25 s: {text}"
        );
        let report = std::fs::read_dir(&sub)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|f| {
                f.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("call-")
                    && f.extension().is_some_and(|x| x == "json")
            })
            .unwrap_or_else(|| panic!("{what}: no report: {text}"));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(v["files"][0]["sample_rate"], rate, "{what}");
        assert_eq!(v["files"][0]["channels"], channels, "{what}");
        assert_eq!(v["caller"].is_null(), channels == 1, "{what}");
        // The agent's loud stretch (23.3–28.9 s in the demo) is in the call.
        let jumps = v["agent"]["loudness_jumps"].as_array().unwrap();
        assert!(!jumps.is_empty(), "{what}: {}", v["agent"]);
    }
}
