//! The coach: a TOML rule book (defaults from Chinese call-centre service standards) and a rule
//! engine that turns time-stamped features and transcripts into warnings with a lifecycle.
//!
//! Pure and deterministic: time is an input (call time from sample counts), never the wall
//! clock, so the same engine runs on live, recorded and already-transcribed calls, and the same
//! events give the same warnings however they were chunked. Depends on neither `audio` nor `asr`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod ahead;
mod board;
pub mod engine;
pub mod event;
pub mod rate;
pub mod rule_id;
pub mod rulebook;
mod rules;
pub mod text;
pub mod transcript;
pub mod warning;

pub use ahead::Ahead;
pub use engine::{Coach, FlowStep, RuleScore};
pub use event::{Event, Frame, Party, TranscriptSegment};
pub use rule_id::RuleId;
pub use rulebook::{RuleBook, RuleBookError};
pub use warning::{Severity, Warning, WarningState};
