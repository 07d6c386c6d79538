//! Local speech recognition for callcoach: Whisper model management, the transcriber and its
//! worker thread, utterance streaming with LocalAgreement, and hallucination guards.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod ct2;
pub mod guard;
pub mod models;
pub mod stream;
pub mod transcriber;
#[cfg(feature = "whisper")]
pub mod whisper;

pub use transcriber::{AsrConfig, AsrError, Transcriber, TranscriptOut, Worker};

/// Loads the backend for a model file, or says ASR is off and why.
pub fn load_backend(path: &std::path::Path) -> Result<Box<dyn Transcriber>, AsrError> {
    #[cfg(feature = "whisper")]
    {
        whisper::load(path)
    }
    #[cfg(not(feature = "whisper"))]
    {
        let _ = path;
        Err(AsrError::NoBackend)
    }
}
