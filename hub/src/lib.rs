#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! The supervisors' hub (issue 11, in progress). So far its core, with no I/O: the wallboard's
//! model of every agent ([`wallboard`]), fed with the agents' numbered messages
//! (`callcoach-proto`), sorted by who needs help now and thinned to what a screen can use. The
//! server (tokio + axum), storage, accounts and pages come next and sit on top of this.

pub mod wallboard;
