//! The fast path: decisions on the raw per-frame voice score of frames as they arrive, ahead
//! of the confirmed frames by the VAD's look-ahead (0.68 s), so audio-path warnings reach the
//! agent within the 100 ms target instead of after the look-ahead.
//!
//! - "Still silent" (dead air) is final: the confirmed voice flag only bridges raw-voiced
//!   frames, so when neither party's raw score has crossed the threshold since the last
//!   confirmed frame, the confirmed stream will say silent there too. No false alarm is
//!   possible; the warning goes out on the frame where the silence reaches its threshold.
//! - "Both talking" (the agent talking over the caller) is provisional: blip removal and the
//!   release trim can shorten a raw overlap. The warning goes out when the raw overlap reaches
//!   the rule's minimum and is confirmed, or withdrawn (a `withdrawn` state change), when the
//!   confirmed stream reaches it. `callcoach bench --latency` counts the withdrawals.
//! - "Level jumped" needs nothing here: the audio side decides jumps on arrival.

use serde::{Deserialize, Serialize};

/// Both parties' raw voice decisions on one 10 ms frame, as soon as every party's frame has
/// arrived. Fed with [`crate::Coach::ahead`]; never moves the coach's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ahead {
    /// Start of the frame, ms.
    pub t_ms: u64,
    /// Raw voice decision (agent, caller); `None` for a party absent or whose stream ended.
    pub voiced: [Option<bool>; 2],
}

/// Raw-voiced frames closer than this are one run (the feature path bridges pauses shorter than
/// 0.2 s inside speech: `FeatureConfig::vad_bridge_frames`).
pub(crate) const BRIDGE_MS: u64 = 200;
/// A provisional warning not confirmed this long after its condition's time is withdrawn
/// (covers the 0.1 s release trim and the frame grid).
pub(crate) const CONFIRM_SLACK_MS: u64 = 300;
/// A confirmed overlap starting within this of a provisional one is the same overlap.
pub(crate) const SAME_START_MS: u64 = 300;

/// Per-party raw runs: voiced frames joined across pauses shorter than [`BRIDGE_MS`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawRuns {
    /// Last raw-voiced frame per party.
    pub last_voiced: [Option<u64>; 2],
    /// Start of the current raw run per party.
    pub run_start: [Option<u64>; 2],
}

impl RawRuns {
    pub fn push(&mut self, a: &Ahead) {
        for p in 0..2 {
            if a.voiced[p] == Some(true) {
                if self.last_voiced[p].is_none_or(|l| a.t_ms.saturating_sub(l) > BRIDGE_MS) {
                    self.run_start[p] = Some(a.t_ms);
                }
                self.last_voiced[p] = Some(a.t_ms);
            }
        }
    }

    /// Has party `p`'s raw score crossed the threshold after frame `t_ms`?
    pub fn voiced_after(&self, p: usize, t_ms: u64) -> bool {
        self.last_voiced[p].is_some_and(|l| l > t_ms)
    }

    /// Is party `p` in a run at `t_ms` (voiced then, or in a pause shorter than the bridge)?
    pub fn in_run(&self, p: usize, t_ms: u64) -> bool {
        self.last_voiced[p].is_some_and(|l| t_ms.saturating_sub(l) <= BRIDGE_MS)
    }
}

/// A warning the fast path raised that the confirmed stream has not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Provisional {
    /// The warning's id (withdrawn by id: a newer one may be showing by then).
    pub id: String,
    /// Where the condition began (the overlap's start), ms.
    pub start_ms: u64,
    /// Withdrawn if not confirmed when the confirmed stream passes this time.
    pub deadline_ms: u64,
}
