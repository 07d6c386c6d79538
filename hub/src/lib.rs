#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
//! The supervisors' hub (`callcoach hub serve`): every live agent connects to it; supervisors
//! use it from a browser on the call-centre network (every page and asset served by the hub).
//!
//! - [`wallboard`]: the I/O-free model of every agent (tiles, urgency, thinning).
//! - [`store`]: SQLite (migrations at start; the core schema portable to PostgreSQL).
//! - [`auth`]: roles, argon2id passwords, tokens, the login rate limit.
//! - [`writer`]: agents' messages stored in batches, acknowledged only once stored.
//! - [`fanout`]: stored messages to the screens that may see them, thinned, never waiting.
//! - [`agent_ws`], [`screens`], [`web`]: the agents' socket, the supervisors' sockets
//!   (wallboard, listen-in), the JSON API and login.
//! - [`server`]: routes, TLS, graceful shutdown.
//! - [`loadtest`]: simulated agents and supervisors against a hub process, measured.

pub mod agent_ws;
pub mod auth;
pub mod fanout;
pub mod loadtest;
pub mod screens;
pub mod server;
pub mod state;
pub mod store;
pub mod wallboard;
pub mod web;
pub mod writer;

pub use auth::Role;
pub use server::{router, start, HubConfig, HubError, Running};
pub use store::Store;
