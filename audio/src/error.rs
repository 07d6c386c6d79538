//! Typed errors of the audio crate. Every variant names the file and says what to do.

use std::path::PathBuf;

/// What went wrong while reading or analysing a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read the file: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is empty (0 bytes).
    #[error("{path}: the file is empty (0 bytes); record or export the call again")]
    EmptyFile { path: PathBuf },
    /// The container or codec is not one we can read.
    #[error("{path}: not a supported audio file ({detail}); use WAV (PCM, float, µ-law, A-law), FLAC, MP3 or Ogg Vorbis")]
    Unsupported { path: PathBuf, detail: String },
    /// The file's data is damaged.
    #[error("{path}: the audio data is corrupt or truncated ({detail}); re-export the recording")]
    Corrupt { path: PathBuf, detail: String },
    /// Decoded fine but holds no samples.
    #[error("{path}: the recording holds no audio samples (zero length)")]
    NoAudio { path: PathBuf },
    /// Sample rate we cannot work with.
    #[error("{path}: unsupported sample rate {rate} Hz; 8000 to 192000 Hz are supported")]
    BadSampleRate { path: PathBuf, rate: u32 },
    /// Channel layout does not fit the requested call layout.
    #[error("{path}: {detail}")]
    Layout { path: PathBuf, detail: String },
    /// Internal resampler failure (should not happen with supported rates).
    #[error("resampler: {0}")]
    Resampler(String),
    /// Loudness meter failure.
    #[error("loudness meter: {0}")]
    Loudness(String),
}

impl AudioError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
}
