#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! What a live agent and the supervisor hub say to each other (issue 11's foundation), with
//! nothing async in it so that both sides, the tests and a fuzz target share it:
//!
//! - [`wire`]: the messages, each agent message numbered (`seq`) so the hub can store them
//!   idempotently by (agent, seq); [`wire::decode_agent`] / [`wire::decode_hub`] refuse
//!   oversized, malformed or wrong-version input with a typed error naming what is wrong.
//! - [`seq`]: the hub's per-agent sequence check: new, duplicate (ignored, acknowledged again) or
//!   out of order (the connection is closed with a reason).
//! - [`spool`]: the agent's bounded on-disk spool: every message is kept until the hub
//!   acknowledges it, survives a restart of the agent, and is resent on reconnect; over its
//!   bound the oldest meter updates go first, then (counted) the oldest of the rest.

pub mod seq;
pub mod spool;
pub mod wire;

pub use wire::{AgentMsg, Body, HubMsg, ProtoError, PROTOCOL_VERSION};
