//! `callcoach live --input FILE`: a recording replayed as if it were live (optionally at
//! real-time pace) through the same pipeline as `analyze`: source → lock-free rings (sized in
//! milliseconds; when full, drop and count) → feature/coach thread → UI channel. Capture from
//! sound devices plugs in as another source.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use callcoach_audio::call::{CallAnalyzer, CallConfig, Party};
use callcoach_audio::decode::Decoder;
use callcoach_coach::{Coach, Event, RuleBook, Warning, WarningState};
use crossbeam_channel::{bounded, Receiver};
use rtrb::RingBuffer;

use crate::coaching::CoachFeed;

/// Call control from outside the audio (local HTTP API, hotkeys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    HoldStart,
    HoldEnd,
    CallEnd,
}

type Ring = (rtrb::Producer<f32>, rtrb::Consumer<f32>);

/// The agent's and the caller's rings, `ring_ms` of audio each; returns their capacity too.
fn party_rings(rate: u32, ring_ms: u32) -> (usize, Ring, Ring) {
    let cap = (rate as usize * ring_ms as usize / 1000).max(1024);
    (
        cap,
        RingBuffer::<f32>::new(cap),
        RingBuffer::<f32>::new(cap),
    )
}

/// What the live run hands the screen.
#[derive(Debug, Clone)]
pub enum UiEvent {
    Warning {
        warning: Box<Warning>,
        latency_ms: Option<f64>,
    },
    /// Samples dropped because a ring was full (the pipeline fell behind).
    Overflow {
        party: Party,
        samples: u64,
    },
    End {
        call_ms: u64,
    },
    /// A call-control event was applied at this call time.
    Control {
        control: Control,
        call_ms: u64,
    },
}

/// Options of a replayed live call.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub input: PathBuf,
    pub realtime: bool,
    /// Ring size per party, milliseconds of audio.
    pub ring_ms: u32,
    pub book: RuleBook,
}

/// Starts the source and pipeline threads; returns the UI event stream.
pub fn replay(
    opts: ReplayOptions,
    control: Receiver<Control>,
) -> anyhow::Result<Receiver<UiEvent>> {
    let mut decoder = Decoder::open(&opts.input)?;
    let rate = decoder.rate();
    let channels = decoder.channels();
    let parties = if channels >= 2 { 2 } else { 1 };
    let (cap, (mut agent_tx, agent_rx), (mut caller_tx, caller_rx)) =
        party_rings(rate, opts.ring_ms);
    let (ui_tx, ui_rx) = bounded::<UiEvent>(256);
    let start = Instant::now();
    let ui_source = ui_tx.clone();
    // Source: decode and push; never waits on the pipeline (full ring: drop and count).
    std::thread::Builder::new()
        .name("callcoach-source".into())
        .spawn(move || {
            let mut sent: u64 = 0;
            let mut dropped = [0u64; 2];
            while let Ok(Some(block)) = decoder.next_block() {
                let frames = block.len() / channels;
                for (ch, tx) in [&mut agent_tx, &mut caller_tx]
                    .into_iter()
                    .enumerate()
                    .take(parties)
                {
                    for x in block.iter().skip(ch).step_by(channels).take(frames) {
                        // A device cannot wait: at real-time pace a full ring drops and counts. A
                        // file replayed as fast as possible waits for room instead.
                        while tx.push(*x).is_err() {
                            if opts.realtime {
                                dropped[ch] += 1;
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                }
                sent += frames as u64;
                if opts.realtime {
                    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
            for (i, d) in dropped.iter().enumerate() {
                if *d > 0 {
                    let party = if i == 0 { Party::Agent } else { Party::Caller };
                    let _ = ui_source.try_send(UiEvent::Overflow { party, samples: *d });
                }
            }
            // Dropping the producers tells the pipeline the stream has ended.
        })?;
    spawn_pipeline(
        rate,
        parties,
        agent_rx,
        caller_rx,
        cap,
        opts.book,
        opts.realtime.then_some(start),
        ui_tx,
        control,
    )?;
    Ok(ui_rx)
}

/// The feature/coach thread: rings → features → coach → UI events. `clock` (the moment the
/// audio at call time 0 entered) turns warnings into latencies.
#[allow(clippy::too_many_arguments)]
pub fn spawn_pipeline(
    rate: u32,
    parties: usize,
    mut agent_rx: rtrb::Consumer<f32>,
    mut caller_rx: rtrb::Consumer<f32>,
    cap: usize,
    book: RuleBook,
    clock: Option<Instant>,
    ui_tx: crossbeam_channel::Sender<UiEvent>,
    control: Receiver<Control>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("callcoach-pipeline".into())
        .spawn(move || {
            let run = || -> anyhow::Result<()> {
                let mut analyzer = CallAnalyzer::new(
                    CallConfig::default(),
                    Some(rate),
                    (parties == 2).then_some(rate),
                )?;
                let mut feed = CoachFeed::new(Coach::new(book, None), Default::default());
                let mut buf = vec![0.0f32; cap];
                let send = |feed: &mut CoachFeed| {
                    for w in feed.take_new() {
                        let latency_ms = clock
                            .map(|c| (c.elapsed().as_secs_f64() * 1000.0 - w.t_ms as f64).max(0.0));
                        let _ = ui_tx.try_send(UiEvent::Warning {
                            warning: Box::new(w.clone()),
                            latency_ms,
                        });
                    }
                };
                loop {
                    let mut moved = false;
                    for (party, rx) in [
                        (Party::Agent, &mut agent_rx),
                        (Party::Caller, &mut caller_rx),
                    ]
                    .into_iter()
                    .take(parties)
                    {
                        let n = rx.slots();
                        if n > 0 {
                            let chunk = rx.read_chunk(n).context("ring")?;
                            let (a, b) = chunk.as_slices();
                            buf[..a.len()].copy_from_slice(a);
                            buf[a.len()..a.len() + b.len()].copy_from_slice(b);
                            chunk.commit_all();
                            analyzer.push(party, &buf[..n], &mut |o| feed.on(&o))?;
                            moved = true;
                        }
                    }
                    while let Ok(c) = control.try_recv() {
                        // Call time now: what has entered the analyser.
                        let t_ms = analyzer.frames_total() * 10;
                        feed.control(match c {
                            Control::HoldStart => Event::HoldStart { t_ms },
                            Control::HoldEnd => Event::HoldEnd { t_ms },
                            Control::CallEnd => Event::CallEnd {
                                t_ms,
                                hung_up_by: None,
                            },
                        });
                        let _ = ui_tx.try_send(UiEvent::Control {
                            control: c,
                            call_ms: t_ms,
                        });
                    }
                    send(&mut feed);
                    let ended =
                        agent_rx.is_abandoned() && (parties == 1 || caller_rx.is_abandoned());
                    if ended && agent_rx.is_empty() && caller_rx.is_empty() {
                        break;
                    }
                    if !moved {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                analyzer.finish(&mut |o| feed.on(&o))?;
                let end = analyzer.frames_total() * 10;
                send(&mut feed);
                let _ = feed.finish(end);
                let _ = ui_tx.send(UiEvent::End { call_ms: end });
                Ok(())
            };
            if let Err(e) = run() {
                eprintln!("error: {e:#}");
            }
        })?;
    Ok(())
}

/// Where live audio comes from.
#[derive(Debug, Clone)]
pub enum Devices {
    /// One device, agent on channel 0 (left), caller on channel 1.
    Stereo(String),
    /// Separate devices; the caller's may be absent (agent only).
    Pair {
        agent: String,
        caller: Option<String>,
    },
}

/// Captures from sound devices into the pipeline. Returns the running captures (drop them to
/// stop) and the UI events.
pub fn capture(
    devices: &Devices,
    rate: u32,
    ring_ms: u32,
    max_seconds: Option<f64>,
    book: RuleBook,
    control: Receiver<Control>,
) -> anyhow::Result<(Vec<crate::capture::Capture>, Receiver<UiEvent>)> {
    let (cap, (agent_tx, agent_rx), (caller_tx, caller_rx)) = party_rings(rate, ring_ms);
    let max_frames = max_seconds.map(|s| (s * rate as f64) as u64);
    let (captures, parties) = match devices {
        Devices::Stereo(id) => (
            vec![crate::capture::open(
                id,
                rate,
                2,
                vec![agent_tx, caller_tx],
                max_frames,
            )?],
            2,
        ),
        Devices::Pair {
            agent,
            caller: None,
        } => (
            vec![crate::capture::open(
                agent,
                rate,
                1,
                vec![agent_tx],
                max_frames,
            )?],
            1,
        ),
        Devices::Pair {
            agent,
            caller: Some(c),
        } => (
            vec![
                crate::capture::open(agent, rate, 1, vec![agent_tx], max_frames)?,
                crate::capture::open(c, rate, 1, vec![caller_tx], max_frames)?,
            ],
            2,
        ),
    };
    let (ui_tx, ui_rx) = bounded::<UiEvent>(256);
    spawn_pipeline(
        rate,
        parties,
        agent_rx,
        caller_rx,
        cap,
        book,
        Some(Instant::now()),
        ui_tx,
        control,
    )?;
    Ok((captures, ui_rx))
}

/// `--ui text`: prints warnings as they are raised and cleared; returns raise latencies.
pub fn text_ui(events: Receiver<UiEvent>) -> Vec<f64> {
    let mut latencies = Vec::new();
    for e in events {
        match e {
            UiEvent::Warning {
                warning: w,
                latency_ms,
            } => {
                let lat = latency_ms
                    .map(|l| format!(" (+{l:.0} ms)"))
                    .unwrap_or_default();
                match w.state {
                    WarningState::Raised => {
                        if let Some(l) = latency_ms {
                            latencies.push(l);
                        }
                        let shown = if w.hidden.is_some() {
                            " [not shown]"
                        } else {
                            ""
                        };
                        println!(
                            "{:>7.1} s  ▲ {:<13} {}{shown}{lat}\n            参考话术: {}",
                            w.t_ms as f64 / 1000.0,
                            w.rule,
                            w.message_zh,
                            w.line
                        );
                    }
                    WarningState::Updated => println!(
                        "{:>7.1} s  ~ {:<13} {}",
                        w.t_ms as f64 / 1000.0,
                        w.rule,
                        w.message_zh
                    ),
                    WarningState::Cleared => println!(
                        "{:>7.1} s  ▽ {:<13} cleared",
                        w.t_ms as f64 / 1000.0,
                        w.rule
                    ),
                }
            }
            UiEvent::Overflow { party, samples } => println!(
                "  ! {} ring overflow: {samples} samples dropped",
                party.name()
            ),
            UiEvent::End { call_ms } => println!("call ended at {:.1} s", call_ms as f64 / 1000.0),
            UiEvent::Control { control, call_ms } => {
                println!("{:>7.1} s  ● {control:?}", call_ms as f64 / 1000.0)
            }
        }
        // Show it now, also when stdout is a pipe or a file.
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
    latencies
}
