//! Syllable envelope: per 10 ms frame, the level of the vowel band where Mandarin syllable
//! nuclei stand out (mean power of the 2 strongest of 8 log-spaced bands, 450–3400 Hz, so it
//! works the same on 8 kHz telephone audio).
//!
//! Built once; [`SyllableEnvelope::push`] does one 512-point real FFT on the last 25 ms and
//! never allocates.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::resample::{ANALYSIS_RATE, FRAME_LEN};

const WINDOW: usize = 400; // 25 ms
const FFT_LEN: usize = 512;
const BANDS: usize = 8;
const LOW_HZ: f32 = 450.0;
const HIGH_HZ: f32 = 3400.0;
/// Floor for levels in dB, well below any real recording's noise.
pub const FLOOR_DB: f32 = -120.0;

/// Computes the syllable envelope frame by frame.
pub struct SyllableEnvelope {
    fft: Arc<dyn RealToComplex<f32>>,
    history: [f32; WINDOW],
    window: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    band_bins: [(usize, usize); BANDS],
}

impl std::fmt::Debug for SyllableEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyllableEnvelope").finish_non_exhaustive()
    }
}

impl Default for SyllableEnvelope {
    fn default() -> Self {
        Self::new()
    }
}

impl SyllableEnvelope {
    /// Plans the FFT and allocates all buffers.
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_LEN);
        let window = (0..WINDOW)
            .map(|i| {
                let x = std::f32::consts::PI * 2.0 * i as f32 / WINDOW as f32;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        let bin_hz = ANALYSIS_RATE as f32 / FFT_LEN as f32;
        let mut band_bins = [(0, 0); BANDS];
        let ratio = (HIGH_HZ / LOW_HZ).powf(1.0 / BANDS as f32);
        for (b, slot) in band_bins.iter_mut().enumerate() {
            let lo = LOW_HZ * ratio.powi(b as i32);
            let hi = lo * ratio;
            let lo_bin = (lo / bin_hz).round() as usize;
            let hi_bin = ((hi / bin_hz).round() as usize).max(lo_bin + 1);
            *slot = (lo_bin, hi_bin);
        }
        let input = fft.make_input_vec();
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Self {
            fft,
            history: [0.0; WINDOW],
            window,
            input,
            spectrum,
            scratch,
            band_bins,
        }
    }

    /// Adds one frame and returns the envelope level in dB for the 25 ms ending with it.
    pub fn push(&mut self, frame: &[f32; FRAME_LEN]) -> f32 {
        self.history.copy_within(FRAME_LEN.., 0);
        self.history[WINDOW - FRAME_LEN..].copy_from_slice(frame);
        for ((dst, &x), &w) in self.input.iter_mut().zip(&self.history).zip(&self.window) {
            *dst = x * w;
        }
        self.input[WINDOW..].fill(0.0);
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .is_err()
        {
            return FLOOR_DB; // lengths are fixed at construction; cannot happen
        }
        let mut top = [0.0f32; 2];
        for &(lo, hi) in &self.band_bins {
            let p: f32 = self.spectrum[lo..hi]
                .iter()
                .map(|c| c.norm_sqr())
                .sum::<f32>()
                / (hi - lo) as f32;
            if p > top[0] {
                top[1] = top[0];
                top[0] = p;
            } else if p > top[1] {
                top[1] = p;
            }
        }
        let mean = (top[0] + top[1]) * 0.5;
        power_db(mean)
    }
}

/// Power to dB with the common floor.
pub fn power_db(p: f32) -> f32 {
    if p > 1e-12 {
        (10.0 * p.log10()).max(FLOOR_DB)
    } else {
        FLOOR_DB
    }
}
