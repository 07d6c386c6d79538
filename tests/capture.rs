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

/// Like [`paced_writer`], but the device stalls once: at `stall_at` it delivers nothing for
/// `stall` and then goes on with the audio due at that moment (what it missed is lost, as on a
/// real device that stops delivering).
fn stalling_writer(
    fifo: PathBuf,
    data: Vec<u8>,
    period_bytes: usize,
    stall_at: Duration,
    stall: Duration,
) {
    std::thread::spawn(move || {
        let Ok(mut f) = (loop {
            match std::fs::OpenOptions::new().write(true).open(&fifo) {
                Ok(f) => break Ok::<_, ()>(f),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }) else {
            return;
        };
        let start = Instant::now();
        let mut period = 0u64;
        let mut stalled = false;
        loop {
            let due = Duration::from_millis(10 * period);
            if !stalled && due >= stall_at {
                stalled = true;
                std::thread::sleep(stall);
                // Skip what the stalled device never delivered.
                period += stall.as_millis() as u64 / 10;
                continue;
            }
            let at = period as usize * period_bytes;
            if at >= data.len() {
                break;
            }
            let end = (at + period_bytes).min(data.len());
            if f.write_all(&data[at..end]).is_err() {
                break;
            }
            period += 1;
            if let Some(w) = Duration::from_millis(10 * period).checked_sub(start.elapsed()) {
                std::thread::sleep(w);
            }
        }
    });
}

/// 10 ms RMS envelope (dB) of 16-bit mono samples at `rate`.
fn envelope(samples: &[i16], rate: usize) -> Vec<f64> {
    samples
        .chunks(rate / 100)
        .map(|c| {
            let e = c.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / c.len() as f64;
            10.0 * (e + 1.0).log10()
        })
        .collect()
}

/// The lag (in 10 ms frames, −max..=max) at which `b` best matches `a` over `range`: the
/// highest Pearson correlation of the two envelopes.
fn best_lag(a: &[f64], b: &[f64], range: std::ops::Range<usize>, max: i64) -> i64 {
    let corr = |lag: i64| -> f64 {
        let pairs: Vec<(f64, f64)> = range
            .clone()
            .filter_map(|i| {
                let j = i as i64 + lag;
                (j >= 0 && (j as usize) < b.len() && i < a.len()).then(|| (a[i], b[j as usize]))
            })
            .collect();
        let n = pairs.len() as f64;
        let (ma, mb) = (
            pairs.iter().map(|p| p.0).sum::<f64>() / n,
            pairs.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let cov: f64 = pairs.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum();
        let va: f64 = pairs.iter().map(|p| (p.0 - ma).powi(2)).sum();
        let vb: f64 = pairs.iter().map(|p| (p.1 - mb).powi(2)).sum();
        cov / (va * vb).sqrt().max(1e-9)
    };
    (-max..=max)
        .max_by(|&x, &y| corr(x).total_cmp(&corr(y)))
        .unwrap()
}

/// Two devices (agent and caller headsets), the caller's stalling for 1.5 s mid-call: the
/// capture timestamps show the gap, the missing audio becomes silence of the same length, and
/// the recording's caller channel stays aligned with the agent's after the stall (the same
/// audio at the same time as the source, within 30 ms), as do the report's times.
#[test]
fn a_stalled_device_stays_aligned_with_the_other() {
    let dir = tmpdir();
    let rate = 16000u32;
    let mut files = Vec::new();
    for (name, ch) in [("agent", "1"), ("caller", "2")] {
        let wav = dir.path().join(format!("{name}.wav"));
        tool("sox", &[p(&fixture("demo-call.wav")), p(&wav), "remix", ch]);
        let file = dir.path().join(format!("{name}.raw"));
        raw(&wav, &file, rate, 1, 4);
        let fifo = dir.path().join(format!("{name}.fifo"));
        tool("mkfifo", &[p(&fifo)]);
        files.push((name, wav, file, fifo));
    }
    let conf = dir.path().join("asound.conf");
    let mut text = String::new();
    for (name, _, _, fifo) in &files {
        text.push_str(&format!(
            "pcm.{name}src {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n infile \"{}\"\n format \"raw\"\n}}\n",
            fifo.display()
        ));
    }
    std::fs::write(&conf, text).unwrap();
    let alsa = format!("/usr/share/alsa/alsa.conf:{}", conf.display());
    let period = (rate / 100 * 2) as usize;
    for (name, _, file, fifo) in &files {
        let data = std::fs::read(file).unwrap();
        if *name == "caller" {
            stalling_writer(
                fifo.clone(),
                data,
                period,
                Duration::from_secs(12),
                Duration::from_millis(1500),
            );
        } else {
            paced_writer(
                fifo.clone(),
                data,
                period,
                Instant::now() + Duration::from_secs(90),
            );
        }
    }
    let out = cmd()
        .args([
            "live",
            "--agent-device",
            "alsa:agentsrc",
            "--caller-device",
            "alsa:callersrc",
            "--rate",
            "16000",
            "--seconds",
            "38",
            "--out",
            p(dir.path()),
            "--record",
            "--no-asr",
        ])
        .env("ALSA_CONFIG_PATH", &alsa)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{log}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wav = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("call-")
                && f.extension().is_some_and(|x| x == "wav")
        })
        .unwrap_or_else(|| panic!("no recording: {log}"));
    let mut r = hound::WavReader::open(&wav).unwrap();
    let rec: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let (rec_agent, rec_caller): (Vec<i16>, Vec<i16>) =
        rec.chunks_exact(2).map(|c| (c[0], c[1])).unzip();
    let source = |i: usize| -> Vec<i16> {
        hound::WavReader::open(&files[i].1)
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect()
    };
    let (src_agent, src_caller) = (source(0), source(1));
    // The call may start a little after the devices: find where the recording starts in the
    // agent's source, then check the caller against the same offset after the stall.
    let (ea, ec) = (envelope(&src_agent, 16000), envelope(&src_caller, 16000));
    let (ra, rc) = (envelope(&rec_agent, 16000), envelope(&rec_caller, 16000));
    let agent_lag = best_lag(&ra, &ea, 1500..2500, 600);
    let caller_lag = best_lag(&rc, &ec, 1600..3000, 600);
    assert!(
        (agent_lag - caller_lag).abs() <= 3,
        "after the caller's stall the parties are {} ms apart (agent at {agent_lag}, caller at {caller_lag} frames)\n{log}",
        (agent_lag - caller_lag) * 10
    );
    // The stall is seen and filled, not hidden.
    assert!(
        log.contains("caller device skipped") || log.contains("caller ring overflow"),
        "the stall is reported: {log}"
    );
}
