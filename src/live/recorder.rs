//! The call recorder: 16-bit WAV on its own thread; what cannot be written is reported.

use super::*;

/// Writes a call's audio on its own thread: 16-bit WAV, agent left. Samples carry their offset
/// in the call so that anything dropped on the way becomes counted silence, not a shift.
pub(super) struct Recorder {
    pub(super) tx: Sender<(Party, u64, Vec<f32>)>,
    pub(super) handle: JoinHandle<anyhow::Result<RecordingInfo>>,
    /// Chunks the pipeline could not hand over (the disk fell behind).
    pub(super) dropped_chunks: u64,
}

#[derive(Debug)]
pub(super) struct RecordingInfo {
    pub(super) path: PathBuf,
    pub(super) frames: u64,
    /// Samples written as silence because they never reached the recorder.
    pub(super) filled: u64,
}

impl Recorder {
    pub(super) fn start(path: PathBuf, rate: u32, parties: usize) -> anyhow::Result<Self> {
        let spec = hound::WavSpec {
            channels: parties as u16,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec)
            .with_context(|| format!("{}: cannot create the recording", path.display()))?;
        let (tx, rx) = bounded::<(Party, u64, Vec<f32>)>(1024);
        let handle = std::thread::Builder::new()
            .name("callcoach-recorder".into())
            .spawn(move || -> anyhow::Result<RecordingInfo> {
                let mut lanes: [VecDeque<i16>; 2] = [VecDeque::new(), VecDeque::new()];
                let mut next = [0u64; 2];
                let mut filled = 0u64;
                let mut frames = 0u64;
                let q = |x: f32| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                // Writes the whole frames both lanes have, one frame at a time (so a failure
                // never leaves half a frame), counting them in `frames`.
                let write = |lanes: &mut [VecDeque<i16>; 2],
                             writer: &mut hound::WavWriter<_>,
                             frames: &mut u64|
                 -> anyhow::Result<()> {
                    let n = lanes
                        .iter()
                        .take(parties)
                        .map(VecDeque::len)
                        .min()
                        .unwrap_or(0);
                    for _ in 0..n {
                        for lane in lanes.iter_mut().take(parties) {
                            writer.write_sample(lane.pop_front().unwrap_or(0))?;
                        }
                        *frames += 1;
                    }
                    Ok(())
                };
                let mut failed = None;
                // The file is made valid (header written, buffer flushed) every second of audio,
                // so a disk that fills up mid-call leaves a playable recording up to then.
                let mut flushed = 0u64;
                for (party, offset, samples) in rx {
                    let i = party.index();
                    if offset > next[i] {
                        filled += offset - next[i];
                        lanes[i].extend(std::iter::repeat_n(0, (offset - next[i]) as usize));
                    }
                    lanes[i].extend(samples.iter().map(|&x| q(x)));
                    next[i] = offset.max(next[i]) + samples.len() as u64;
                    if let Err(e) = write(&mut lanes, &mut writer, &mut frames) {
                        failed = Some(e);
                        break;
                    }
                    if frames >= flushed + u64::from(rate) {
                        if let Err(e) = writer.flush() {
                            failed = Some(e.into());
                            break;
                        }
                        flushed = frames;
                    }
                }
                if failed.is_none() {
                    // The parties were padded to the same length before the end.
                    let longest = lanes
                        .iter()
                        .take(parties)
                        .map(VecDeque::len)
                        .max()
                        .unwrap_or(0);
                    for lane in lanes.iter_mut().take(parties) {
                        let short = longest - lane.len();
                        filled += short as u64;
                        lane.extend(std::iter::repeat_n(0, short));
                    }
                    failed = write(&mut lanes, &mut writer, &mut frames).err();
                }
                if let Some(e) = failed {
                    // Keep what was written as a playable file (its header says how long it
                    // is), and say so: a partial recording, not a silently broken one.
                    let closed = writer.finalize().is_ok();
                    let kept = if closed { frames } else { flushed } as f64 / f64::from(rate);
                    let secs = frames as f64 / f64::from(rate);
                    return Err(e.context(format!(
                        "{}: the recording stopped after {secs:.1} s; the first {kept:.1} s are kept there",
                        path.display()
                    )));
                }
                writer.finalize()?;
                Ok(RecordingInfo {
                    path,
                    frames,
                    filled,
                })
            })?;
        Ok(Self {
            tx,
            handle,
            dropped_chunks: 0,
        })
    }
    pub(super) fn push(&mut self, party: Party, offset: u64, samples: &[f32]) {
        if self.tx.try_send((party, offset, samples.to_vec())).is_err() {
            self.dropped_chunks += 1;
        }
    }
}
