//! Streaming conversion of one party's audio to 16 kHz mono, cut into 10 ms frames.
//!
//! Following rubato's real-time advice, the resampler and every buffer are built in
//! [`PartyResampler::new`]; [`PartyResampler::push`] only copies and calls
//! `process_into_buffer`, so it never allocates. Input is staged into fixed-size chunks, so the
//! resampler always sees the same chunks whatever sizes the caller pushes: the output is
//! bit-identical for any chunking of the same input.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use crate::error::AudioError;

/// Analysis sample rate of every party.
pub const ANALYSIS_RATE: u32 = 16_000;
/// Samples in one 10 ms analysis frame at [`ANALYSIS_RATE`].
pub const FRAME_LEN: usize = 160;
/// Lowest and highest input rates accepted.
pub const MIN_RATE: u32 = 8_000;
pub const MAX_RATE: u32 = 192_000;

/// Input audio per resampler call, in milliseconds: the staging delay. Telephone audio must
/// reach the detectors within a few tens of milliseconds (a 512 ms chunk at 8 kHz delayed every
/// live warning by half a second).
const CHUNK_MS: usize = 20;

/// Input frames per resampler call: the multiple of the smallest block the ratio allows that is
/// nearest to [`CHUNK_MS`] (at least one block). With one FFT per call the resampler's own delay
/// is half an output block, so the audio path adds at most about 1.5 × [`CHUNK_MS`] (20 ms at
/// 8 kHz and 48 kHz: 160 and 960 input samples; 44.1 kHz: 882; 11.025 kHz: 441, 40 ms).
/// These sizes factor into small primes, so rustfft never falls back to Rader's algorithm.
fn chunk_in(rate_in: u32) -> usize {
    let (mut a, mut b) = (rate_in as usize, ANALYSIS_RATE as usize);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let min_block = rate_in as usize / a;
    let wanted = rate_in as usize * CHUNK_MS / 1000;
    min_block * ((wanted + min_block / 2) / min_block).max(1)
}

/// Resamples one mono stream to 16 kHz and hands out whole 10 ms frames.
///
/// Delay: up to one staging chunk (about 20 ms of input) plus the FFT resampler's own delay
/// (half an output block, about 10 ms); the resampler's delay is trimmed from the output, so
/// frame timestamps match the input's sample counts exactly.
///
/// Cost per call of [`Self::push`]: a copy of the input into the staging chunk and, per full
/// chunk, one real FFT of twice the input block and one inverse FFT of twice the output block
/// (O(n log n) for n ≈ 20 ms of audio) — no allocation, no locking.
pub struct PartyResampler {
    engine: Option<Box<Fft<f32>>>,
    staging: Vec<f32>,
    staged: usize,
    out: Vec<f32>,
    /// Output samples still to drop: the resampler's start-up delay.
    delay_left: usize,
    input_total: u64,
    output_total: u64,
    /// At the end of the stream: output samples beyond this are padding and are dropped.
    output_limit: u64,
    rate_in: u32,
    frame: [f32; FRAME_LEN],
    frame_fill: usize,
    /// NaN or infinite input samples, replaced by silence (float files can hold them).
    non_finite: u64,
}

impl std::fmt::Debug for PartyResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartyResampler")
            .field("rate_in", &self.rate_in)
            .field("input_total", &self.input_total)
            .field("output_total", &self.output_total)
            .finish_non_exhaustive()
    }
}

impl PartyResampler {
    /// Builds the resampler and all its buffers (allocates; call before the stream starts).
    pub fn new(rate_in: u32) -> Result<Self, AudioError> {
        if !(MIN_RATE..=MAX_RATE).contains(&rate_in) {
            return Err(AudioError::Resampler(format!(
                "input rate {rate_in} Hz outside {MIN_RATE}..={MAX_RATE} Hz"
            )));
        }
        let chunk_in = chunk_in(rate_in);
        let (engine, out_len, delay) = if rate_in == ANALYSIS_RATE {
            (None, 0, 0)
        } else {
            let fft = Fft::<f32>::new_custom(
                rate_in as usize,
                ANALYSIS_RATE as usize,
                chunk_in,
                1,
                1,
                rubato::WindowFunction::BlackmanHarris2,
                FixedSync::Input,
            )
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
            let out_len = fft.output_frames_max();
            let delay = fft.output_delay();
            (Some(Box::new(fft)), out_len, delay)
        };
        Ok(Self {
            engine,
            staging: vec![0.0; chunk_in],
            staged: 0,
            out: vec![0.0; out_len],
            delay_left: delay,
            input_total: 0,
            output_total: 0,
            output_limit: u64::MAX,
            rate_in,
            frame: [0.0; FRAME_LEN],
            frame_fill: 0,
            non_finite: 0,
        })
    }

    /// NaN or infinite samples seen so far (each was replaced by 0).
    pub fn non_finite_samples(&self) -> u64 {
        self.non_finite
    }

    /// Input sample rate.
    pub fn rate_in(&self) -> u32 {
        self.rate_in
    }

    /// Pushes input samples; calls `on_frame` for every complete 10 ms frame.
    /// Does not allocate or block.
    pub fn push(
        &mut self,
        input: &[f32],
        on_frame: &mut dyn FnMut(&[f32; FRAME_LEN]),
    ) -> Result<(), AudioError> {
        self.input_total += input.len() as u64;
        if self.engine.is_none() {
            Self::frame_out(
                &mut self.frame,
                &mut self.frame_fill,
                input,
                &mut self.non_finite,
                on_frame,
            );
            return Ok(());
        }
        let mut rest = input;
        while !rest.is_empty() {
            let take = (self.staging.len() - self.staged).min(rest.len());
            for (dst, &x) in self.staging[self.staged..self.staged + take]
                .iter_mut()
                .zip(&rest[..take])
            {
                *dst = finite_or_zero(x, &mut self.non_finite);
            }
            self.staged += take;
            rest = &rest[take..];
            if self.staged == self.staging.len() {
                self.run_chunk(None, on_frame)?;
            }
        }
        Ok(())
    }

    /// Flushes the remaining input (end of stream). The last partial frame is zero-padded so
    /// that no audio is lost; returns the number of 16 kHz samples that carried real input.
    pub fn finish(
        &mut self,
        on_frame: &mut dyn FnMut(&[f32; FRAME_LEN]),
    ) -> Result<u64, AudioError> {
        let expected = (self.input_total as u128 * ANALYSIS_RATE as u128)
            .div_ceil(self.rate_in as u128) as u64;
        if self.engine.is_some() {
            // Feed the partial chunk, then silence, until all real output has come out.
            self.output_limit = expected;
            let partial = self.staged;
            self.run_chunk(Some(partial), on_frame)?;
            let mut guard = 0;
            while self.output_total < expected && guard < 64 {
                self.run_chunk(Some(0), on_frame)?;
                guard += 1;
            }
        }
        if self.frame_fill > 0 {
            self.frame[self.frame_fill..].fill(0.0);
            on_frame(&self.frame);
            self.frame_fill = 0;
        }
        Ok(expected)
    }

    fn run_chunk(
        &mut self,
        partial: Option<usize>,
        on_frame: &mut dyn FnMut(&[f32; FRAME_LEN]),
    ) -> Result<(), AudioError> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(());
        };
        if let Some(n) = partial {
            self.staging[n..].fill(0.0);
        }
        let input = InterleavedSlice::new(&self.staging[..], 1, self.staging.len())
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let out_frames = self.out.len();
        let mut output = InterleavedSlice::new_mut(&mut self.out[..], 1, out_frames)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let indexing = Indexing::new();
        let (_, produced) = engine
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        self.staged = 0;
        let mut produced_slice = &self.out[..produced];
        let drop = self.delay_left.min(produced_slice.len());
        self.delay_left -= drop;
        produced_slice = &produced_slice[drop..];
        let room = self.output_limit.saturating_sub(self.output_total);
        if (produced_slice.len() as u64) > room {
            produced_slice = &produced_slice[..room as usize];
        }
        self.output_total += produced_slice.len() as u64;
        // Resampled output is finite (the input was sanitised): nothing more to count.
        let mut none = 0;
        Self::frame_out(
            &mut self.frame,
            &mut self.frame_fill,
            produced_slice,
            &mut none,
            on_frame,
        );
        Ok(())
    }

    fn frame_out(
        frame: &mut [f32; FRAME_LEN],
        fill: &mut usize,
        mut samples: &[f32],
        non_finite: &mut u64,
        on_frame: &mut dyn FnMut(&[f32; FRAME_LEN]),
    ) {
        while !samples.is_empty() {
            let take = (FRAME_LEN - *fill).min(samples.len());
            for (dst, &x) in frame[*fill..*fill + take].iter_mut().zip(&samples[..take]) {
                *dst = finite_or_zero(x, non_finite);
            }
            *fill += take;
            samples = &samples[take..];
            if *fill == FRAME_LEN {
                on_frame(frame);
                *fill = 0;
            }
        }
    }
}

fn finite_or_zero(x: f32, count: &mut u64) -> f32 {
    if x.is_finite() {
        x
    } else {
        *count += 1;
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(rate: u32, seconds: f32, chunk: usize) -> Vec<f32> {
        let input: Vec<f32> = (0..(rate as f32 * seconds) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin() * 0.5)
            .collect();
        let mut r = PartyResampler::new(rate).unwrap();
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            r.push(c, &mut |f| out.extend_from_slice(f)).unwrap();
        }
        r.finish(&mut |f| out.extend_from_slice(f)).unwrap();
        out
    }

    #[test]
    fn output_length_follows_sample_counts_exactly() {
        for rate in [8000, 11025, 16000, 22050, 44100, 48000] {
            assert_eq!(frames_of(rate, 1.0, 333).len(), 16000, "{rate} Hz");
        }
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_level_and_timing() {
        for rate in [8000, 44100, 48000] {
            let out = frames_of(rate, 1.0, 1000);
            // Zero crossings of a 440 Hz tone over the middle 0.5 s: 440.
            let mid = &out[4000..12000];
            let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
            assert!((219..=221).contains(&crossings), "{rate} Hz: {crossings}");
            let rms = (mid.iter().map(|x| x * x).sum::<f32>() / mid.len() as f32).sqrt();
            assert!(
                (rms - 0.5 / 2f32.sqrt()).abs() < 0.01,
                "{rate} Hz: rms {rms}"
            );
            // The resampler delay is trimmed: the tone starts at sample 0, not later.
            assert!(
                out[..40].iter().any(|x| x.abs() > 0.2),
                "{rate} Hz: late start"
            );
        }
    }

    #[test]
    fn non_finite_input_becomes_silence_and_is_counted() {
        for rate in [16000, 48000] {
            let mut r = PartyResampler::new(rate).unwrap();
            let mut out = Vec::new();
            let input = [0.1, f32::NAN, f32::INFINITY, -0.1].repeat(rate as usize / 4);
            r.push(&input, &mut |f| out.extend_from_slice(f)).unwrap();
            r.finish(&mut |f| out.extend_from_slice(f)).unwrap();
            assert!(out.iter().all(|x| x.is_finite()));
            assert_eq!(r.non_finite_samples(), rate as u64 / 2);
        }
    }

    #[test]
    fn a_frame_comes_out_within_35_ms_of_its_input() {
        // Feed one sample at a time and note how much input had arrived when the frame holding
        // 100 ms … 110 ms came out: at most that frame's end plus the staging and filter delay.
        for (rate, bound_ms) in [(8000u32, 35.0), (11025, 55.0), (44100, 35.0), (48000, 35.0)] {
            let mut r = PartyResampler::new(rate).unwrap();
            let mut frames = 0usize;
            let mut arrived_at = None;
            for i in 0..rate as usize / 2 {
                let x = (i as f32 * 0.01).sin() * 0.1;
                r.push(&[x], &mut |_| frames += 1).unwrap();
                if frames > 10 && arrived_at.is_none() {
                    arrived_at = Some(i + 1);
                }
            }
            let late_ms = arrived_at.unwrap() as f64 * 1000.0 / rate as f64 - 110.0;
            assert!(
                late_ms <= bound_ms,
                "{rate} Hz: frame out {late_ms:.1} ms late"
            );
        }
    }

    #[test]
    fn rejects_rates_out_of_range() {
        assert!(PartyResampler::new(4000).is_err());
        assert!(PartyResampler::new(400_000).is_err());
    }
}
