//! What the coach is fed: plain time-stamped events, the same for a live call, a recording and
//! an already-transcribed call. Time is call time in milliseconds from sample counts.

use serde::{Deserialize, Serialize};

/// A party of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    Agent,
    Caller,
}

impl Party {
    pub fn index(self) -> usize {
        match self {
            Party::Agent => 0,
            Party::Caller => 1,
        }
    }
}

/// One 10 ms analysis frame of one party.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub party: Party,
    /// Start of the frame, ms.
    pub t_ms: u64,
    /// Speaking (tight voice activity).
    pub voiced: bool,
    /// Inside an utterance (voiced with pauses < 0.3 s bridged).
    pub utterance: bool,
    /// A syllable nucleus (≈ one character) at this frame.
    pub nucleus: bool,
    /// Frame level, dBFS.
    pub energy_db: f32,
    /// Short-term loudness, LUFS, when measured at this frame (every 100 ms).
    pub short_term_lufs: Option<f32>,
}

/// A timed transcript segment of one party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptSegment {
    pub party: Party,
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// Everything the engine reacts to. Feed events in time order (a segment or talk-over at its
/// end time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    CallStart {
        t_ms: u64,
    },
    /// The call ended; `hung_up_by` when the telephony knows who hung up first.
    CallEnd {
        t_ms: u64,
        hung_up_by: Option<Party>,
    },
    HoldStart {
        t_ms: u64,
    },
    HoldEnd {
        t_ms: u64,
    },
    Frame(Frame),
    /// A sudden loudness rise of a party.
    LoudnessJump {
        party: Party,
        /// When the rise was confirmed (it had held long enough): the event's time.
        t_ms: u64,
        /// Where the raised level began (the warning's start).
        onset_ms: u64,
        rise_db: f32,
    },
    /// Both spoke at once; `second` started last.
    TalkOver {
        start_ms: u64,
        end_ms: u64,
        second: Party,
    },
    Transcript(TranscriptSegment),
}

impl Event {
    /// The time at which the event is known (its end).
    pub fn time_ms(&self) -> u64 {
        match self {
            Event::CallStart { t_ms }
            | Event::CallEnd { t_ms, .. }
            | Event::HoldStart { t_ms }
            | Event::HoldEnd { t_ms } => *t_ms,
            Event::Frame(f) => f.t_ms,
            Event::LoudnessJump { t_ms, .. } => *t_ms,
            Event::TalkOver { end_ms, .. } => *end_ms,
            Event::Transcript(s) => s.end_ms,
        }
    }
}
