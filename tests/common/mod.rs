//! Helpers of the end-to-end tests: everything shared with the crates' own tests
//! (`shared.rs`), and running the `callcoach` binary.
#![allow(dead_code)]

use std::process::{Command, Output};

pub mod hubproc;
mod shared;
pub use shared::*;

/// The `callcoach` binary, hermetic: it sees no Whisper model installed on this machine (an
/// empty model directory, no $CALLCOACH_MODEL), so a test gets ASR only with `--model`.
pub fn cmd() -> Command {
    let empty = std::env::temp_dir().join("callcoach-tests-no-models");
    let mut c = Command::new(env!("CARGO_BIN_EXE_callcoach"));
    c.env("XDG_DATA_HOME", empty).env_remove("CALLCOACH_MODEL");
    c
}

pub fn callcoach(args: &[&str]) -> Output {
    cmd().args(args).output().expect("run callcoach")
}
