//! The workspace's shared test helpers (`tests/common/shared.rs`).
#![allow(dead_code)]

#[path = "../../../tests/common/shared.rs"]
mod shared;
pub use shared::*;
