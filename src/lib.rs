//! Wiring shared by the `callcoach` binary and the end-to-end tests: how the audio feature
//! path feeds the coach. (The binary's CLI is in `main.rs`.)
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod accuracy;
pub mod api;
pub mod capture;
pub mod coaching;
pub mod hub_link;
pub mod live;
pub mod report;
pub mod screen;
pub mod stats;
pub mod transcribe;
pub mod uitx;
