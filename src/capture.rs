//! Sound-device capture with cpal. The callback only copies samples into lock-free rings
//! (`rtrb`, sized in milliseconds) and returns: no allocation, lock, log or resampling in it.
//! A full ring drops the samples and counts them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

/// An input device as `callcoach devices` lists it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub id: String,
    pub description: String,
    /// (channels, min rate, max rate, sample format)
    pub configs: Vec<(u16, u32, u32, String)>,
}

/// Input devices of the default host.
pub fn list() -> anyhow::Result<Vec<DeviceInfo>> {
    let host = cpal::default_host();
    let mut out = Vec::new();
    for d in host.devices().context("listing sound devices")? {
        let Ok(configs) = d.supported_input_configs() else {
            continue;
        };
        let configs: Vec<_> = configs
            .map(|c| {
                (
                    c.channels(),
                    c.min_sample_rate(),
                    c.max_sample_rate(),
                    format!("{:?}", c.sample_format()),
                )
            })
            .collect();
        if configs.is_empty() {
            continue;
        }
        let id = d.id().map(|i| i.to_string()).unwrap_or_else(|_| "?".into());
        let description = d.description().map(|x| x.to_string()).unwrap_or_default();
        out.push(DeviceInfo {
            id,
            description,
            configs,
        });
    }
    Ok(out)
}

/// Counters shared with the capture callback.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Frames (samples per channel) delivered by the device.
    pub frames: AtomicU64,
    /// Samples dropped because a ring was full.
    pub dropped: AtomicU64,
    /// Frames missing according to the device's capture timestamps.
    pub gap_frames: AtomicU64,
    /// Zero samples put into the rings in place of dropped or missing ones.
    pub filled: AtomicU64,
    /// Overruns the driver reported and recovered (cpal's `Xrun`): counted, not a lost device.
    pub xruns: AtomicU64,
    /// The device reported an error (unplugged, driver failure): reopen it.
    pub failed: AtomicBool,
}

/// Channels the callback keeps per-ring state for.
pub const MAX_RINGS: usize = 8;

/// Samples each ring is owed: silence standing in for samples a full ring dropped and for
/// frames missing between callbacks, so every ring holds as many samples as the device
/// delivered and the parties stay aligned. Kept by the callback (no allocation).
#[derive(Debug, Default, Clone, Copy)]
pub struct Owed([u64; MAX_RINGS]);

impl Owed {
    /// `frames` missing on every ring (a gap in the capture timestamps).
    pub fn gap(&mut self, frames: u64, rings: usize) {
        for o in self.0.iter_mut().take(rings) {
            *o += frames;
        }
    }
}

/// Frames missing between two callbacks, from their capture timestamps (ns): the time beyond
/// what the earlier callback's `frames` cover, ignoring jitter under two periods. Pure and
/// allocation-free (it runs in the callback).
pub fn missing_frames(prev_ns: u128, now_ns: u128, prev_frames: u64, rate: u32) -> u64 {
    let covered = u128::from(prev_frames) * 1_000_000_000 / u128::from(rate.max(1));
    let late = now_ns.saturating_sub(prev_ns).saturating_sub(covered);
    if late > 2 * covered {
        (late * u128::from(rate) / 1_000_000_000) as u64
    } else {
        0
    }
}

/// The capture callback's whole work: first the silence each ring is owed (samples a full ring
/// dropped, frames missing between callbacks: as much as fits), then deinterleave 16-bit frames
/// into the rings (channel k to ring k), counting and owing what a full ring drops; stop after
/// `limit` frames. Every ring thus receives as many samples as the device delivered, so the
/// parties stay sample-aligned. Real-time safe: no allocation (tested with a counting
/// allocator), no lock, no blocking, O(samples + owed).
pub fn deliver(
    data: &[i16],
    channels: usize,
    rings: &mut [rtrb::Producer<f32>],
    counters: &CaptureCounters,
    limit: u64,
    owed: &mut Owed,
) {
    let done = counters.frames.load(Ordering::Relaxed);
    if done >= limit || channels == 0 {
        return;
    }
    for (ring, o) in rings.iter_mut().zip(owed.0.iter_mut()) {
        let n = (*o).min(ring.slots() as u64);
        for _ in 0..n {
            let _ = ring.push(0.0);
        }
        *o -= n;
        counters.filled.fetch_add(n, Ordering::Relaxed);
    }
    let frames = ((data.len() / channels) as u64).min(limit - done) as usize;
    for frame in data.chunks_exact(channels).take(frames) {
        for ((ring, &s), o) in rings.iter_mut().zip(frame).zip(owed.0.iter_mut()) {
            // Behind owed silence, a sample waits its turn: it is dropped (and owed) too.
            if *o > 0 || ring.push(f32::from(s) / 32768.0).is_err() {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                *o += 1;
            }
        }
    }
    counters.frames.fetch_add(frames as u64, Ordering::Relaxed);
}

/// A running capture; dropping it stops the device.
pub struct Capture {
    /// The cpal stream (or, in tests, whatever keeps a simulated device running).
    _stream: Box<dyn std::any::Any>,
    pub counters: Arc<CaptureCounters>,
    error: Arc<Mutex<Option<String>>>,
}

impl Capture {
    /// A capture driven by something other than cpal (tests simulate devices with it); `keep`
    /// is dropped when the capture is.
    pub fn simulated(keep: Box<dyn std::any::Any>, counters: Arc<CaptureCounters>) -> Self {
        Self {
            _stream: keep,
            counters,
            error: Arc::new(Mutex::new(None)),
        }
    }

    /// The device's last error, if it reported one.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Opens `device_id` (as `callcoach devices` prints it) at `rate` with `channels`, 16-bit, and
/// routes channel k to `rings[k]`. `max_frames` stops delivering after that many frames.
pub fn open(
    device_id: &str,
    rate: u32,
    channels: u16,
    mut rings: Vec<rtrb::Producer<f32>>,
    max_frames: Option<u64>,
) -> anyhow::Result<Capture> {
    let host = cpal::default_host();
    let device = host
        .devices()
        .context("listing sound devices")?
        .find(|d| d.id().map(|i| i.to_string() == device_id).unwrap_or(false))
        .with_context(|| {
            format!("no input device '{device_id}'; `callcoach devices` lists them")
        })?;
    let config = cpal::StreamConfig {
        channels,
        sample_rate: rate,
        buffer_size: cpal::BufferSize::Fixed(rate / 100),
    };
    let counters = Arc::new(CaptureCounters::default());
    let c = counters.clone();
    let limit = max_frames.unwrap_or(u64::MAX);
    let ch = channels as usize;
    let error = Arc::new(Mutex::new(None));
    let (e_slot, e_counters) = (error.clone(), counters.clone());
    let mut previous: Option<(u128, u64)> = None;
    let mut owed = Owed::default();
    let n_rings = rings.len();
    let stream = device
        .build_input_stream::<i16, _, _>(
            config,
            move |data: &[i16], info: &cpal::InputCallbackInfo| {
                let now = info.timestamp().capture.as_nanos();
                if let Some((t, n)) = previous {
                    let gap = missing_frames(t, now, n, rate);
                    if gap > 0 {
                        c.gap_frames.fetch_add(gap, Ordering::Relaxed);
                        owed.gap(gap, n_rings);
                    }
                }
                previous = Some((now, (data.len() / ch.max(1)) as u64));
                deliver(data, ch, &mut rings, &c, limit, &mut owed)
            },
            // Not the audio thread: cpal reports errors from its own context.
            move |e: cpal::Error| {
                if !stream_fails(e.kind()) {
                    // Recovered by cpal (an overrun); the gap shows in the timestamps and is
                    // filled with silence.
                    e_counters.xruns.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if let Ok(mut slot) = e_slot.lock() {
                    *slot = Some(e.to_string());
                }
                e_counters.failed.store(true, Ordering::Relaxed);
            },
            None,
        )
        .with_context(|| {
            format!("{device_id}: cannot open for {channels} channel(s) at {rate} Hz, 16-bit")
        })?;
    stream
        .play()
        .with_context(|| format!("{device_id}: cannot start capture"))?;
    Ok(Capture {
        _stream: Box::new(stream),
        counters,
        error,
    })
}

/// Whether a stream error ends the stream (the device must be reopened). An overrun (`Xrun`)
/// is recovered by cpal itself, a reroute (`DeviceChanged`) keeps the stream running, and a
/// refused real-time priority (`RealtimeDenied`) leaves the audio flowing.
pub fn stream_fails(kind: cpal::ErrorKind) -> bool {
    !matches!(
        kind,
        cpal::ErrorKind::Xrun | cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overrun_is_not_a_lost_device() {
        assert!(!stream_fails(cpal::ErrorKind::Xrun));
        assert!(!stream_fails(cpal::ErrorKind::DeviceChanged));
        assert!(stream_fails(cpal::ErrorKind::DeviceNotAvailable));
        assert!(stream_fails(cpal::ErrorKind::BackendError));
    }

    #[test]
    fn dropped_and_missing_samples_become_silence_so_the_rings_stay_aligned() {
        // A small caller ring that fills, a large agent ring that does not.
        let (a_tx, mut a_rx) = rtrb::RingBuffer::<f32>::new(1_000);
        let (c_tx, mut c_rx) = rtrb::RingBuffer::<f32>::new(200);
        let mut rings = vec![a_tx, c_tx];
        let counters = CaptureCounters::default();
        let mut owed = Owed::default();
        let period: Vec<i16> = vec![1000; 320]; // 160 stereo frames
        for _ in 0..2 {
            deliver(&period, 2, &mut rings, &counters, u64::MAX, &mut owed);
        }
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 120);
        // the pipeline reads everything, then a 100-frame gap in the timestamps
        let (mut a, mut c) = (0, 0);
        let mut drain = |a: &mut usize, c: &mut usize| {
            while a_rx.pop().is_ok() {
                *a += 1;
            }
            while c_rx.pop().is_ok() {
                *c += 1;
            }
        };
        drain(&mut a, &mut c);
        owed.gap(100, 2);
        deliver(&period, 2, &mut rings, &counters, u64::MAX, &mut owed);
        drain(&mut a, &mut c);
        deliver(&period, 2, &mut rings, &counters, u64::MAX, &mut owed);
        drain(&mut a, &mut c);
        // what is still owed goes in as room comes (an empty callback still pays it)
        for _ in 0..3 {
            deliver(&[], 2, &mut rings, &counters, u64::MAX, &mut owed);
            drain(&mut a, &mut c);
        }
        // 4 periods of 160 frames plus the 100-frame gap, on both rings
        assert_eq!((a, c), (740, 740));
        assert_eq!(counters.filled.load(Ordering::Relaxed), 100 + 520);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 120 + 160 + 140);
    }

    #[test]
    fn gaps_from_timestamps_ignore_jitter_and_count_what_is_missing() {
        let ms = 1_000_000u128;
        // 10 ms periods at 16 kHz arriving on time, or with 15 ms of jitter: nothing missing.
        assert_eq!(missing_frames(0, 10 * ms, 160, 16_000), 0);
        assert_eq!(missing_frames(0, 25 * ms, 160, 16_000), 0);
        // 100 ms later than the period covers: 90 ms = 1440 frames missing.
        assert_eq!(missing_frames(0, 100 * ms, 160, 16_000), 1440);
        // Early (a burst after a stall) or a clock that went back: nothing.
        assert_eq!(missing_frames(50 * ms, 20 * ms, 160, 16_000), 0);
        assert_eq!(missing_frames(0, 1_000 * ms, 80, 8_000), 7920);
    }
}
