//! Recognition accuracy on labelled recordings: character error rate of `analyze`'s streaming
//! pass against decoding each whole clip at once with the same model (the ceiling a streaming
//! pass can reach). Used by `callcoach bench --asr-accuracy` and the real-model tests.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use callcoach_asr::AsrConfig;
use callcoach_audio::analyze::{analyze_call_tapped, AgentChannel, CallInput};
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
}

/// The clip (its first channel, at 16 kHz through the same resampler) decoded in one piece with
/// Whisper's full 30 s context.
pub fn whole_clip(
    transcriber: &mut dyn callcoach_asr::Transcriber,
    path: &Path,
    cfg: &AsrConfig,
) -> anyhow::Result<Decoded> {
    let mut audio = Vec::new();
    analyze_call_tapped(
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
    })
}

/// The clip through `analyze`'s one pass (features and streaming ASR together).
pub fn streamed(model: &Path, path: &Path, cfg: AsrConfig) -> anyhow::Result<Decoded> {
    let t = Instant::now();
    let (report, outcome) = crate::transcribe::analyze_with_asr(
        &mono_input(path),
        &CallConfig::default(),
        model,
        cfg,
        &mut |_| {},
    )?;
    Ok(Decoded {
        text: outcome.segments.iter().map(|s| s.text.as_str()).collect(),
        wall_s: t.elapsed().as_secs_f64(),
        audio_s: report.summary.duration_s,
    })
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
