#![cfg_attr(test, allow(clippy::unwrap_used))]
//! Audio side of callcoach: decode recordings, resample every party to 16 kHz, cut 10 ms
//! frames and compute per-party and cross-party features incrementally, so the same code runs
//! on a file and on a live stream.

pub mod analyze;
pub mod call;
pub mod decode;
pub mod envelope;
pub mod error;
pub mod flags;
pub mod party;
pub mod report;
pub mod resample;
pub mod stream;

pub use error::AudioError;
pub use party::{
    ArrivedFrame, FeatureConfig, FrameFeatures, LoudnessJump, PartyAnalyzer, PartyOutput,
};
pub use resample::{PartyResampler, ANALYSIS_RATE, FRAME_LEN};
