//! The whisper.cpp backend (whisper-rs).

use std::path::Path;

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::models::check_header;
use crate::transcriber::{AsrConfig, AsrError, RawSegment, Transcriber};

/// A loaded Whisper model with its decoding state.
pub struct WhisperTranscriber {
    // The state borrows nothing from the context in whisper-rs (it holds an Arc), but keep the
    // context alive alongside it.
    _ctx: WhisperContext,
    state: WhisperState,
}

impl std::fmt::Debug for WhisperTranscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperTranscriber").finish_non_exhaustive()
    }
}

impl WhisperTranscriber {
    /// Loads a ggml model (checks the header first, so a wrong file gets a clear message).
    pub fn load(path: &Path) -> Result<Self, AsrError> {
        Self::load_with(path, false)
    }

    /// [`Self::load`], with whisper.cpp's flash attention on or off.
    pub fn load_with(path: &Path, flash_attn: bool) -> Result<Self, AsrError> {
        check_header(path)?;
        // whisper.cpp prints its progress to stderr; route it away from the user's terminal.
        whisper_rs::install_logging_hooks();
        let name = path.display().to_string();
        let mut params = WhisperContextParameters::default();
        params.flash_attn(flash_attn);
        let ctx = WhisperContext::new_with_params(path, params).map_err(|e| AsrError::Load {
            path: name.clone(),
            detail: e.to_string(),
        })?;
        let state = ctx.create_state().map_err(|e| AsrError::Load {
            path: name,
            detail: e.to_string(),
        })?;
        Ok(Self { _ctx: ctx, state })
    }
}

impl Transcriber for WhisperTranscriber {
    fn transcribe(&mut self, audio: &[f32], cfg: &AsrConfig) -> Result<Vec<RawSegment>, AsrError> {
        let mut p = FullParams::new(if cfg.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: cfg.beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        });
        p.set_language(Some(&cfg.language));
        p.set_temperature(0.0);
        if !cfg.temperature_fallback {
            p.set_temperature_inc(0.0);
        }
        p.set_initial_prompt(&cfg.initial_prompt);
        p.set_n_threads(cfg.threads as i32);
        p.set_audio_ctx(cfg.audio_ctx_for(audio.len()));
        p.set_no_context(true);
        p.set_suppress_blank(true);
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_special(false);
        p.set_print_timestamps(false);
        // Whisper needs at least 1 s of input; pad short utterances with silence.
        let mut padded;
        let input = if audio.len() < 16_000 {
            padded = audio.to_vec();
            padded.resize(16_100, 0.0);
            &padded[..]
        } else {
            audio
        };
        self.state
            .full(p, input)
            .map_err(|e| AsrError::Decode(e.to_string()))?;
        let mut out = Vec::new();
        for i in 0..self.state.full_n_segments() {
            let Some(seg) = self.state.get_segment(i) else {
                continue;
            };
            out.push(RawSegment {
                start_ms: (seg.start_timestamp().max(0) as u64) * 10,
                end_ms: (seg.end_timestamp().max(0) as u64) * 10,
                text: seg
                    .to_str_lossy()
                    .map(|s| s.into_owned())
                    .unwrap_or_default(),
                no_speech_prob: seg.no_speech_probability(),
            });
        }
        Ok(out)
    }
}

/// Loads the Whisper backend for a model file.
pub fn load(path: &Path) -> Result<Box<dyn Transcriber>, AsrError> {
    Ok(Box::new(WhisperTranscriber::load(path)?))
}

/// [`load`] with flash attention on or off.
pub fn load_with(path: &Path, flash_attn: bool) -> Result<Box<dyn Transcriber>, AsrError> {
    Ok(Box::new(WhisperTranscriber::load_with(path, flash_attn)?))
}
