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
