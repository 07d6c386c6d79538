//! Recognition accuracy on labelled recordings: character error rate of `analyze`'s streaming
//! pass against decoding each whole clip at once with the same model (the ceiling a streaming
//! pass can reach). Used by `callcoach bench --asr-accuracy` and the real-model tests.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use callcoach_asr::AsrConfig;
use callcoach_audio::analyze::{analyze_call_heard, AgentChannel, CallInput};
use callcoach_audio::call::{CallConfig, Party};

/// A recording with its reference text.
#[derive(Debug, Clone)]
pub struct Clip {
    pub path: PathBuf,
    pub reference: String,
}

/// Reads a manifest: `path<TAB>reference text` per line (`#` comments), paths relative to the
/// manifest's folder.
pub fn load_manifest(path: &Path) -> anyhow::Result<Vec<Clip>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the clip manifest", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut clips = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((p, reference)) = line.split_once('\t') else {
            anyhow::bail!(
                "{}:{}: expected `path<TAB>reference text`",
                path.display(),
                n + 1
            );
        };
        let clip = dir.join(p);
        if !clip.is_file() {
            anyhow::bail!(
                "{}:{}: {} is missing",
                path.display(),
                n + 1,
                clip.display()
            );
        }
        clips.push(Clip {
            path: clip,
            reference: reference.to_string(),
        });
    }
    Ok(clips)
}

/// What is compared: Simplified characters, letters and digits; punctuation, spaces and
/// speaker tags such as `[S1]` dropped.
pub fn normalize(text: &str) -> Vec<char> {
    let mut t = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '[' => in_tag = true,
            ']' => in_tag = false,
            _ if !in_tag => t.push(c),
            _ => {}
        }
    }
    callcoach_asr::guard::simplify(&t)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Character edits (Levenshtein) from `reference` to `hypothesis` after [`normalize`], and the
/// reference length.
pub fn char_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    let mut cur = vec![0; h.len() + 1];
    for (i, rc) in r.iter().enumerate() {
        cur[0] = i + 1;
        for (j, hc) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rc != hc);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    (prev[h.len()], r.len())
}

fn mono_input(path: &Path) -> CallInput {
    CallInput {
        call: path.to_path_buf(),
        caller: None,
        agent_channel: AgentChannel::Left,
        allow_truncated: false,
    }
}

/// A recognised clip: text and wall time.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub text: String,
    pub wall_s: f64,
    pub audio_s: f64,
    /// `analyze` only: the agent's rate as the coach reports it, and the utterance time.
    pub rate: Option<callcoach_coach::rate::Rate>,
    pub utterance_s: f64,
}

/// The clip (its first channel, at 16 kHz through the same resampler) decoded in one piece with
/// Whisper's full 30 s context.
pub fn whole_clip(
    transcriber: &mut dyn callcoach_asr::Transcriber,
    path: &Path,
    cfg: &AsrConfig,
) -> anyhow::Result<Decoded> {
    let mut audio = Vec::new();
    analyze_call_heard(
        &mono_input(path),
        &CallConfig::default(),
        &mut |_| {},
        &mut |p, _, frame| {
            if p == Party::Agent {
                audio.extend_from_slice(frame)
            }
        },
    )?;
    let mut cfg = cfg.clone();
    cfg.audio_ctx = Some(0);
    let t = Instant::now();
    let segments = transcriber.transcribe(&audio, &cfg)?;
    let text = segments
        .iter()
        .map(|s| callcoach_asr::guard::simplify(&s.text))
        .collect();
    Ok(Decoded {
        text,
        wall_s: t.elapsed().as_secs_f64(),
        audio_s: audio.len() as f64 / 16_000.0,
        rate: None,
        utterance_s: 0.0,
    })
}

/// The clips through `analyze`'s one pass with a loaded model: total character errors,
/// reference characters, audio seconds and wall seconds.
pub fn streamed_all(
    backend: Box<dyn callcoach_asr::Transcriber>,
    model: &Path,
    clips: &[Clip],
    cfg: &AsrConfig,
) -> anyhow::Result<(usize, usize, f64, f64)> {
    let mut backend = backend;
    let (mut errors, mut chars, mut audio, mut wall) = (0, 0, 0.0, 0.0);
    for c in clips {
        let (d, back) = streamed(backend, model, &c.path, cfg.clone())?;
        backend = back;
        let (e, n) = char_errors(&c.reference, &d.text);
        errors += e;
        chars += n;
        audio += d.audio_s;
        wall += d.wall_s;
    }
    Ok((errors, chars, audio, wall))
}

/// The clip through `analyze`'s one pass (features and streaming ASR together) with a loaded
/// model, handed back for the next clip (model loading is not timed).
pub fn streamed(
    backend: Box<dyn callcoach_asr::Transcriber>,
    model: &Path,
    path: &Path,
    cfg: AsrConfig,
) -> anyhow::Result<(Decoded, Box<dyn callcoach_asr::Transcriber>)> {
    let t = Instant::now();
    // The agent's rate as the coach computes it (frames, then the transcript).
    let mut rate = callcoach_coach::rate::RateTracker::default();
    let (report, outcome, back) = crate::transcribe::analyze_with_model(
        &mono_input(path),
        &CallConfig::default(),
        backend,
        model,
        cfg,
        &mut |o| {
            if let callcoach_audio::call::CallOutput::Frame(Party::Agent, f) = o {
                rate.frame(f.index * 10, f.utterance, f.nucleus);
            }
        },
    )?;
    let wall_s = t.elapsed().as_secs_f64();
    let back = back.context("the Whisper worker did not hand the model back")?;
    for s in &outcome.segments {
        rate.transcript(s.start_ms, s.end_ms, &s.text);
    }
    Ok((
        Decoded {
            text: outcome.segments.iter().map(|s| s.text.as_str()).collect(),
            wall_s,
            audio_s: report.summary.duration_s,
            rate: rate.call_rate(),
            utterance_s: report.agent.utterance_time_s,
        },
        back,
    ))
}

/// One condition of a clip for the speech-rate evaluation.
#[derive(Debug, Clone)]
pub struct RateRow {
    pub condition: String,
    /// Reference: the reference text's spoken characters over the utterance time of the clip
    /// at 16 kHz and its own tempo, divided by this condition's tempo (the same speech, slowed
    /// or sped up: a channel that changes our voice-activity decisions counts as an error).
    pub reference_cpm: f64,
    /// Model-free (syllable nuclei), uncalibrated.
    pub acoustic_cpm: f64,
    /// Model-free, calibrated with the characters per nucleus of the same speaker on the same
    /// channel at normal tempo (what the online calibration learns from earlier transcribed
    /// utterances); `None` for the normal-tempo audio the factor came from.
    pub calibrated_cpm: Option<f64>,
}

/// The speech rate of a clip at 16 kHz and as 8 kHz µ-law telephone audio (300–3400 Hz), each
/// at tempo 1.0, 0.8 (slowed) and 1.25 (faster), made with sox in `dir`.
pub fn rate_conditions(clip: &Clip, dir: &Path) -> anyhow::Result<Vec<RateRow>> {
    let chars = callcoach_coach::rate::spoken_chars(&clip.reference) as f64;
    let stem = clip
        .path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let mut rows = Vec::new();
    let mut reference_minutes = None;
    for (band, band_args) in [
        ("16k", vec!["-r", "16000"]),
        ("8k-ulaw", vec!["-r", "8000", "-e", "mu-law"]),
    ] {
        let mut factor = None;
        for tempo in ["1.0", "0.8", "1.25"] {
            let out = dir.join(format!("{stem}-{band}-{tempo}.wav"));
            let mut args: Vec<String> = vec![clip.path.display().to_string()];
            args.extend(band_args.iter().map(|s| s.to_string()));
            args.push(out.display().to_string());
            if band != "16k" {
                args.extend(["sinc", "300-3400"].map(String::from));
            }
            if tempo != "1.0" {
                args.extend(["tempo", "-s", tempo].map(String::from));
            }
            let status = std::process::Command::new("sox")
                .args(&args)
                .status()
                .context("running sox (install it: .ci/install-deps)")?;
            anyhow::ensure!(status.success(), "sox {args:?} failed");
            let report =
                callcoach_audio::analyze::analyze_call(&mono_input(&out), &CallConfig::default())?;
            let a = &report.agent;
            let minutes = a.utterance_time_s / 60.0;
            anyhow::ensure!(minutes > 0.0, "{}: no speech found", out.display());
            let tempo_f: f64 = tempo.parse().unwrap_or(1.0);
            let reference = *reference_minutes.get_or_insert(minutes) / tempo_f;
            let nuclei = a.syllables as f64;
            let calibrated = match factor {
                None => {
                    let (lo, hi) = callcoach_coach::rate::FACTOR_RANGE;
                    factor = Some((chars / nuclei.max(1.0)).clamp(lo, hi));
                    None
                }
                Some(k) => Some(k * nuclei / minutes),
            };
            rows.push(RateRow {
                condition: format!("{band} tempo {tempo}"),
                reference_cpm: chars / reference,
                acoustic_cpm: nuclei / minutes,
                calibrated_cpm: calibrated,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cer_counts_character_edits_after_normalisation() {
        assert_eq!(char_errors("您好，示例公司。", "您好示例公司"), (0, 6));
        assert_eq!(char_errors("[S1]啊，可能", "啊可能"), (0, 3));
        assert_eq!(
            char_errors("广州市房地产", "廣州市房地產"),
            (0, 6),
            "Traditional folded"
        );
        assert_eq!(char_errors("协会分析", "协会飞行"), (2, 4));
        assert_eq!(char_errors("谢谢您", "谢谢您谢谢您"), (3, 3));
        assert_eq!(char_errors("再见", ""), (2, 2));
    }
}
