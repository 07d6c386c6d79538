//! Hallucination guard: Whisper invents text on silence and noise ("字幕由Amara.org社群提供",
//! "请不吝点赞订阅转发打赏支持明镜与点点栏目", "谢谢观看"), and loops on repeated tokens. Each
//! check is separate and tested.

use serde::{Deserialize, Serialize};

/// Thresholds of the guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuardConfig {
    /// Audio gate: at least this share of the utterance must be voiced…
    pub min_voiced_ratio: f32,
    /// …and its speech level at least this loud (dBFS, mean-square of voiced frames).
    pub min_level_dbfs: f32,
    /// Drop a segment whose no-speech probability is above this.
    pub max_no_speech_prob: f32,
    /// A unit of 1–8 characters repeated this many times in a row is a decoding loop.
    pub max_repeats: usize,
    /// Known hallucinations: a segment containing one is dropped (normalised match).
    pub blacklist: Vec<String>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            min_voiced_ratio: 0.3,
            min_level_dbfs: -55.0,
            max_no_speech_prob: 0.6,
            max_repeats: 4,
            blacklist: [
                "字幕由Amara.org社群提供",
                "请不吝点赞订阅转发打赏支持明镜与点点栏目",
                "谢谢观看",
                "感谢观看",
                "请订阅",
                "订阅我的频道",
                "字幕志愿者",
                "中文字幕",
                "明镜与点点栏目",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}

/// Why text was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// The audio was not speech enough to transcribe at all.
    AudioGate,
    NoSpeech,
    Blacklisted(String),
    RepeatLoop,
    Empty,
}

/// Gate on the audio before spending Whisper time: enough voiced frames, loud enough.
pub fn audio_gate(cfg: &GuardConfig, voiced_ratio: f32, level_dbfs: f32) -> Result<(), Rejection> {
    if voiced_ratio < cfg.min_voiced_ratio || level_dbfs < cfg.min_level_dbfs {
        Err(Rejection::AudioGate)
    } else {
        Ok(())
    }
}

/// Traditional → Simplified, trimmed.
pub fn simplify(text: &str) -> String {
    zhconv::zhconv(text.trim(), zhconv::Variant::ZhCN)
}

fn normalized(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Finds a unit of 1–8 characters repeated `max_repeats`+ times in a row.
pub fn has_repeat_loop(text: &str, max_repeats: usize) -> bool {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    for unit in 1..=8 {
        let mut run = 1;
        let mut i = unit;
        while i + unit <= chars.len() {
            if chars[i..i + unit] == chars[i - unit..i] {
                run += 1;
                if run >= max_repeats {
                    return true;
                }
                i += unit;
            } else {
                run = 1;
                i += 1;
            }
        }
    }
    false
}

/// Checks one decoded segment; returns the cleaned (Simplified) text or why it was dropped.
pub fn check_segment(
    cfg: &GuardConfig,
    text: &str,
    no_speech_prob: f32,
) -> Result<String, Rejection> {
    let text = simplify(text);
    if normalized(&text).is_empty() {
        return Err(Rejection::Empty);
    }
    if no_speech_prob > cfg.max_no_speech_prob {
        return Err(Rejection::NoSpeech);
    }
    let norm = normalized(&text);
    if let Some(b) = cfg.blacklist.iter().find(|b| {
        let nb = normalized(&simplify(b));
        !nb.is_empty() && norm.contains(&nb)
    }) {
        return Err(Rejection::Blacklisted(b.clone()));
    }
    if has_repeat_loop(&text, cfg.max_repeats) {
        return Err(Rejection::RepeatLoop);
    }
    Ok(text)
}

/// Drops a sentence of 4+ characters that repeats the one before it ("谢谢您的来电。谢谢您的来电。"
/// is one closing line decoded twice, not two; 喂？喂？ is said twice): sentences end at
/// 。！？!?；; and compare after normalisation. `previous` is the last sentence already emitted (across segments of one job),
/// updated in place.
pub fn collapse_repeats(text: &str, previous: &mut String) -> String {
    let mut out = String::new();
    let mut sentence = String::new();
    let flush = |sentence: &mut String, out: &mut String, previous: &mut String| {
        let n = normalized(sentence);
        // Short sentences repeat for real (喂？喂？ 对。对。); a decoding loop repeats a line.
        if n.chars().count() < 4 || n != *previous {
            out.push_str(sentence);
        }
        if !n.is_empty() {
            *previous = n;
        }
        sentence.clear();
    };
    for c in text.chars() {
        sentence.push(c);
        if matches!(c, '。' | '！' | '？' | '!' | '?' | '；' | ';') {
            flush(&mut sentence, &mut out, previous);
        }
    }
    flush(&mut sentence, &mut out, previous);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_guard_drops_what_it_should_and_only_that() {
        let cfg = GuardConfig::default();
        assert_eq!(
            check_segment(&cfg, "您好，請問有什麼可以幫您", 0.1),
            Ok("您好，请问有什么可以帮您".into())
        );
        assert_eq!(
            check_segment(&cfg, "字幕由Amara.org社群提供", 0.1),
            Err(Rejection::Blacklisted("字幕由Amara.org社群提供".into()))
        );
        assert!(
            matches!(
                check_segment(&cfg, "謝謝觀看！", 0.1),
                Err(Rejection::Blacklisted(_))
            ),
            "traditional forms are caught too"
        );
        assert_eq!(
            check_segment(&cfg, "好的好的", 0.9),
            Err(Rejection::NoSpeech)
        );
        assert_eq!(
            check_segment(&cfg, "对对对对对对对对", 0.1),
            Err(Rejection::RepeatLoop)
        );
        assert_eq!(
            check_segment(&cfg, "我想问一下我想问一下我想问一下我想问一下", 0.1),
            Err(Rejection::RepeatLoop)
        );
        assert_eq!(
            check_segment(&cfg, "对对对", 0.1),
            Ok("对对对".into()),
            "three is normal speech"
        );
        assert_eq!(check_segment(&cfg, " 。，", 0.1), Err(Rejection::Empty));
        assert_eq!(audio_gate(&cfg, 0.1, -30.0), Err(Rejection::AudioGate));
        assert_eq!(audio_gate(&cfg, 0.8, -70.0), Err(Rejection::AudioGate));
        assert_eq!(audio_gate(&cfg, 0.8, -30.0), Ok(()));
    }

    #[test]
    fn a_sentence_decoded_twice_is_kept_once() {
        let mut prev = String::new();
        assert_eq!(
            collapse_repeats("谢谢您的来电。谢谢您的来电。再见！", &mut prev),
            "谢谢您的来电。再见！"
        );
        assert_eq!(
            collapse_repeats("再见！", &mut prev),
            "再见！",
            "short lines repeat for real"
        );
        assert_eq!(
            collapse_repeats("祝您生活愉快。", &mut prev),
            "祝您生活愉快。"
        );
        assert_eq!(
            collapse_repeats("祝您生活愉快", &mut prev),
            "",
            "the next segment repeating it"
        );
        assert_eq!(collapse_repeats("喂？喂？", &mut String::new()), "喂？喂？");
        let mut prev = String::new();
        assert_eq!(
            collapse_repeats("好的。您好。好的。", &mut prev),
            "好的。您好。好的。",
            "only back-to-back repeats"
        );
    }
}
