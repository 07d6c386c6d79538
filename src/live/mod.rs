//! `callcoach live`: sound devices (or a recording replayed as if it were live) through the
//! same feature → coach path as `analyze`.
//!
//! Threads: source (cpal callback, or the replay thread) → lock-free rings sized in
//! milliseconds (full: drop and count) → the pipeline thread (features, coach, ASR segmenting,
//! call lifecycle) → bounded channels to the ASR worker, the recorder and the screen, each of
//! which drops and counts rather than block. A call's end hands its finishing (waiting for the
//! last transcripts, writing the report) to a thread of its own so the audio keeps flowing.
//!
//! Calls start from the API or hotkeys ([`Control::CallStart`]), at the first sample of a
//! replayed recording, or on sustained two-party speech (pre-roll kept, so the call's start is
//! not lost); every call leaves `call-ID.json` (the same report `analyze` writes, see
//! [`crate::report`]), `call-ID.transcript.jsonl` (its transcript and call events) and, with
//! recording on, `call-ID.wav` (16-bit, agent left): `callcoach analyze call-ID.wav
//! --transcript call-ID.transcript.jsonl` reproduces the report.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use callcoach_asr::stream::{Segmenter, Speaker, StreamConfig};
use callcoach_asr::{Transcriber, Worker};
use callcoach_audio::analyze::{AgentChannel, CallReport, CallStream, FileInfo, InputWarning};
use callcoach_audio::call::{CallAnalyzer, CallConfig, CallOutput, Party};
use callcoach_audio::decode::Decoder;
use callcoach_audio::FRAME_LEN;
use callcoach_coach::rate::{RateSource, RateTracker};
use callcoach_coach::transcript::Transcript;
use callcoach_coach::{Coach, Event, RuleBook, TranscriptSegment, Warning, WarningState};
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use rtrb::RingBuffer;

use crate::coaching::CoachFeed;
use crate::report::{AsrReport, CoachReport, FullReport, SpeechRates};
pub use crate::stats::percentiles;
use crate::transcribe::{to_segment, AsrOutcome};
use crate::uitx::UiTx;

/// Call control from outside the audio (local HTTP API, overlay hotkeys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    CallStart,
    CallEnd,
    HoldStart,
    HoldEnd,
    /// The agent asks a supervisor for help (overlay F6 / button, `POST /v1/help`).
    HelpRequest,
}

/// From the capture side to the pipeline: a party's device went away, or came back with a
/// new ring.
#[derive(Debug)]
pub enum SourceMsg {
    Lost {
        party: Party,
        reason: String,
    },
    Restored {
        party: Party,
        ring: rtrb::Consumer<f32>,
    },
    /// Something about the input the call's report should say (a replayed file's damaged
    /// packets).
    Warning(InputWarning),
}

/// Live meters, sent about every 100 ms of audio.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Meters {
    /// Call time, when a call is in progress.
    pub call_ms: Option<u64>,
    /// Momentary loudness (400 ms), LUFS, per party (agent, caller).
    pub loudness_lufs: [Option<f32>; 2],
    pub speaking: [bool; 2],
    /// Characters per minute over the last 15 s of the party's speech…
    pub chars_per_minute: [Option<f32>; 2],
    /// …and which estimate it is (the transcript's characters, or syllable nuclei).
    pub rate_source: [Option<RateSource>; 2],
    /// The agent's share of the speaking time so far.
    pub agent_talk_ratio: Option<f32>,
    /// Time since either party last spoke, ms.
    pub silence_ms: u64,
    /// Time on hold, ms.
    pub hold_ms: Option<u64>,
    /// A party whose device is lost (filled with silence until it is back).
    pub lost: [bool; 2],
    /// The call-flow checklist (greeting, request confirmed, anything else, goodbye; see
    /// [`callcoach_coach::FlowStep`]), ticked from the transcript.
    pub checklist: [bool; 4],
}

/// What the live run hands the screen.
#[derive(Debug, Clone)]
pub enum UiEvent {
    Warning {
        warning: Box<Warning>,
        /// Wall-clock delay after the audio at the warning's call time entered the pipeline.
        latency_ms: Option<f64>,
    },
    Meters(Meters),
    /// Samples dropped because a ring was full (the pipeline fell behind).
    Overflow {
        party: Party,
        samples: u64,
    },
    /// Missing audio seen in the device's timestamps.
    Gap {
        party: Party,
        ms: f64,
    },
    CallStarted {
        id: String,
        how: &'static str,
    },
    CallEnded {
        id: String,
        call_ms: u64,
        report: PathBuf,
        recording: Option<PathBuf>,
    },
    /// A call-control event was applied at this call time.
    Control {
        control: Control,
        call_ms: u64,
    },
    PartyLost {
        party: Party,
        reason: String,
    },
    PartyRestored {
        party: Party,
        gap_ms: u64,
    },
    Transcript {
        segment: TranscriptSegment,
        /// Wall-clock delay after the utterance ended.
        latency_ms: Option<f64>,
    },
    Note(String),
    /// The agent asked for help during `call` (or between calls).
    HelpRequested {
        call: Option<String>,
    },
    /// A supervisor's private nudge, from the hub.
    Whisper {
        from: String,
        text: String,
    },
    /// The hub link's state (connected, lost, spooling), for the status line.
    HubStatus(String),
    /// The audio ended and every call is written.
    End {
        stream_ms: u64,
    },
}

/// How the live run behaves; shared by replay and capture.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub book: RuleBook,
    /// How the report names the rule book.
    pub rules_name: String,
    pub agent_id: Option<String>,
    /// A call is in progress from the first sample (a replayed recording).
    pub call_at_start: bool,
    /// Start calls on sustained speech of both parties (besides the API and hotkeys).
    pub auto_start: bool,
    /// End an auto-started call after this many seconds in which nobody spoke.
    pub auto_end_s: f64,
    /// Where each call's report, transcript and recording go.
    pub out_dir: PathBuf,
    pub record: bool,
    /// Whisper model; `None`: ASR off for `asr_off_reason`.
    pub model: Option<PathBuf>,
    pub asr_off_reason: String,
    /// Ring size per party, milliseconds of audio.
    pub ring_ms: u32,
    /// Listen-in: while a supervisor listens, the call's audio goes out through this tap.
    pub listen: Option<ListenTap>,
    /// Set to stop (Ctrl-C, the overlay closed): the source ends, the call in progress is
    /// finished and written like any other.
    pub stop: Arc<AtomicBool>,
}

mod asr_lane;
mod autostart;
mod devices;
mod listen_tap;
mod meters;
mod pipeline;
mod recorder;
mod replay;
mod session;
mod text_ui;

use asr_lane::*;
use autostart::*;
pub use devices::*;
pub use listen_tap::ListenTap;
use meters::*;
pub use pipeline::*;
use recorder::*;
pub use replay::*;
use session::*;
pub use text_ui::*;
