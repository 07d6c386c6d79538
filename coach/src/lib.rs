//! The coach: rule book and rule engine turning time-stamped features and transcripts into
//! warnings. Pure and deterministic (time is an input).
//!
//! Not built yet: the coach issue fills this crate. It will depend on neither `audio` nor `asr`.
