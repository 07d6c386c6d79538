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

/// Whether whisper.cpp's flash attention is used by default (see the README's measurements).
pub const FLASH_ATTN_DEFAULT: bool = false;

/// Loads the backend for a model file, or says ASR is off and why.
pub fn load_backend(path: &std::path::Path) -> Result<Box<dyn Transcriber>, AsrError> {
    load_backend_with(path, FLASH_ATTN_DEFAULT)
}

/// [`load_backend`] with flash attention on or off.
pub fn load_backend_with(
    path: &std::path::Path,
    flash_attn: bool,
) -> Result<Box<dyn Transcriber>, AsrError> {
    #[cfg(feature = "whisper")]
    {
        whisper::load_with(path, flash_attn)
    }
    #[cfg(not(feature = "whisper"))]
    {
        let _ = (path, flash_attn);
        Err(AsrError::NoBackend)
    }
}
