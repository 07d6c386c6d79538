//! Local speech recognition for callcoach: Whisper model management (this module set), and the
//! transcriber, streaming and hallucination guards built on whisper-rs.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod guard;
pub mod models;
pub mod stream;
