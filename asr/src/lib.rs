//! Local speech recognition for callcoach (Whisper via whisper-rs).
//!
//! Not built yet: the ASR issue fills this crate (transcriber trait, whisper backend, streaming,
//! model management). Until then `callcoach` runs without ASR and says so.
