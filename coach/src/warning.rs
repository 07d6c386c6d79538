//! What the coach says: warnings with a lifecycle (raised → updated → cleared).

use serde::{Deserialize, Serialize};

use crate::event::Party;
use crate::rule_id::RuleId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Lifecycle: a screen flashes on `Raised`, refreshes on `Updated`, stops on `Cleared`.
/// `Withdrawn` ends a warning the fast path raised and the confirmed stream did not bear out
/// (a screen removes it; it does not count as a violation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarningState {
    Raised,
    Updated,
    Cleared,
    Withdrawn,
}

/// Why a warning is not shown to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hidden {
    /// The rule is in trial (log-only) mode.
    LogOnly,
    /// Over the per-minute cap of shown warnings.
    RateCapped,
}

/// The measured facts behind a warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Evidence {
    pub measured: Option<f64>,
    pub threshold: Option<f64>,
    pub unit: Option<String>,
    /// The words heard (normalised), for text rules.
    pub heard: Option<String>,
}

/// One state change of one warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// Stable id within the call: `rule#n`.
    pub id: String,
    pub rule: RuleId,
    pub severity: Severity,
    pub party: Party,
    pub state: WarningState,
    /// Call time of this state change, ms.
    pub t_ms: u64,
    /// When the condition began, ms.
    pub start_ms: u64,
    pub message_zh: String,
    pub message_en: String,
    pub evidence: Evidence,
    /// The reference line to say instead (参考话术).
    pub line: String,
    /// Set when the agent does not see it (still in the report).
    pub hidden: Option<Hidden>,
}
