//! A recording replayed as a live source: 10 ms periods at real-time pace (or as fast as the
//! pipeline takes them) into the same rings a device fills.

use super::*;

pub(super) type Ring = (rtrb::Producer<f32>, rtrb::Consumer<f32>);

/// One party's ring, `ring_ms` of audio at `rate`.
pub(super) fn party_ring(rate: u32, ring_ms: u32) -> Ring {
    RingBuffer::<f32>::new((rate as usize * ring_ms as usize / 1000).max(1024))
}

/// Rounds to what a 16-bit device delivers (recordings are 16-bit; a replayed float file is
/// heard as a device would deliver it, so the recording holds exactly what was analysed).
pub(super) fn to_16_bit(x: f32) -> f32 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) / 32768.0
}

/// Starts replaying `input` as a live source (at real-time pace with `realtime`, else as fast
/// as the pipeline takes it); returns the UI event stream.
pub fn replay(
    input: &Path,
    realtime: bool,
    cfg: LiveConfig,
    control: Receiver<Control>,
) -> anyhow::Result<Receiver<UiEvent>> {
    let mut decoder = Decoder::open(input)?;
    let rate = decoder.rate();
    let channels = decoder.channels();
    let parties = if channels >= 2 { 2 } else { 1 };
    let (mut agent_tx, agent_rx) = party_ring(rate, cfg.ring_ms);
    let (mut caller_tx, caller_rx) = party_ring(rate, cfg.ring_ms);
    let (ui_tx, ui_rx) = bounded::<UiEvent>(1024);
    let (src_tx, src_rx) = bounded::<SourceMsg>(16);
    let start = Instant::now();
    let ui_source = ui_tx.clone();
    let cfg_stop = cfg.stop.clone();
    std::thread::Builder::new()
        .name("callcoach-source".into())
        .spawn(move || {
            let src = src_tx; // the source ends when this thread does
            let mut sent: u64 = 0;
            let mut dropped = [0u64; 2];
            // Silence owed to a ring for samples it dropped (as the capture callback does): a
            // party's ring always holds as many samples as were delivered, so the parties stay
            // aligned through an overflow.
            let mut owed = [0u64; 2];
            let stop = cfg_stop;
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let block = match decoder.next_block() {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = ui_source.send(UiEvent::Note(format!("replay stopped: {e}")));
                        break;
                    }
                };
                // Delivered like a device: 10 ms periods, each when its time has come.
                let period = (rate as usize / 100).max(1) * channels;
                for chunk in block.chunks(period) {
                    let frames = chunk.len() / channels;
                    if realtime {
                        let due =
                            Duration::from_secs_f64((sent + frames as u64) as f64 / rate as f64);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    for (ch, tx) in [&mut agent_tx, &mut caller_tx]
                        .into_iter()
                        .enumerate()
                        .take(parties)
                    {
                        if realtime {
                            // Pay what is owed first, as far as there is room.
                            while owed[ch] > 0 && tx.push(0.0).is_ok() {
                                owed[ch] -= 1;
                            }
                        }
                        for x in chunk.iter().skip(ch).step_by(channels).take(frames) {
                            // A device cannot wait: at real-time pace a full ring drops, counts
                            // and owes the sample (a sample behind owed silence waits its turn:
                            // dropped and owed too). A file replayed as fast as possible waits
                            // for room.
                            if realtime {
                                if owed[ch] > 0 || tx.push(to_16_bit(*x)).is_err() {
                                    dropped[ch] += 1;
                                    owed[ch] += 1;
                                }
                                continue;
                            }
                            while tx.push(to_16_bit(*x)).is_err() {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                    }
                    sent += frames as u64;
                }
            }
            // What is still owed goes in at the end (waiting for room now does no harm).
            for (ch, tx) in [&mut agent_tx, &mut caller_tx]
                .into_iter()
                .enumerate()
                .take(parties)
            {
                while owed[ch] > 0 && !stop.load(Ordering::Relaxed) && !tx.is_abandoned() {
                    if tx.push(0.0).is_ok() {
                        owed[ch] -= 1;
                    } else {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            let (skipped, filled) = decoder.damaged();
            if filled > 0 {
                let _ = src.send(SourceMsg::Warning(InputWarning {
                    code: "damaged-packets".into(),
                    party: None,
                    message: format!(
                        "{}: {skipped} damaged packet(s) and unreadable data replaced by {:.2} s of silence (the parties stay aligned)",
                        decoder.path().display(),
                        filled as f64 / rate as f64
                    ),
                }));
            }
            for (i, d) in dropped.iter().enumerate() {
                if *d > 0 {
                    let party = if i == 0 { Party::Agent } else { Party::Caller };
                    let _ = ui_source.send(UiEvent::Overflow { party, samples: *d });
                }
            }
            // Dropping the producers tells the pipeline the stream has ended.
        })?;
    spawn_pipeline(
        rate,
        [Some(agent_rx), (parties == 2).then_some(caller_rx)],
        cfg,
        realtime.then_some(start),
        ui_tx,
        control,
        src_rx,
    )?;
    Ok(ui_rx)
}
