//! `callcoach`: command-line entry point. Parsing and wiring only; the work is in the crates.

mod bench;
mod hub_cli;

mod summary;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use callcoach::report::{AsrReport, CoachReport, FullReport, SpeechRates};
use callcoach_audio::analyze::{analyze_call_observed, AgentChannel, CallInput};
use callcoach_audio::call::CallConfig;
use callcoach_coach::rulebook::{check, RuleBook, DEFAULT_RULES};
use callcoach_coach::{transcript, Party};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "callcoach",
    version,
    about = "Real-time speech-analysis assistant for call-centre agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse a recorded call: loudness, voice activity, silences, talk-over, jumps, speech rate.
    Analyze {
        /// Stereo call (agent left by default) or the agent's mono recording.
        call: PathBuf,
        /// The caller's mono recording, when the parties are in two files.
        #[arg(long)]
        caller: Option<PathBuf>,
        /// Which channel of a stereo call is the agent.
        #[arg(long, value_enum, default_value_t = ChannelArg::Left)]
        agent_channel: ChannelArg,
        /// Write the full JSON report here ("-" for standard output).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Analyse the part that is there when a file is shorter than its header says.
        #[arg(long)]
        allow_truncated: bool,
        /// Rule book (TOML); the embedded defaults when omitted.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Timed transcript (JSON lines or SRT); `agent=FILE` / `caller=FILE` for a one-party
        /// SRT without speaker prefixes. Repeatable.
        #[arg(long)]
        transcript: Vec<String>,
        /// Agent id, for a per-agent speech-rate band in the rule book.
        #[arg(long)]
        agent_id: Option<String>,
        /// Date of the call (YYYY-MM-DD), for the holiday greeting.
        #[arg(long)]
        call_date: Option<String>,
        /// Whisper model (path or name, see `callcoach models list`); default: the search order.
        #[arg(long)]
        model: Option<String>,
        /// Do not transcribe (text rules then need --transcript).
        #[arg(long)]
        no_asr: bool,
    },
    /// Input sound devices with their rates and channels.
    Devices,
    /// Live coaching from sound devices, or a recording replayed as a live call.
    Live {
        /// Recording to replay as a live call (stereo: agent left).
        #[arg(long, conflicts_with_all = ["stereo_device", "agent_device"])]
        input: Option<PathBuf>,
        /// One stereo device: agent left, caller right (ids from `callcoach devices`).
        #[arg(long, conflicts_with = "agent_device")]
        stereo_device: Option<String>,
        /// The agent's microphone.
        #[arg(long)]
        agent_device: Option<String>,
        /// The caller's audio (optional).
        #[arg(long, requires = "agent_device")]
        caller_device: Option<String>,
        /// Capture sample rate.
        #[arg(long, default_value_t = 16000)]
        rate: u32,
        /// Stop after this many seconds of captured audio.
        #[arg(long)]
        seconds: Option<f64>,
        /// Ring buffer per party, milliseconds of audio.
        #[arg(long, default_value_t = 500)]
        ring_ms: u32,
        /// Serve the call-control API (POST /v1/call/start|end, /v1/hold/start|end) here,
        /// e.g. 127.0.0.1:7788.
        #[arg(long)]
        api: Option<String>,
        /// A file holding the API token (at least 16 characters): every request must send
        /// `Authorization: Bearer TOKEN`. Needed for a non-loopback --api address. Also
        /// $CALLCOACH_API_TOKEN.
        #[arg(long)]
        api_token_file: Option<PathBuf>,
        /// Replay at real-time pace (otherwise as fast as possible).
        #[arg(long)]
        realtime: bool,
        /// Screen: `text` prints warnings as they are raised and cleared; `overlay` opens the
        /// agent's always-on-top window (and prints the same).
        #[arg(long, default_value = "text")]
        ui: String,
        /// The overlay's mode: `compact` (one slim bar) or `full`; default: the one used last
        /// (compact the first time). F7 switches in the window.
        #[arg(long, value_enum)]
        overlay: Option<OverlayModeArg>,
        /// Rule book (TOML); the embedded defaults when omitted.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Agent id, for a per-agent speech-rate band in the rule book.
        #[arg(long)]
        agent_id: Option<String>,
        /// How calls start: `auto` (API, hotkeys, or sustained speech of both parties) or
        /// `api` (API and hotkeys only). Default: `auto` for devices; a replayed recording is
        /// one call from its first sample unless this is given.
        #[arg(long, value_enum)]
        call_start: Option<CallStartArg>,
        /// End an auto-started call after this many seconds in which nobody spoke.
        #[arg(long, default_value_t = 30.0)]
        auto_end_s: f64,
        /// Directory for each call's report (call-ID.json), transcript and recording.
        #[arg(long, default_value = "callcoach-calls")]
        out: PathBuf,
        /// Record each call (16-bit WAV, agent left) beside its report.
        #[arg(long)]
        record: bool,
        /// Whisper model (path or name, see `callcoach models list`); default: the search order.
        #[arg(long)]
        model: Option<String>,
        /// Do not transcribe (text rules stay quiet).
        #[arg(long)]
        no_asr: bool,
        /// The supervisors' hub to publish to (ws://HOST:PORT); needs --agent-id and a token.
        #[arg(long, requires = "agent_id")]
        hub: Option<String>,
        /// A file holding this agent's hub token (`callcoach hub token AGENT`). Also
        /// $CALLCOACH_HUB_TOKEN.
        #[arg(long, requires = "hub")]
        hub_token_file: Option<PathBuf>,
        /// Where messages wait until the hub has them (default: OUT/hub-spool).
        #[arg(long, requires = "hub")]
        hub_spool: Option<PathBuf>,
    },
    /// Whisper models: list, fetch, verify, path.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// The supervisors' hub: serve it, add users, make agent tokens, read the audit log.
    Hub {
        #[command(subcommand)]
        action: hub_cli::HubAction,
    },
    /// Print or check a rule book.
    Rules {
        /// Print the embedded default rule book.
        #[arg(long, conflicts_with = "check")]
        print_default: bool,
        /// Check a rule book and point at every mistake.
        #[arg(long)]
        check: Option<PathBuf>,
    },
    /// Measure the real-time factor of the feature path on a 10-minute stereo call.
    Bench {
        /// Minutes of audio per rate.
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Sample rates to measure.
        #[arg(long, value_delimiter = ',', default_values_t = vec![8000u32, 16000, 48000])]
        rates: Vec<u32>,
        /// Also measure the ASR pass with these models (names or paths), one after another.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Instead: live warning latency per rule over this many 47 s rounds replayed in real
        /// time at each of --rates (8000 as µ-law), from each rule's condition in the audio
        /// (transcript latency with the first of --models).
        #[arg(long)]
        latency: Option<usize>,
        /// Instead: character error rate of `analyze` against whole-clip decoding with the same
        /// model, on the clips of this manifest (`path<TAB>reference` per line; first of --models).
        #[arg(long)]
        asr_accuracy: Option<PathBuf>,
        /// Instead: model-free speech-rate error (uncalibrated and calibrated) on the clips of
        /// this manifest, at 16 kHz and 8 kHz µ-law, tempo 1.0, 0.8 and 1.25 (needs sox).
        #[arg(long)]
        rate_accuracy: Option<PathBuf>,
        /// Instead: `analyze`'s CER and speed on this manifest's clips under several decoding
        /// settings (threads, audio_ctx, beam search, flash attention; first of --models).
        #[arg(long)]
        asr_settings: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ModelsAction {
    /// The models of the manifest, and which are installed where.
    List,
    /// Download a model (resumable), check it and move it into place.
    Fetch {
        name: String,
        /// Directory to put it in (default: the user data directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Check installed models (or one, by name or path) against the manifest.
    Verify { model: Option<String> },
    /// Print the path of the model that would be used (`--model`/$CALLCOACH_MODEL/search order).
    Path { model: Option<String> },
    /// Convert a faster-whisper / CTranslate2 Whisper directory (model.bin + vocabulary.txt,
    /// vocabulary.json or tokenizer.json; float16, float32, int8 or int16 weights) into a
    /// whisper.cpp ggml model, and check that it loads.
    Import {
        /// The CTranslate2 model directory.
        dir: PathBuf,
        /// Model name: the file is ggml-NAME.bin (default: SIZE-ct2, e.g. base-ct2, from the
        /// model's size; `--model NAME` then finds it).
        #[arg(long)]
        name: Option<String>,
        /// Directory to put it in (default: the user data directory).
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OverlayModeArg {
    Compact,
    Full,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum CallStartArg {
    Auto,
    Api,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChannelArg {
    Left,
    Right,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Rules {
            print_default,
            check: file,
        } => rules(print_default, file),
        Command::Models { action } => models(action),
        Command::Hub { action } => hub_cli::run(action),
        Command::Devices => {
            for d in callcoach::capture::list()? {
                let mut channels: Vec<u16> = d.configs.iter().map(|c| c.0).collect();
                channels.sort_unstable();
                channels.dedup();
                let lo = d.configs.iter().map(|c| c.1).min().unwrap_or(0);
                let hi = d.configs.iter().map(|c| c.2).max().unwrap_or(0);
                let mut formats: Vec<&str> = d.configs.iter().map(|c| c.3.as_str()).collect();
                formats.sort_unstable();
                formats.dedup();
                println!(
                    "{}  {}\n    channels {:?}, {lo}–{hi} Hz, {}",
                    d.id,
                    d.description,
                    channels,
                    formats.join(" ")
                );
            }
            Ok(())
        }
        Command::Live {
            input,
            stereo_device,
            agent_device,
            caller_device,
            rate,
            seconds,
            ring_ms,
            api,
            api_token_file,
            realtime,
            ui,
            overlay,
            rules,
            agent_id,
            call_start,
            auto_end_s,
            out,
            record,
            model,
            no_asr,
            hub,
            hub_token_file,
            hub_spool,
        } => {
            use callcoach::live;
            if ui != "text" && ui != "overlay" {
                anyhow::bail!("--ui {ui}: use `text` (headless) or `overlay` (the agent's window)");
            }
            let book = match &rules {
                Some(p) => RuleBook::load(p)?,
                None => RuleBook::default_book(),
            };
            // Ctrl-C (or closing the overlay) ends the audio: the call in progress is finished
            // and its report written; a second Ctrl-C quits at once.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let on_signal = stop.clone();
            ctrlc::set_handler(move || {
                if on_signal.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    std::process::exit(130);
                }
            })
            .context("installing the Ctrl-C handler")?;
            let (model, asr_off_reason) = if no_asr {
                (None, "--no-asr".to_string())
            } else {
                match callcoach_asr::models::resolve(model.as_deref()) {
                    Ok(p) => (Some(p), String::new()),
                    Err(e) => (None, e.to_string()),
                }
            };
            if model.is_none() {
                println!("ASR off: {asr_off_reason}");
            }
            // The hub link: its spool and audio tap exist before the pipeline does.
            let listening = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (audio_tx, audio_rx) = crossbeam_channel::bounded::<Vec<u8>>(32);
            let hub_cfg = match &hub {
                Some(url) => {
                    let token = match &hub_token_file {
                        Some(f) => std::fs::read_to_string(f)
                            .with_context(|| format!("{}: cannot read the hub token", f.display()))?
                            .trim()
                            .to_string(),
                        None => std::env::var("CALLCOACH_HUB_TOKEN").map_err(|_| {
                            anyhow::anyhow!("--hub {url}: give the agent's token with --hub-token-file FILE or $CALLCOACH_HUB_TOKEN (an admin makes one with `callcoach hub token AGENT`)")
                        })?,
                    };
                    Some(callcoach::hub_link::HubLinkConfig {
                        url: url.clone(),
                        token,
                        agent: agent_id.clone().unwrap_or_default(),
                        spool_dir: hub_spool.clone().unwrap_or_else(|| out.join("hub-spool")),
                    })
                }
                None => None,
            };
            let cfg = live::LiveConfig {
                book,
                rules_name: rules
                    .as_ref()
                    .map_or_else(|| "(default)".to_string(), |p| p.display().to_string()),
                agent_id,
                call_at_start: input.is_some() && call_start.is_none(),
                auto_start: call_start.unwrap_or(CallStartArg::Auto) == CallStartArg::Auto,
                auto_end_s,
                out_dir: out,
                record,
                model,
                asr_off_reason,
                ring_ms,
                listen: hub_cfg.as_ref().map(|_| live::ListenTap {
                    on: listening.clone(),
                    tx: audio_tx,
                }),
                stop: stop.clone(),
            };
            let (control_tx, control_rx) = crossbeam_channel::unbounded();
            let control_tx_ui = control_tx.clone();
            if let (Some(f), None) = (&api_token_file, &api) {
                anyhow::bail!(
                    "--api-token-file {} without --api: the token protects the call-control API, which is off; add --api ADDRESS:PORT or drop the token file",
                    f.display()
                );
            }
            if let Some(addr) = api {
                let token = match api_token_file {
                    Some(f) => Some(
                        std::fs::read_to_string(&f)
                            .with_context(|| format!("{}: cannot read the API token", f.display()))?
                            .trim()
                            .to_string(),
                    ),
                    None => std::env::var("CALLCOACH_API_TOKEN")
                        .ok()
                        .filter(|t| !t.is_empty()),
                };
                let bound = callcoach::api::serve(&addr, token, control_tx)?;
                println!("call-control API on http://{bound}");
            }
            let devices = match (stereo_device, agent_device) {
                (Some(s), _) => Some(live::Devices::Stereo(s)),
                (None, Some(a)) => Some(live::Devices::Pair {
                    agent: a,
                    caller: caller_device,
                }),
                (None, None) => None,
            };
            let overlay_opts = callcoach_overlay::OverlayOptions {
                rate_band: (
                    cfg.book.rules.rate.min_cpm as f32,
                    cfg.book.rules.rate.max_cpm as f32,
                ),
                loudness_band: (
                    cfg.book.rules.volume.min_lufs as f32,
                    cfg.book.rules.volume.max_lufs as f32,
                ),
                cjk_font: None,
                mode: overlay.map(|m| match m {
                    OverlayModeArg::Compact => callcoach_overlay::Mode::Compact,
                    OverlayModeArg::Full => callcoach_overlay::Mode::Full,
                }),
                state_file: callcoach_overlay::geometry::default_state_file(),
            };
            let (events, devices_done) = match (input, devices) {
                (Some(input), _) => (live::replay(&input, realtime, cfg, control_rx)?, None),
                (None, Some(devices)) => {
                    // The devices live on a thread of their own (their streams stay where they
                    // were opened) so that the main thread is free for the window.
                    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
                    let device_stop = stop.clone();
                    let worker = std::thread::spawn(move || -> anyhow::Result<u64> {
                        let (mut supervisor, events) = match live::capture(
                            &devices,
                            rate,
                            seconds,
                            cfg,
                            control_rx,
                            Box::new(callcoach::capture::open),
                        ) {
                            Ok(x) => x,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return Ok(0);
                            }
                        };
                        let _ = ready_tx.send(Ok(events));
                        let limit = seconds.map(|s| (s * rate as f64) as u64);
                        // Without --seconds the run goes on until the process is stopped.
                        while limit.is_none_or(|l| supervisor.frames() < l)
                            && !device_stop.load(std::sync::atomic::Ordering::Relaxed)
                        {
                            supervisor.tick();
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                        supervisor.tick();
                        let dropped = supervisor.dropped();
                        supervisor.stop();
                        Ok(dropped)
                    });
                    let events = ready_rx
                        .recv()
                        .map_err(|_| anyhow::anyhow!("the capture thread failed"))??;
                    (events, Some(worker))
                }
                (None, None) => anyhow::bail!("say where the audio comes from: --stereo-device ID, --agent-device ID [--caller-device ID], or --input FILE"),
            };
            // With a hub, every event also goes to the hub link (spooled, never waiting on the
            // network); whispers and the link's state come back into the screen's stream.
            let (events, tee) = match hub_cfg {
                Some(hc) => {
                    let (screen_tx, screen_rx) = crossbeam_channel::bounded::<live::UiEvent>(1024);
                    let link = callcoach::hub_link::HubLink::start(
                        hc,
                        screen_tx.clone(),
                        audio_rx,
                        listening,
                    )?;
                    let tee = std::thread::Builder::new()
                        .name("callcoach-hub-tee".into())
                        .spawn(move || {
                            for e in events {
                                link.observe(&e);
                                let end = matches!(e, live::UiEvent::End { .. });
                                if end {
                                    let left = link.finish(std::time::Duration::from_secs(10));
                                    let _ = screen_tx.send(live::UiEvent::HubStatus(if left == 0 {
                                        "hub: everything delivered".to_string()
                                    } else {
                                        format!("hub: {left} messages stay in the spool for the next run")
                                    }));
                                    let _ = screen_tx.send(e);
                                    break;
                                }
                                let _ = screen_tx.send(e);
                            }
                        })?;
                    (screen_rx, Some(tee))
                }
                None => (events, None),
            };
            let (mut lat, _) = if ui == "overlay" {
                callcoach::screen::run_overlay(events, control_tx_ui, overlay_opts, stop.clone())?
            } else {
                let r = live::text_ui(events);
                // The run has ended (or failed): the device thread stops too.
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                r
            };
            if let Some(t) = tee {
                let _ = t.join();
            }
            if let Some(worker) = devices_done {
                let dropped = worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("the capture thread failed"))??;
                println!("capture: {dropped} samples dropped (ring full)");
            }
            if !lat.is_empty() {
                let (p50, p99) = live::percentiles(&mut lat);
                println!("warning latency after the condition's time (incl. each rule's own window): p50 {p50:.0} ms, p99 {p99:.0} ms");
            }
            Ok(())
        }
        Command::Analyze {
            call,
            caller,
            agent_channel,
            json,
            allow_truncated,
            rules,
            transcript,
            agent_id,
            call_date,
            model,
            no_asr,
        } => {
            let input = CallInput {
                call,
                caller,
                agent_channel: match agent_channel {
                    ChannelArg::Left => AgentChannel::Left,
                    ChannelArg::Right => AgentChannel::Right,
                },
                allow_truncated,
            };
            let mut book = match &rules {
                Some(path) => RuleBook::load(path)?,
                None => RuleBook::default_book(),
            };
            if let Some(date) = call_date {
                book.settings.call_date = date;
            }
            let segments = load_transcripts(&transcript)?;
            let asr_cfg = callcoach::transcribe::asr_config_for(&book);
            let coach = callcoach_coach::Coach::new(book, agent_id.as_deref());
            let end_of = |a: &callcoach_audio::analyze::CallReport| {
                (a.summary.duration_s * 1000.0).round() as u64
            };
            let model_path = if transcript.is_empty() && !no_asr {
                Some(callcoach_asr::models::resolve(model.as_deref()))
            } else {
                None
            };
            let (audio, asr, (coach, warnings)) = match model_path {
                Some(Ok(path)) => {
                    // One pass over the audio: features and ASR together; the coach then runs
                    // on the recorded feature output with the transcript in place.
                    let mut outputs = Vec::new();
                    let (audio, outcome) = callcoach::transcribe::analyze_with_asr(
                        &input,
                        &CallConfig::default(),
                        &path,
                        asr_cfg,
                        &mut |o| outputs.push(*o),
                    )?;
                    let mut segments = segments;
                    segments.segments.extend(outcome.segments.iter().cloned());
                    let mut feed = callcoach::coaching::CoachFeed::new(coach, segments);
                    for o in &outputs {
                        feed.on(o);
                    }
                    let end = end_of(&audio);
                    let asr = AsrReport {
                        status: "on".into(),
                        reason: None,
                        outcome: Some(outcome),
                    };
                    (audio, asr, feed.finish(end))
                }
                other => {
                    let asr = match other {
                        Some(Err(e)) => AsrReport {
                            status: "off".into(),
                            reason: Some(e.to_string()),
                            outcome: None,
                        },
                        _ if !transcript.is_empty() => AsrReport {
                            status: "skipped".into(),
                            reason: Some("a transcript was given (--transcript)".into()),
                            outcome: None,
                        },
                        _ => AsrReport {
                            status: "off".into(),
                            reason: Some("--no-asr".into()),
                            outcome: None,
                        },
                    };
                    let mut feed = callcoach::coaching::CoachFeed::new(coach, segments);
                    let audio =
                        analyze_call_observed(&input, &CallConfig::default(), &mut |o| feed.on(o))?;
                    let end = end_of(&audio);
                    (audio, asr, feed.finish(end))
                }
            };
            let mut audio = audio;
            callcoach::report::rates_from_coach(&mut audio, &coach);
            let report = FullReport {
                call: audio,
                asr: asr.clone(),
                coach: CoachReport {
                    rules: rules
                        .as_ref()
                        .map_or_else(|| "(default)".to_string(), |p| p.display().to_string()),
                    transcript: !transcript.is_empty()
                        || asr.outcome.as_ref().is_some_and(|o| !o.segments.is_empty()),
                    warnings,
                    scores: coach.scores(),
                    speech_rate: SpeechRates::of(&coach),
                    checklist: callcoach::report::ChecklistItem::of(&coach),
                },
            };
            let text = serde_json::to_string_pretty(&report).context("serialising the report")?;
            match json.as_deref() {
                Some(p) if p.as_os_str() == "-" => println!("{text}"),
                Some(p) => {
                    print!(
                        "{}{}",
                        summary::render(&report.call, &report.coach.warnings, &report.coach.scores),
                        report.coach.speech_rate.line() + &asr.line()
                    );
                    std::fs::write(p, text + "\n").with_context(|| {
                        format!("{}: cannot write the JSON report", p.display())
                    })?;
                    println!("JSON report: {}", p.display());
                }
                None => print!(
                    "{}{}",
                    summary::render(&report.call, &report.coach.warnings, &report.coach.scores),
                    report.coach.speech_rate.line() + &asr.line()
                ),
            }
            Ok(())
        }
        Command::Bench {
            asr_settings: Some(manifest),
            models,
            ..
        } => {
            let model = callcoach_asr::models::resolve(models.first().map(String::as_str))?;
            bench::run_asr_settings(&manifest, &model)
        }
        Command::Bench {
            rate_accuracy: Some(manifest),
            ..
        } => bench::run_rate_accuracy(&manifest),
        Command::Bench {
            asr_accuracy: Some(manifest),
            models,
            ..
        } => {
            let model = callcoach_asr::models::resolve(models.first().map(String::as_str))?;
            bench::run_accuracy(&manifest, &model)
        }
        Command::Bench {
            latency: Some(rounds),
            models,
            rates,
            ..
        } => {
            let model = match models.first() {
                Some(m) => Some(callcoach_asr::models::resolve(Some(m))?),
                None => None,
            };
            bench::run_latency(rounds, &rates, model)
        }
        Command::Bench {
            minutes,
            rates,
            models,
            ..
        } => {
            bench::run(minutes, &rates)?;
            if !models.is_empty() {
                bench::run_asr(&models)?;
            }
            Ok(())
        }
    }
}

fn load_transcripts(args: &[String]) -> anyhow::Result<transcript::Transcript> {
    let mut all = transcript::Transcript::default();
    for arg in args {
        let (party, path) = match arg.split_once('=') {
            Some(("agent", p)) => (Some(Party::Agent), p),
            Some(("caller", p)) => (Some(Party::Caller), p),
            _ => (None, arg.as_str()),
        };
        let t = transcript::load_with_events(std::path::Path::new(path), party)?;
        all.segments.extend(t.segments);
        all.events.extend(t.events);
    }
    Ok(all)
}

fn rules(print_default: bool, file: Option<PathBuf>) -> anyhow::Result<()> {
    match (print_default, file) {
        (true, _) => {
            print!("{DEFAULT_RULES}");
            Ok(())
        }
        (false, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{}: cannot read the rule book", path.display()))?;
            let problems = check(&text);
            if problems.is_empty() {
                println!("{}: OK", path.display());
                return Ok(());
            }
            for p in &problems {
                println!(
                    "{}:{}:{}: {}: {}",
                    path.display(),
                    p.line,
                    p.column,
                    p.field,
                    p.message
                );
            }
            anyhow::bail!(
                "{}: {} problem(s) in the rule book",
                path.display(),
                problems.len()
            )
        }
        (false, None) => anyhow::bail!(
            "say what to do: `callcoach rules --print-default` or `callcoach rules --check FILE`"
        ),
    }
}

fn models(action: ModelsAction) -> anyhow::Result<()> {
    use callcoach_asr::models;
    match action {
        ModelsAction::List => {
            let (_, all) = models::manifest()?;
            println!("{:<22} {:>10}  {:<7} installed", "name", "size", "digest");
            for m in all {
                let size = match (m.size, m.size_mib) {
                    (Some(b), _) => format!("{:.0} MiB", b as f64 / 1048576.0),
                    (None, Some(mib)) => format!("~{mib} MiB"),
                    _ => "?".into(),
                };
                let digest = if m.sha256.is_some() { "sha256" } else { "sha1" };
                let at = models::find_installed(&m)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "-".into());
                println!("{:<22} {size:>10}  {digest:<7} {at}", m.name);
            }
            println!(
                "search order: --model, ${}, {}",
                models::MODEL_ENV,
                models::search_dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
        ModelsAction::Fetch { name, dir } => {
            let m = models::info(&name)?;
            let dir = dir
                .or_else(models::user_dir)
                .context("no user data directory ($HOME unset): pass --dir")?;
            let url = models::url_of(&m)?;
            eprintln!("fetching {name} from {url}");
            let started = std::time::Instant::now();
            let mut last = 0u64;
            let path = models::fetch(&m, &dir, &mut |done, total| {
                if done >= last + (1 << 20) || Some(done) == total {
                    last = done;
                    let rate = done as f64 / 1048576.0 / started.elapsed().as_secs_f64().max(1e-3);
                    match total {
                        Some(t) => eprint!(
                            "\r  {:5.1} % of {:.0} MiB, {rate:.1} MiB/s   ",
                            done as f64 * 100.0 / t as f64,
                            t as f64 / 1048576.0
                        ),
                        None => {
                            eprint!("\r  {:.1} MiB, {rate:.1} MiB/s   ", done as f64 / 1048576.0)
                        }
                    }
                }
            })?;
            eprintln!();
            println!("{}", path.display());
            Ok(())
        }
        ModelsAction::Verify { model } => {
            let (_, all) = models::manifest()?;
            let targets: Vec<(models::ModelInfo, PathBuf)> = match model {
                Some(want) => {
                    let p = std::path::Path::new(&want);
                    let m = if p.is_file() {
                        let file = p.file_name().and_then(|f| f.to_str()).unwrap_or_default();
                        all.iter().find(|m| m.file == file).cloned().with_context(|| format!("{}: not a file name the manifest knows; `callcoach models list`", p.display()))?
                    } else {
                        models::info(&want)?
                    };
                    let path = if p.is_file() {
                        p.to_path_buf()
                    } else {
                        models::find_installed(&m).with_context(|| {
                            format!("{want} is not installed; run `callcoach models fetch {want}`")
                        })?
                    };
                    vec![(m, path)]
                }
                None => all
                    .iter()
                    .filter_map(|m| models::find_installed(m).map(|p| (m.clone(), p)))
                    .collect(),
            };
            if targets.is_empty() {
                anyhow::bail!("no model installed; run `callcoach models fetch base-q5_1`");
            }
            let mut failed = 0;
            for (m, path) in targets {
                match models::verify(&path, &m) {
                    Ok(()) => println!("{}: OK ({})", path.display(), m.name),
                    Err(e) => {
                        failed += 1;
                        println!("{e}");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} model file(s) failed verification");
            }
            Ok(())
        }
        ModelsAction::Import { dir, name, out_dir } => {
            let out_dir = out_dir
                .or_else(models::user_dir)
                .context("no user data directory ($HOME unset): pass --out-dir")?;
            std::fs::create_dir_all(&out_dir).with_context(|| {
                format!("{}: cannot create the model directory", out_dir.display())
            })?;
            let started = std::time::Instant::now();
            let tmp = out_dir.join(format!(".import-{}.bin", std::process::id()));
            let summary = callcoach_asr::ct2::convert(&dir, &tmp);
            let summary = match summary {
                Ok(s) => s,
                Err(e) => {
                    std::fs::remove_file(&tmp).ok();
                    return Err(e.into());
                }
            };
            // Named apart from the manifest's downloads (whose checksums it does not have).
            let name = name.unwrap_or_else(|| {
                let size = match (summary.n_audio_layer, summary.n_state) {
                    (4, 384) => "tiny",
                    (6, 512) => "base",
                    (12, 768) => "small",
                    (24, 1024) => "medium",
                    (32, 1280) => "large",
                    _ => "whisper",
                };
                format!("{size}-ct2")
            });
            // Verified by loading it, as analyze and live will, before it replaces anything.
            if let Err(e) = callcoach_asr::load_backend(&tmp) {
                std::fs::remove_file(&tmp).ok();
                return Err(anyhow::Error::new(e).context(format!(
                    "{}: the converted model does not load",
                    dir.display()
                )));
            }
            let out = out_dir.join(format!("ggml-{name}.bin"));
            std::fs::rename(&tmp, &out).with_context(|| {
                format!(
                    "{}: cannot move the converted model into place",
                    out.display()
                )
            })?;
            for w in &summary.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "converted {} ({}, weights {}{}) in {:.1} s: {} tensors, {} bytes",
                dir.display(),
                summary.spec,
                summary.weight_types.join(", "),
                if summary.dequantized {
                    ", dequantized"
                } else {
                    ""
                },
                started.elapsed().as_secs_f64(),
                summary.tensors,
                summary.bytes
            );
            println!(
                "{}: loads in whisper.cpp; use it with --model {name} or --model {}",
                out.display(),
                out.display()
            );
            Ok(())
        }
        ModelsAction::Path { model } => {
            println!("{}", models::resolve(model.as_deref())?.display());
            Ok(())
        }
    }
}
