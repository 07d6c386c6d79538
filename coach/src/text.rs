//! Text normalisation and recognition-tolerant phrase matching for Chinese transcripts.
//!
//! Before matching, text is converted to Simplified (zhconv), full-width forms are folded to
//! half-width, punctuation and spaces are dropped and Latin letters lower-cased. A phrase then
//! matches on characters, or on toneless pinyin with up to `tolerance` differing syllables
//! (recognisers swap homophones and near-homophones: 您好/你好, 再见/在见).

use pinyin::ToPinyin;

/// Normalises text for matching (allocates).
pub fn normalize(text: &str) -> String {
    let simplified = zhconv::zhconv(text, zhconv::Variant::ZhCN);
    simplified
        .chars()
        .filter_map(|c| {
            let c = match c as u32 {
                0x3000 => ' ',
                0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            };
            if c.is_alphanumeric() {
                Some(c.to_ascii_lowercase())
            } else {
                None // punctuation, symbols, spaces
            }
        })
        .collect()
}

/// One syllable per character: toneless pinyin for Chinese characters, the character itself
/// otherwise. 你/您 differ only in the final n, so they are folded together.
pub fn syllables(normalized: &str) -> Vec<String> {
    normalized
        .chars()
        .map(|c| match c.to_pinyin() {
            Some(p) => fold(p.plain()),
            None => c.to_string(),
        })
        .collect()
}

fn fold(p: &str) -> String {
    match p {
        "nin" => "ni".to_string(),
        other => other.to_string(),
    }
}

/// A normalised text ready for matching many phrases against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub text: String,
    chars: Vec<char>,
    pinyin: Vec<String>,
}

impl Matcher {
    pub fn new(text: &str) -> Self {
        let text = normalize(text);
        let pinyin = syllables(&text);
        Self {
            chars: text.chars().collect(),
            text,
            pinyin,
        }
    }

    /// Where `phrase` occurs: exact characters first, then pinyin with at most `tolerance`
    /// differing syllables (only for phrases of 4+ syllables, so short words never match
    /// loosely). Returns the matched slice of the normalised text.
    pub fn find(&self, phrase: &str, tolerance: usize) -> Option<String> {
        let p = normalize(phrase);
        if p.is_empty() {
            return None;
        }
        if self.text.contains(&p) {
            return Some(p);
        }
        let pp = syllables(&p);
        let n = pp.len();
        if n > self.pinyin.len() {
            return None;
        }
        let allowed = if n >= 4 { tolerance } else { 0 };
        (0..=self.pinyin.len() - n).find_map(|i| {
            let diff = self.pinyin[i..i + n]
                .iter()
                .zip(&pp)
                .filter(|(a, b)| a != b)
                .count();
            (diff <= allowed).then(|| self.chars[i..i + n].iter().collect())
        })
    }

    /// Number of non-overlapping exact (character) occurrences.
    pub fn count(&self, word: &str) -> usize {
        let w = normalize(word);
        if w.is_empty() {
            0
        } else {
            self.text.matches(&w).count()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_traditional_width_and_punctuation() {
        assert_eq!(
            normalize("您好，歡迎來電！ＡＢＣ　１２３"),
            "您好欢迎来电abc123"
        );
    }

    #[test]
    fn matches_homophones_within_tolerance() {
        let m = Matcher::new("你好，示例公司，请问有什么可以帮您？");
        assert!(m.find("您好", 0).is_some(), "你/您 fold together");
        let m = Matcher::new("请问有什么可以帮您的");
        assert!(m.find("请问有什么可以帮您", 1).is_some());
        let m = Matcher::new("请问有什么可以班您");
        assert_eq!(
            m.find("请问有什么可以帮您", 1).as_deref(),
            Some("请问有什么可以班您")
        );
        assert!(
            m.find("请问有什么可以帮您", 0).is_none(),
            "帮/班 differ: needs tolerance"
        );
        let m = Matcher::new("不清楚");
        assert!(
            m.find("查不到", 1).is_none(),
            "short phrases never match loosely"
        );
    }
}
