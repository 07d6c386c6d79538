//! Sound devices: opening them, and the supervisor that reopens a lost one.

use super::*;

/// Where live audio comes from.
#[derive(Debug, Clone)]
pub enum Devices {
    /// One device, agent on channel 0 (left), caller on channel 1.
    Stereo(String),
    /// Separate devices; the caller's may be absent (agent only).
    Pair {
        agent: String,
        caller: Option<String>,
    },
}

/// Opens a device: (id, rate, channels, rings for its channels, frame limit).
pub type Opener = dyn FnMut(
        &str,
        u32,
        u16,
        Vec<rtrb::Producer<f32>>,
        Option<u64>,
    ) -> anyhow::Result<crate::capture::Capture>
    + Send;

/// One device the supervisor keeps open.
pub(super) struct Slot {
    pub(super) id: String,
    pub(super) parties: Vec<Party>,
    pub(super) capture: Option<crate::capture::Capture>,
    pub(super) retry_at: Instant,
    pub(super) backoff: Duration,
    /// Frames delivered by earlier openings (for the `--seconds` limit).
    pub(super) frames_before: u64,
    pub(super) reported: (u64, u64),
    /// Overruns reported so far.
    pub(super) xruns: u64,
}

pub(super) const BACKOFF_FIRST: Duration = Duration::from_millis(500);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Keeps the capture devices open: a device that errors or disappears is reported lost to the
/// pipeline (which fills silence and marks the gap) and reopened with backoff (0.5 s doubling
/// to 8 s). Runs on the caller's thread via [`Supervisor::tick`].
pub struct Supervisor {
    pub(super) slots: Vec<Slot>,
    pub(super) rate: u32,
    pub(super) ring_ms: u32,
    pub(super) max_frames: Option<u64>,
    pub(super) source: Option<Sender<SourceMsg>>,
    pub(super) ui: crate::uitx::UiTx,
    pub(super) open: Box<Opener>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field(
                "devices",
                &self.slots.iter().map(|s| &s.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Frames delivered so far by the slowest device.
    pub fn frames(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| {
                s.frames_before
                    + s.capture
                        .as_ref()
                        .map_or(0, |c| c.counters.frames.load(Ordering::Relaxed))
            })
            .min()
            .unwrap_or(0)
    }

    /// Samples dropped because a ring was full, all devices.
    pub fn dropped(&self) -> u64 {
        self.slots.iter().map(|s| s.reported.0).sum()
    }

    /// Checks the devices once; call it every few tens of milliseconds.
    pub fn tick(&mut self) {
        let now = Instant::now();
        for slot in &mut self.slots {
            if let Some(c) = slot.capture.as_ref() {
                let (dropped, gap) = (
                    c.counters.dropped.load(Ordering::Relaxed),
                    c.counters.gap_frames.load(Ordering::Relaxed),
                );
                if dropped > slot.reported.0 {
                    for p in &slot.parties {
                        self.ui.send(UiEvent::Overflow {
                            party: *p,
                            samples: dropped - slot.reported.0,
                        });
                    }
                }
                if gap > slot.reported.1 {
                    for p in &slot.parties {
                        self.ui.send(UiEvent::Gap {
                            party: *p,
                            ms: (gap - slot.reported.1) as f64 * 1000.0 / self.rate as f64,
                        });
                    }
                }
                slot.reported = (dropped, gap);
                let xruns = c.counters.xruns.load(Ordering::Relaxed);
                if xruns > slot.xruns {
                    self.ui.send(UiEvent::Note(format!(
                        "{}: {} overrun(s) or reroute(s), recovered by the driver; any gap is filled with silence",
                        slot.id,
                        xruns - slot.xruns
                    )));
                    slot.xruns = xruns;
                }
                if c.counters.failed.load(Ordering::Relaxed) {
                    let reason = c.error().unwrap_or_else(|| "device error".into());
                    // Tell the pipeline first, then close: it must not take the closed ring
                    // for the end of the stream.
                    if let Some(src) = &self.source {
                        for p in &slot.parties {
                            let _ = src.send(SourceMsg::Lost {
                                party: *p,
                                reason: format!("{}: {reason}", slot.id),
                            });
                        }
                    }
                    slot.frames_before += c.counters.frames.load(Ordering::Relaxed);
                    slot.capture = None;
                    slot.reported = (0, 0);
                    slot.xruns = 0;
                    slot.backoff = BACKOFF_FIRST;
                    slot.retry_at = now + slot.backoff;
                }
            } else if now >= slot.retry_at {
                let rings: Vec<Ring> = slot
                    .parties
                    .iter()
                    .map(|_| party_ring(self.rate, self.ring_ms))
                    .collect();
                let (producers, consumers): (Vec<_>, Vec<_>) = rings.into_iter().unzip();
                let left = self
                    .max_frames
                    .map(|m| m.saturating_sub(slot.frames_before));
                match (self.open)(
                    &slot.id,
                    self.rate,
                    slot.parties.len() as u16,
                    producers,
                    left,
                ) {
                    Ok(c) => {
                        slot.capture = Some(c);
                        if let Some(src) = &self.source {
                            for (p, ring) in slot.parties.iter().zip(consumers) {
                                let _ = src.send(SourceMsg::Restored { party: *p, ring });
                            }
                        }
                    }
                    Err(e) => {
                        slot.backoff = (slot.backoff * 2).min(BACKOFF_MAX);
                        slot.retry_at = now + slot.backoff;
                        self.ui.send(UiEvent::Note(format!(
                            "{}: still unavailable ({e:#}); retrying in {:.1} s",
                            slot.id,
                            slot.backoff.as_secs_f64()
                        )));
                    }
                }
            }
        }
    }

    /// Stops capture; the pipeline then finishes the call and ends.
    pub fn stop(&mut self) {
        self.source = None;
        for s in &mut self.slots {
            s.capture = None;
        }
    }
}

/// Opens the devices (failing at once if one cannot be opened: a wrong id is a setup error)
/// and starts the pipeline. Returns the supervisor to [`Supervisor::tick`] and the UI events.
pub fn capture(
    devices: &Devices,
    rate: u32,
    max_seconds: Option<f64>,
    cfg: LiveConfig,
    control: Receiver<Control>,
    mut open: Box<Opener>,
) -> anyhow::Result<(Supervisor, Receiver<UiEvent>)> {
    let max_frames = max_seconds.map(|s| (s * rate as f64) as u64);
    let plan: Vec<(String, Vec<Party>)> = match devices {
        Devices::Stereo(id) => vec![(id.clone(), vec![Party::Agent, Party::Caller])],
        Devices::Pair {
            agent,
            caller: None,
        } => vec![(agent.clone(), vec![Party::Agent])],
        Devices::Pair {
            agent,
            caller: Some(c),
        } => vec![
            (agent.clone(), vec![Party::Agent]),
            (c.clone(), vec![Party::Caller]),
        ],
    };
    let mut consumers: [Option<rtrb::Consumer<f32>>; 2] = [None, None];
    let mut slots = Vec::new();
    for (id, parties) in plan {
        let mut producers = Vec::new();
        for p in &parties {
            let (tx, rx) = party_ring(rate, cfg.ring_ms);
            producers.push(tx);
            consumers[p.index()] = Some(rx);
        }
        let c = open(&id, rate, parties.len() as u16, producers, max_frames)?;
        slots.push(Slot {
            id,
            parties,
            capture: Some(c),
            retry_at: Instant::now(),
            backoff: BACKOFF_FIRST,
            frames_before: 0,
            reported: (0, 0),
            xruns: 0,
        });
    }
    let (ui_tx, ui_rx) = bounded::<UiEvent>(1024);
    let (src_tx, src_rx) = bounded::<SourceMsg>(16);
    spawn_pipeline(
        rate,
        consumers,
        cfg.clone(),
        Some(Instant::now()),
        ui_tx.clone(),
        control,
        src_rx,
    )?;
    Ok((
        Supervisor {
            slots,
            rate,
            ring_ms: cfg.ring_ms,
            max_frames,
            source: Some(src_tx),
            ui: crate::uitx::UiTx::new(ui_tx),
            open,
        },
        ui_rx,
    ))
}
