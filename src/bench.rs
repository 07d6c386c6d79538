//! `callcoach bench`: real-time factor of the whole feature path (decode → resample → features)
//! on a synthetic 10-minute stereo call built from the bundled demo call, and peak memory.

use std::io::Cursor;
use std::time::Instant;

use anyhow::Context;
use callcoach_audio::analyze::{analyze_call, AgentChannel, CallInput};
use callcoach_audio::call::CallConfig;

const DEMO: &[u8] = include_bytes!("../tests/fixtures/demo-call.wav");

/// Writes `minutes` of the demo call, looped and converted to `rate`, as a 16-bit stereo WAV.
fn make_call(path: &std::path::Path, rate: u32, minutes: f64) -> anyhow::Result<()> {
    let mut reader = hound::WavReader::new(Cursor::new(DEMO)).context("bundled demo call")?;
    let src_rate = reader.spec().sample_rate as f64;
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .context("demo samples")?;
    let frames_in = samples.len() / 2;
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    let total = (minutes * 60.0 * rate as f64) as usize;
    let step = src_rate / rate as f64;
    for i in 0..total {
        // Linear interpolation is enough for a speed measurement.
        let pos = (i as f64 * step) % frames_in as f64;
        let j = pos as usize;
        let k = (j + 1) % frames_in;
        let frac = pos - j as f64;
        for ch in 0..2 {
            let a = samples[2 * j + ch] as f64;
            let b = samples[2 * k + ch] as f64;
            w.write_sample((a + (b - a) * frac) as i16)?;
        }
    }
    w.finalize()?;
    Ok(())
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn reset_peak_rss() {
    // Linux: writing 5 resets the peak resident set size (VmHWM) of this process.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// ASR pass per model on the bundled demo call: real-time factor, latency, and the share of time
/// spent around whisper.cpp (our pipeline's overhead).
pub fn run_asr(models: &[String]) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("callcoach-bench-asr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let call = dir.join("demo-call.wav");
    std::fs::write(&call, DEMO).with_context(|| format!("{}: cannot write", call.display()))?;
    println!("ASR pass on the demo call (38 s, two parties), per model");
    println!(
        "{:<40} {:>8} {:>9} {:>10} {:>10} {:>9} {:>9}",
        "model", "wall s", "RT x", "whisper s", "overhead", "p50 ms", "p99 ms"
    );
    for m in models {
        let path = callcoach_asr::models::resolve(Some(m))?;
        let input = CallInput {
            call: call.clone(),
            caller: None,
            agent_channel: AgentChannel::Left,
            allow_truncated: false,
        };
        let o = callcoach::transcribe::transcribe_call(
            &input,
            &path,
            callcoach_asr::AsrConfig::default(),
        )?;
        println!(
            "{:<40} {:>8.2} {:>9.1} {:>10.2} {:>9.1}% {:>9.0} {:>9.0}",
            path.display(),
            o.wall_s,
            o.real_time_factor,
            o.decode_s,
            100.0 * (o.wall_s - o.decode_s).max(0.0) / o.wall_s.max(1e-9),
            o.final_latency_ms_p50,
            o.final_latency_ms_p99
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// CER of `analyze`'s one pass against whole-clip decoding, per clip and in total.
pub fn run_accuracy(manifest: &std::path::Path, model: &std::path::Path) -> anyhow::Result<()> {
    use callcoach::accuracy::{char_errors, load_manifest, streamed, whole_clip};
    let clips = load_manifest(manifest)?;
    let cfg = callcoach::transcribe::asr_config_for(&callcoach_coach::RuleBook::default_book());
    let mut backend = callcoach_asr::load_backend(model)?;
    println!(
        "ASR accuracy, model {} ({} threads), {} clip(s) from {}",
        model.display(),
        cfg.threads,
        clips.len(),
        manifest.display()
    );
    println!(
        "{:<44} {:>6} {:>6} {:>10} {:>8} {:>10} {:>8}",
        "clip", "audio s", "chars", "whole CER", "whole s", "analyze CER", "analyze s"
    );
    let (mut chars, mut whole_err, mut stream_err) = (0, 0, 0);
    let mut rate_err: Vec<f64> = Vec::new();
    let (mut audio_s, mut whole_s, mut stream_s) = (0.0, 0.0, 0.0);
    for c in &clips {
        let w = whole_clip(backend.as_mut(), &c.path, &cfg)?;
        let (s, back) = streamed(backend, model, &c.path, cfg.clone())?;
        backend = back;
        let (we, n) = char_errors(&c.reference, &w.text);
        let (se, _) = char_errors(&c.reference, &s.text);
        chars += n;
        whole_err += we;
        stream_err += se;
        audio_s += s.audio_s;
        whole_s += w.wall_s;
        stream_s += s.wall_s;
        let name = c
            .path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        println!(
            "{:<44} {:>6.1} {:>6} {:>10.3} {:>8.2} {:>10.3} {:>8.2}",
            name,
            s.audio_s,
            n,
            we as f64 / n.max(1) as f64,
            w.wall_s,
            se as f64 / n.max(1) as f64,
            s.wall_s
        );
        println!("    whole:   {}\n    analyze: {}", w.text, s.text);
        // The rate the report gives (transcript where plausible, nuclei elsewhere) against the
        // reference text's spoken characters over the same utterance time.
        let reference = callcoach_coach::rate::spoken_chars(&c.reference) as f64 * 60.0
            / s.utterance_s.max(1e-9);
        if let Some(r) = s.rate {
            let e = r.chars_per_min / reference - 1.0;
            println!(
                "    chars/min: {:.0} ({}) against {reference:.0} from the reference text: {:+.1} %",
                r.chars_per_min,
                r.source.as_str(),
                e * 100.0
            );
            rate_err.push(e);
        }
    }
    println!(
        "total: {chars} chars, {audio_s:.1} s of audio; whole-clip CER {:.3} ({whole_err}/{chars}, {:.1}x real time); analyze CER {:.3} ({stream_err}/{chars}, {:.1}x real time, features included)",
        whole_err as f64 / chars.max(1) as f64,
        audio_s / whole_s.max(1e-9),
        stream_err as f64 / chars.max(1) as f64,
        audio_s / stream_s.max(1e-9),
    );
    println!(
        "chars/min as reported: mean |error| {:.1} %, worst {:+.1} %",
        rate_err.iter().map(|e| e.abs()).sum::<f64>() / rate_err.len().max(1) as f64 * 100.0,
        rate_err
            .iter()
            .fold(0.0f64, |m, e| if e.abs() > m.abs() { *e } else { m })
            * 100.0
    );
    Ok(())
}

/// `analyze`'s CER and real-time factor under decoding settings, one line each.
pub fn run_asr_settings(manifest: &std::path::Path, model: &std::path::Path) -> anyhow::Result<()> {
    let clips = callcoach::accuracy::load_manifest(manifest)?;
    let base = callcoach::transcribe::asr_config_for(&callcoach_coach::RuleBook::default_book());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut settings: Vec<(String, callcoach_asr::AsrConfig, bool)> = Vec::new();
    settings.push((
        format!(
            "default ({} threads, audio_ctx scaled, greedy)",
            base.threads
        ),
        base.clone(),
        false,
    ));
    for t in [1, 2, 4]
        .into_iter()
        .filter(|t| *t != base.threads && *t <= cores.max(2))
    {
        let mut c = base.clone();
        c.threads = t;
        settings.push((format!("threads {t}"), c, false));
    }
    let mut c = base.clone();
    c.audio_ctx = Some(0);
    settings.push(("audio_ctx full (1500)".into(), c, false));
    let mut c = base.clone();
    c.beam_size = 5;
    settings.push(("beam search 5".into(), c, false));
    settings.push(("flash attention".into(), base.clone(), true));
    let mut c = base.clone();
    c.temperature_fallback = true;
    settings.push((
        "temperature fallback (whisper.cpp default)".into(),
        c,
        false,
    ));
    println!(
        "analyze on {} clip(s) of {}, model {}, {cores} cores",
        clips.len(),
        manifest.display(),
        model.display()
    );
    println!("{:<48} {:>8} {:>10}", "setting", "CER", "RT x");
    for (name, cfg, flash) in settings {
        let backend = callcoach_asr::load_backend_with(model, flash)?;
        let (e, n, audio, wall) = callcoach::accuracy::streamed_all(backend, model, &clips, &cfg)?;
        println!(
            "{:<48} {:>8.3} {:>10.1}",
            name,
            e as f64 / n.max(1) as f64,
            audio / wall.max(1e-9)
        );
    }
    Ok(())
}

/// Model-free speech-rate error per clip and condition, and the summary.
pub fn run_rate_accuracy(manifest: &std::path::Path) -> anyhow::Result<()> {
    use callcoach::accuracy::{load_manifest, rate_conditions};
    let clips = load_manifest(manifest)?;
    let dir = std::env::temp_dir().join(format!("callcoach-bench-rate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    println!(
        "{:<40} {:<18} {:>8} {:>10} {:>8} {:>11} {:>8}",
        "clip", "condition", "ref cpm", "acoustic", "err", "calibrated", "err"
    );
    let (mut acoustic, mut calibrated, mut slowed) = (Vec::new(), Vec::new(), Vec::new());
    for c in &clips {
        let name = c
            .path
            .file_stem()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        for r in rate_conditions(c, &dir)? {
            let ea = r.acoustic_cpm / r.reference_cpm - 1.0;
            acoustic.push(ea);
            let ec = r.calibrated_cpm.map(|x| x / r.reference_cpm - 1.0);
            if let Some(e) = ec {
                calibrated.push(e);
                if r.condition.ends_with("0.8") {
                    slowed.push(e);
                }
            }
            println!(
                "{:<40} {:<18} {:>8.0} {:>10.0} {:>+7.1}% {:>11} {:>8}",
                name,
                r.condition,
                r.reference_cpm,
                r.acoustic_cpm,
                ea * 100.0,
                r.calibrated_cpm.map_or("–".into(), |x| format!("{x:.0}")),
                ec.map_or("–".into(), |e| format!("{:+.1}%", e * 100.0))
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    let mean_abs = |v: &[f64]| v.iter().map(|e| e.abs()).sum::<f64>() / v.len().max(1) as f64;
    let worst = |v: &[f64]| {
        v.iter()
            .fold(0.0f64, |m, e| if e.abs() > m.abs() { *e } else { m })
    };
    println!(
        "model-free, uncalibrated: mean |error| {:.1} % over {} conditions, worst {:+.1} %",
        mean_abs(&acoustic) * 100.0,
        acoustic.len(),
        worst(&acoustic) * 100.0
    );
    println!(
        "model-free, calibrated on the same speaker at tempo 1.0: mean |error| {:.1} % over {} conditions, worst {:+.1} %; slowed (tempo 0.8) worst {:+.1} %",
        mean_abs(&calibrated) * 100.0,
        calibrated.len(),
        worst(&calibrated) * 100.0,
        worst(&slowed) * 100.0
    );
    Ok(())
}

pub fn run(minutes: f64, rates: &[u32]) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("callcoach-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    println!("feature path (decode → resample → features), {minutes} min stereo call, one thread");
    println!(
        "{:>8}  {:>10}  {:>12}  {:>14}",
        "rate", "wall s", "real-time ×", "peak RSS MiB"
    );
    let result = (|| -> anyhow::Result<()> {
        for &rate in rates {
            let path = dir.join(format!("call-{rate}.wav"));
            make_call(&path, rate, minutes)?;
            reset_peak_rss();
            let start = Instant::now();
            let report = analyze_call(
                &CallInput {
                    call: path.clone(),
                    caller: None,
                    agent_channel: AgentChannel::Left,
                    allow_truncated: false,
                },
                &CallConfig::default(),
            )?;
            let wall = start.elapsed().as_secs_f64();
            let rtf = report.summary.duration_s / wall;
            let rss = peak_rss_mib()
                .map(|m| format!("{m:.1}"))
                .unwrap_or_else(|| "n/a".into());
            println!("{:>6} Hz  {wall:>10.2}  {rtf:>12.0}  {rss:>14}", rate);
            std::fs::remove_file(&path).ok();
        }
        Ok(())
    })();
    std::fs::remove_dir_all(&dir).ok();
    result
}

/// `callcoach bench --latency N`: warning latency on the live path. Replays, at real-time
/// pace, a call built from the demo: N rounds of its first 32 s (the agent's voice jumps at
/// 25 s) and 8 s in which nobody speaks (dead air); prints per rule the time from the sample
/// where the rule's condition became true to the warning leaving the coach (p50/p99), and the
/// time from an utterance's end to its final transcript reaching the coach (with `model`).
pub fn run_latency(rounds: usize, model: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    use callcoach::live::{self, LiveConfig, UiEvent};
    let dir = std::env::temp_dir().join(format!("callcoach-bench-lat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let mut reader = hound::WavReader::new(Cursor::new(DEMO)).context("bundled demo call")?;
    let spec = reader.spec();
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .context("demo samples")?;
    let path = dir.join("latency-call.wav");
    {
        let mut w = hound::WavWriter::create(&path, spec)?;
        let speech = (32 * spec.sample_rate * 2) as usize;
        let quiet = (8 * spec.sample_rate * 2) as usize;
        for _ in 0..rounds.max(1) {
            for s in samples.iter().take(speech) {
                w.write_sample(*s)?;
            }
            for _ in 0..quiet {
                w.write_sample(0i16)?;
            }
        }
        w.finalize()?;
    }
    let cfg = LiveConfig {
        book: callcoach_coach::RuleBook::default_book(),
        rules_name: "(default)".into(),
        agent_id: None,
        call_at_start: true,
        auto_start: false,
        auto_end_s: 1e9,
        out_dir: dir.clone(),
        record: false,
        asr_off_reason: "no model given (--models)".into(),
        model: model.clone(),
        ring_ms: 500,
        stop: Default::default(),
    };
    let secs = rounds.max(1) * 40;
    println!("live warning latency: replaying {secs} s in real time …");
    let (_control_tx, control_rx) = crossbeam_channel::unbounded();
    reset_peak_rss();
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let events = live::replay(&path, true, cfg, control_rx)?;
    let mut by_rule: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut report = None;
    for e in events {
        match e {
            UiEvent::Warning {
                warning,
                latency_ms: Some(l),
            } if warning.state == callcoach_coach::WarningState::Raised => {
                by_rule.entry(warning.rule.clone()).or_default().push(l)
            }
            UiEvent::CallEnded { report: r, .. } => report = Some(r),
            UiEvent::End { .. } => break,
            _ => {}
        }
    }
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let wall = wall0.elapsed().as_secs_f64();
    println!(
        "  process while live: CPU {} of one core, peak RSS {} MiB, {} cores here",
        cpu.map_or("?".into(), |c| format!("{:.1} %", 100.0 * c / wall)),
        peak_rss_mib().map_or("?".into(), |m| format!("{m:.0}")),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  {:<14} {:>6} {:>9} {:>9}",
        "rule", "count", "p50 ms", "p99 ms"
    );
    for (rule, mut v) in by_rule {
        let n = v.len();
        let (p50, p99) = live::percentiles(&mut v);
        println!("  {rule:<14} {n:>6} {p50:>9.0} {p99:>9.0}");
    }
    if let Some(r) = report {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&r)?)?;
        let asr = &v["asr"];
        if asr["status"] == "on" {
            println!(
                "  transcripts: {} utterance(s) final after their end: p50 {:.0} ms, p99 {:.0} ms (model {})",
                asr["stats"]["transcribed"], asr["final_latency_ms_p50"].as_f64().unwrap_or(0.0),
                asr["final_latency_ms_p99"].as_f64().unwrap_or(0.0), asr["model"]
            );
        } else {
            println!("  transcripts: ASR {}: {}", asr["status"], asr["reason"]);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// User + system CPU seconds of this process so far (Linux /proc).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
