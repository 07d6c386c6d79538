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

/// One condition in the audio that a rule must warn about: when it became true (the rule's
/// own threshold and window included) and where it began, ms.
#[derive(Debug, Clone, Copy)]
struct Condition {
    rule: &'static str,
    start_ms: u64,
    true_at_ms: u64,
}

/// The latency call at 16 kHz, stereo (agent left), as 16-bit samples: per round the demo's
/// first 32 s (the agent's voice jumps at 25 s), 8 s in which nobody speaks (dead air), and 7 s
/// in which the agent talks over the caller (the caller's longest utterance in the demo, the
/// agent's longest starting 1 s into it).
fn latency_call(dir: &std::path::Path, rounds: usize) -> anyhow::Result<Vec<[i16; 2]>> {
    let mut reader = hound::WavReader::new(Cursor::new(DEMO)).context("bundled demo call")?;
    let spec = reader.spec();
    anyhow::ensure!(
        spec.sample_rate == 16_000 && spec.channels == 2,
        "the bundled demo call is not 16 kHz stereo"
    );
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .context("demo samples")?;
    let frames: Vec<[i16; 2]> = samples.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
    let demo = dir.join("demo.wav");
    std::fs::write(&demo, DEMO)?;
    let r = callcoach_audio::analyze::analyze_file(&demo)?;
    let longest = |segs: &[callcoach_audio::analyze::Segment]| {
        segs.iter()
            .max_by(|a, b| a.duration_s().total_cmp(&b.duration_s()))
            .map(|s| {
                (
                    (s.start_s * 16_000.0) as usize,
                    (s.end_s * 16_000.0) as usize,
                )
            })
    };
    let caller = r
        .caller
        .as_ref()
        .and_then(|c| longest(&c.speech_segments))
        .context("the demo's caller never speaks")?;
    let agent = longest(&r.agent.speech_segments).context("the demo's agent never speaks")?;
    let mut out = Vec::new();
    for _ in 0..rounds.max(1) {
        out.extend_from_slice(&frames[..(32 * 16_000).min(frames.len())]);
        out.extend(std::iter::repeat_n([0i16; 2], 8 * 16_000));
        let section = 7 * 16_000;
        let at = out.len();
        out.extend(std::iter::repeat_n([0i16; 2], section));
        let (cs, ce) = (caller.0, caller.1.min(caller.0 + 5 * 16_000));
        for (k, f) in frames[cs..ce].iter().enumerate() {
            out[at + 8_000 + k][1] = f[1];
        }
        let (as_, ae) = (agent.0, agent.1.min(agent.0 + 4 * 16_000));
        for (k, f) in frames[as_..ae].iter().enumerate() {
            if let Some(o) = out.get_mut(at + 24_000 + k) {
                o[0] = f[0];
            }
        }
    }
    Ok(out)
}

/// Writes the 16 kHz call at `rate`: 8 kHz as G.711 µ-law after a 3.4 kHz low-pass (what a
/// telephone line delivers), other rates as 16-bit PCM (linear interpolation).
fn write_at_rate(path: &std::path::Path, call: &[[i16; 2]], rate: u32) -> anyhow::Result<()> {
    if rate == 8_000 {
        // 63-tap windowed-sinc low-pass at 3.4 kHz, then every second sample.
        let taps: Vec<f64> = (0..63)
            .map(|n| {
                let x = n as f64 - 31.0;
                let fc = 3_400.0 / 16_000.0;
                let sinc = if x == 0.0 {
                    2.0 * fc
                } else {
                    (2.0 * std::f64::consts::PI * fc * x).sin() / (std::f64::consts::PI * x)
                };
                let w = 0.54 - 0.46 * (2.0 * std::f64::consts::PI * n as f64 / 62.0).cos();
                sinc * w
            })
            .collect();
        let mut bytes = Vec::with_capacity(call.len());
        for i in (0..call.len()).step_by(2) {
            for ch in 0..2 {
                let mut acc = 0.0;
                for (k, t) in taps.iter().enumerate() {
                    if let Some(f) = (i + k).checked_sub(31).and_then(|j| call.get(j)) {
                        acc += t * f64::from(f[ch]);
                    }
                }
                bytes.push(mulaw(acc.round().clamp(-32768.0, 32767.0) as i16));
            }
        }
        // A WAVE_FORMAT_MULAW header (format 7, 8 bits, with the fact chunk it requires).
        let mut h = Vec::with_capacity(58 + bytes.len());
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&((50 + bytes.len()) as u32).to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&18u32.to_le_bytes());
        h.extend_from_slice(&7u16.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&8_000u32.to_le_bytes());
        h.extend_from_slice(&16_000u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&8u16.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&((bytes.len() / 2) as u32).to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        h.extend_from_slice(&bytes);
        std::fs::write(path, h).with_context(|| format!("{}: cannot write", path.display()))?;
        return Ok(());
    }
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    let total = call.len() as u64 * u64::from(rate) / 16_000;
    for i in 0..total {
        let pos = i as f64 * 16_000.0 / f64::from(rate);
        let j = (pos as usize).min(call.len() - 1);
        let k = (j + 1).min(call.len() - 1);
        let frac = pos - j as f64;
        for (a, b) in call[j].iter().zip(&call[k]) {
            let (a, b) = (f64::from(*a), f64::from(*b));
            w.write_sample((a + (b - a) * frac) as i16)?;
        }
    }
    w.finalize()?;
    Ok(())
}

/// G.711 µ-law encoding of one 16-bit sample.
fn mulaw(x: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut v = i32::from(x);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = (v + BIAS).min(0x7FFF);
    let exponent = (0..8).rev().find(|e| v & (0x80 << e) != 0).unwrap_or(0);
    let mantissa = (v >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// The conditions in `path` the default rule book warns about, from the confirmed analysis of
/// the whole file (what `analyze` reports), with each rule's threshold and window.
fn conditions(path: &std::path::Path) -> anyhow::Result<Vec<Condition>> {
    let r = callcoach_audio::analyze::analyze_file(path)?;
    let book = callcoach_coach::RuleBook::default_book();
    let ms = |s: f64| (s * 1000.0).round() as u64;
    let mut out = Vec::new();
    let first = |segs: &[callcoach_audio::analyze::Segment]| segs.first().map(|s| s.start_s);
    let both_spoke = match (
        first(&r.agent.speech_segments),
        r.caller.as_ref().and_then(|c| first(&c.speech_segments)),
    ) {
        (Some(a), Some(c)) => a.max(c),
        _ => f64::MAX,
    };
    for m in &r.mutual_silences {
        let need = book.rules.dead_air.max_silence_s;
        if m.duration_s() >= need && m.start_s > both_spoke {
            out.push(Condition {
                rule: "dead_air",
                start_ms: ms(m.start_s),
                true_at_ms: ms(m.start_s + need),
            });
        }
    }
    for t in &r.talk_overs {
        let need = book.rules.interrupt.min_overlap_s;
        if t.second_speaker == callcoach_audio::call::Party::Agent && t.end_s - t.start_s >= need {
            out.push(Condition {
                rule: "interrupt",
                start_ms: ms(t.start_s),
                true_at_ms: ms(t.start_s + need),
            });
        }
    }
    for j in &r.agent.loudness_jumps {
        if f64::from(j.rise_db) >= book.rules.gradual.min_rise_db {
            out.push(Condition {
                rule: "gradual",
                start_ms: ms(j.time_s),
                true_at_ms: ms(j.time_s) + callcoach_audio::party::JUMP_HOLD_FRAMES * 10,
            });
        }
    }
    Ok(out)
}

/// `callcoach bench --latency N`: warning latency on the live path. Replays at real-time pace,
/// at each rate, N rounds of a call built from the demo (a loudness jump, dead air, the agent
/// talking over the caller) and prints per rule the time from the moment the rule's condition
/// became true in the audio (from the confirmed analysis of the same file: the silence's 5 s
/// complete, the overlap 0.5 s old, the raised level held 300 ms) to the warning reaching the
/// UI channel, p50/p99; warnings the fast path withdrew, and any warning with no condition
/// behind it. With `model`, also the time from an utterance's end to its final transcript.
pub fn run_latency(
    rounds: usize,
    rates: &[u32],
    model: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    use callcoach::live::{self, LiveConfig, UiEvent};
    let dir = std::env::temp_dir().join(format!("callcoach-bench-lat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let result = (|| -> anyhow::Result<()> {
        let call = latency_call(&dir, rounds)?;
        let secs = call.len() / 16_000;
        println!(
            "live warning latency: {secs} s replayed in real time per rate, from each rule's \
             condition in the audio to the warning reaching the UI"
        );
        for &rate in rates {
            let label = if rate == 8_000 {
                "8 kHz µ-law".to_string()
            } else {
                format!("{} kHz PCM", f64::from(rate) / 1000.0)
            };
            let path = dir.join(format!("latency-{rate}.wav"));
            write_at_rate(&path, &call, rate)?;
            let wanted = conditions(&path)?;
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
                listen: None,
                stop: Default::default(),
            };
            let (_control_tx, control_rx) = crossbeam_channel::unbounded();
            reset_peak_rss();
            let (cpu0, wall0) = (cpu_seconds(), Instant::now());
            // Sample 0 of the call is due now: arrival times are call times.
            let events = live::replay(&path, true, cfg, control_rx)?;
            let mut raised: Vec<(callcoach_coach::Warning, u64)> = Vec::new();
            let mut withdrawn: std::collections::BTreeMap<String, usize> = Default::default();
            let mut withdrawn_ids = std::collections::HashSet::new();
            let mut report = None;
            for e in events {
                let arrival = wall0.elapsed().as_millis() as u64;
                match e {
                    UiEvent::Warning { warning, .. } => match warning.state {
                        callcoach_coach::WarningState::Raised => raised.push((*warning, arrival)),
                        callcoach_coach::WarningState::Withdrawn => {
                            *withdrawn.entry(warning.rule.to_string()).or_default() += 1;
                            withdrawn_ids.insert(warning.id.clone());
                        }
                        _ => {}
                    },
                    UiEvent::CallEnded { report: r, .. } => report = Some(r),
                    UiEvent::End { .. } => break,
                    _ => {}
                }
            }
            let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
            let wall = wall0.elapsed().as_secs_f64();
            println!(
                "\n  {label}: CPU {} of one core, peak RSS {} MiB, {} cores here",
                cpu.map_or("?".into(), |c| format!("{:.1} %", 100.0 * c / wall)),
                peak_rss_mib().map_or("?".into(), |m| format!("{m:.0}")),
                std::thread::available_parallelism().map_or(0, |n| n.get())
            );
            println!(
                "  {:<10} {:>10} {:>7} {:>8} {:>8} {:>10} {:>11}",
                "rule", "conditions", "warned", "p50 ms", "p99 ms", "withdrawn", "no cause"
            );
            for rule in ["dead_air", "interrupt", "gradual"] {
                let conds: Vec<&Condition> = wanted.iter().filter(|c| c.rule == rule).collect();
                let mut used = vec![false; conds.len()];
                let mut lat = Vec::new();
                let mut stray = 0;
                let verbose = std::env::var_os("CALLCOACH_BENCH_VERBOSE").is_some();
                for (w, arrival) in raised
                    .iter()
                    .filter(|(w, _)| w.rule == rule && !withdrawn_ids.contains(&w.id))
                {
                    let best = conds
                        .iter()
                        .enumerate()
                        .filter(|(i, c)| !used[*i] && c.start_ms.abs_diff(w.start_ms) <= 400)
                        .min_by_key(|(_, c)| c.start_ms.abs_diff(w.start_ms));
                    match best {
                        Some((i, c)) => {
                            used[i] = true;
                            lat.push(*arrival as f64 - c.true_at_ms as f64);
                            if verbose {
                                println!(
                                    "    {rule}: condition {} ms (from {} ms), warning t {} ms (from {} ms), arrived {arrival} ms",
                                    c.true_at_ms, c.start_ms, w.t_ms, w.start_ms
                                );
                            }
                        }
                        None => {
                            stray += 1;
                            if verbose {
                                println!("    {rule}: no condition near {} ms", w.start_ms);
                            }
                        }
                    }
                }
                let n = lat.len();
                let (p50, p99) = live::percentiles(&mut lat);
                println!(
                    "  {rule:<10} {:>10} {n:>7} {p50:>8.0} {p99:>8.0} {:>10} {stray:>11}",
                    conds.len(),
                    withdrawn.get(rule).copied().unwrap_or(0)
                );
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
        }
        Ok(())
    })();
    if std::env::var_os("CALLCOACH_BENCH_VERBOSE").is_some() {
        println!("(files kept in {})", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
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
