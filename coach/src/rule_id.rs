//! Rule ids: an enum, not strings, everywhere inside the coach; the rule book and the JSON use
//! their snake_case names.

use serde::{Deserialize, Serialize};

/// One rule of the rule book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    Rate,
    Volume,
    Gradual,
    SilentCaller,
    WeakCaller,
    NoisyCaller,
    Hold,
    DeadAir,
    Interrupt,
    Greeting,
    Forbidden,
    Polite,
    Closing,
    Abusive,
}

impl RuleId {
    /// Every rule, in rule-book order.
    pub const ALL: [RuleId; 14] = [
        RuleId::Rate,
        RuleId::Volume,
        RuleId::Gradual,
        RuleId::SilentCaller,
        RuleId::WeakCaller,
        RuleId::NoisyCaller,
        RuleId::Hold,
        RuleId::DeadAir,
        RuleId::Interrupt,
        RuleId::Greeting,
        RuleId::Forbidden,
        RuleId::Polite,
        RuleId::Closing,
        RuleId::Abusive,
    ];

    /// The rule book's name of the rule (`[rules.NAME]`).
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleId::Rate => "rate",
            RuleId::Volume => "volume",
            RuleId::Gradual => "gradual",
            RuleId::SilentCaller => "silent_caller",
            RuleId::WeakCaller => "weak_caller",
            RuleId::NoisyCaller => "noisy_caller",
            RuleId::Hold => "hold",
            RuleId::DeadAir => "dead_air",
            RuleId::Interrupt => "interrupt",
            RuleId::Greeting => "greeting",
            RuleId::Forbidden => "forbidden",
            RuleId::Polite => "polite",
            RuleId::Closing => "closing",
            RuleId::Abusive => "abusive",
        }
    }

    /// The rule named `name` in the rule book; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Position in [`RuleId::ALL`] (for per-rule arrays).
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<str> for RuleId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RuleId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for (i, r) in RuleId::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(RuleId::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert_eq!(RuleId::parse("interupt"), None);
    }
}
