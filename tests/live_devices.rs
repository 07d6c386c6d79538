#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! A device that fails mid-call (headset unplugged) does not end the run: the party is marked
//! lost, silence stands in for it, the supervisor reopens it with backoff, and the call's
//! report shows the gap. Devices are simulated (no sound card here); the real cpal path is in
//! tests/capture.rs.
mod common;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use callcoach::capture::{Capture, CaptureCounters};
use callcoach::live::{self, Control, Devices, LiveConfig, UiEvent};
use callcoach_coach::RuleBook;
use common::*;

struct Stop(Arc<AtomicBool>);
impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A device delivering `signal` in 10 ms periods at real-time pace; it reports an error after
/// `fail_after` periods when given.
fn device(
    signal: Arc<Vec<f32>>,
    mut ring: rtrb::Producer<f32>,
    limit: u64,
    fail_after: Option<usize>,
    stall_after: Option<usize>,
) -> Capture {
    let counters = Arc::new(CaptureCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (counters.clone(), stop.clone());
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        for (i, period) in signal.chunks(160).cycle().enumerate() {
            if s.load(Ordering::Relaxed) || c.frames.load(Ordering::Relaxed) >= limit {
                break;
            }
            if fail_after == Some(i) {
                c.failed.store(true, Ordering::Relaxed);
                break;
            }
            if stall_after == Some(i) {
                break; // goes quiet without an error (a stalled driver)
            }
            for x in period {
                if ring.push(*x).is_err() {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            c.frames.fetch_add(period.len() as u64, Ordering::Relaxed);
            let due = Duration::from_millis(10 * (i as u64 + 1));
            if let Some(w) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(w);
            }
        }
        // Keep the ring until stopped, as a device stream does.
        while !s.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    Capture::simulated(Box::new(Stop(stop)), counters)
}

/// A call started by the API (no auto start), reports in `out`, no ASR.
fn config(out: &std::path::Path, record: bool) -> LiveConfig {
    LiveConfig {
        book: RuleBook::default_book(),
        rules_name: "(default)".into(),
        agent_id: None,
        call_at_start: false,
        auto_start: false,
        auto_end_s: 30.0,
        out_dir: out.to_path_buf(),
        record,
        model: None,
        asr_off_reason: "test".into(),
        ring_ms: 500,
        listen: None,
        stop: Default::default(),
    }
}

/// The one call report written in `dir`.
fn report_in(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("the call's report")
}

fn samples(path: &std::path::Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap();
    r.samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect()
}

#[test]
fn an_unplugged_headset_is_reported_reopened_and_recorded_as_a_gap() {
    let dir = tmpdir();
    let speech = Arc::new(samples(&audio("paddlespeech-zh.wav")));
    assert_eq!(
        hound::WavReader::open(audio("paddlespeech-zh.wav"))
            .unwrap()
            .spec()
            .sample_rate,
        16000
    );
    let agent_opens = Arc::new(AtomicUsize::new(0));
    let opens = agent_opens.clone();
    let sig = speech.clone();
    let open: Box<live::Opener> = Box::new(move |id, _rate, _ch, mut rings, limit| {
        let ring = rings.remove(0);
        let limit = limit.unwrap_or(u64::MAX);
        if id == "agent-headset" {
            match opens.fetch_add(1, Ordering::Relaxed) {
                // Unplugged after 1.5 s.
                0 => Ok(device(sig.clone(), ring, limit, Some(150), None)),
                // Still unplugged at the first retry.
                1 => anyhow::bail!("no such device (unplugged)"),
                _ => Ok(device(sig.clone(), ring, limit, None, None)),
            }
        } else {
            Ok(device(sig.clone(), ring, limit, None, None))
        }
    });
    let cfg = config(dir.path(), true);
    let (control_tx, control_rx) = crossbeam_channel::unbounded();
    control_tx.send(Control::CallStart).unwrap();
    let (mut supervisor, events) = live::capture(
        &Devices::Pair {
            agent: "agent-headset".into(),
            caller: Some("softphone".into()),
        },
        16000,
        Some(5.0),
        cfg,
        control_rx,
        open,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // The caller's device delivers 5 s; the agent's is away for a while and comes back.
    while supervisor.frames() < 3 * 16000 && std::time::Instant::now() < deadline {
        supervisor.tick();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    supervisor.tick();
    supervisor.stop();
    let mut all: Vec<UiEvent> = Vec::new();
    while let Ok(e) = events.recv_timeout(Duration::from_secs(20)) {
        let end = matches!(e, UiEvent::End { .. });
        all.push(e);
        if end {
            break;
        }
    }
    assert!(
        matches!(all.last(), Some(UiEvent::End { .. })),
        "the run ends: {all:?}"
    );
    let lost = all
        .iter()
        .any(|e| matches!(e, UiEvent::PartyLost { party, .. } if party.name() == "agent"));
    let note = all
        .iter()
        .any(|e| matches!(e, UiEvent::Note(n) if n.contains("still unavailable")));
    let gap = all.iter().find_map(|e| match e {
        UiEvent::PartyRestored { gap_ms, .. } => Some(*gap_ms),
        _ => None,
    });
    assert!(lost, "{all:?}");
    assert!(note, "the failed retry is shown");
    // Back after the first retry failed: 0.5 s + 1 s of backoff (± scheduling).
    let gap = gap.expect("the agent's device came back");
    assert!((1300..3000).contains(&gap), "gap {gap} ms");
    assert!(agent_opens.load(Ordering::Relaxed) >= 3);
    let report = report_in(dir.path());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let w = v["warnings"].as_array().unwrap();
    let lost_w = w
        .iter()
        .find(|w| w["code"] == "device-lost")
        .expect("the gap is in the report");
    assert!(
        lost_w["message"].as_str().unwrap().contains("agent"),
        "{lost_w}"
    );
    // The parties stay aligned: the recording has both for the whole call.
    let dur = v["summary"]["duration_s"].as_f64().unwrap();
    let wav = report.with_extension("wav");
    let r = hound::WavReader::open(&wav).unwrap();
    assert_eq!(r.spec().channels, 2);
    let rec_s = r.duration() as f64 / 16000.0;
    assert!(
        (rec_s - dur).abs() < 0.02,
        "recording {rec_s} s, report {dur} s"
    );
    assert!(dur > 4.0, "{dur}");
}

/// The caller's device goes quiet (no error) while the agent's goes on: the agent's audio is
/// still analysed (its ring would otherwise fill), and stopping ends the run and writes the call.
#[test]
fn a_stalled_device_neither_blocks_the_other_nor_the_end() {
    let dir = tmpdir();
    let speech = Arc::new(samples(&audio("paddlespeech-zh.wav")));
    let open: Box<live::Opener> = Box::new(move |id, _rate, _ch, mut rings, limit| {
        let ring = rings.remove(0);
        let stall = (id == "softphone").then_some(100);
        Ok(device(
            speech.clone(),
            ring,
            limit.unwrap_or(u64::MAX),
            None,
            stall,
        ))
    });
    let cfg = config(dir.path(), false);
    let (control_tx, control_rx) = crossbeam_channel::unbounded();
    control_tx.send(Control::CallStart).unwrap();
    let (mut supervisor, events) = live::capture(
        &Devices::Pair {
            agent: "agent-headset".into(),
            caller: Some("softphone".into()),
        },
        16000,
        None,
        cfg,
        control_rx,
        open,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    supervisor.tick();
    supervisor.stop();
    let mut ended = false;
    while let Ok(e) = events.recv_timeout(Duration::from_secs(10)) {
        if matches!(e, UiEvent::End { .. }) {
            ended = true;
            break;
        }
    }
    assert!(ended, "the run ends after stop");
    let report = report_in(dir.path());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    // The agent's 3 s are there although the caller's device went quiet after 1 s.
    let dur = v["summary"]["duration_s"].as_f64().unwrap();
    assert!(dur > 2.5, "{dur}");
}
