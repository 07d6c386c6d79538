//! The pipeline thread: rings → features → coach → UI events, and the call lifecycle.

use super::*;

pub(super) struct Lost {
    /// Stream sample (of this party) where the device went away.
    pub(super) since: u64,
    pub(super) wall: Instant,
}

/// The pipeline thread's state.
pub(super) struct Pipeline {
    pub(super) cfg: LiveConfig,
    pub(super) rate: u32,
    pub(super) parties: usize,
    /// Wall-clock instant of stream sample 0 (real-time sources), for latencies.
    pub(super) clock: Option<Instant>,
    pub(super) ui: UiTx,
    pub(super) history: [History; 2],
    pub(super) lost: [Option<Lost>; 2],
    /// Idle: the analyser behind meters and auto-start, with its first stream sample.
    pub(super) idle: Option<(CallAnalyzer, u64, AutoStart)>,
    pub(super) call: Option<CallSession>,
    pub(super) meters: MeterState,
    pub(super) finishers: Vec<JoinHandle<()>>,
    pub(super) calls: u32,
    pub(super) zeros: Vec<f32>,
    pub(super) model_slot: ModelSlot,
    /// Listen-in: the stream sample the tap has sent up to (None: nobody listening).
    pub(super) listen_pos: Option<u64>,
}

impl Pipeline {
    pub(super) fn total(&self, p: Party) -> u64 {
        self.history[p.index()].written
    }

    pub(super) fn parties(&self) -> impl Iterator<Item = Party> {
        Party::ALL.into_iter().take(self.parties)
    }

    /// The stream sample every party has reached.
    pub(super) fn common_total(&self) -> u64 {
        self.parties().map(|p| self.total(p)).min().unwrap_or(0)
    }

    pub(super) fn origin_of(&self, start_sample: u64) -> Option<Instant> {
        self.clock
            .map(|c| c + Duration::from_secs_f64(start_sample as f64 / self.rate as f64))
    }

    /// One party's new samples (at most 50 ms) through history, features, coach, ASR and
    /// recorder. Never blocks (every hand-off is a `try_send` or a lock-free ring); allocates
    /// only the recorder's copy of the chunk, finished ASR jobs and the report's growing lists;
    /// adds no delay of its own beyond the analyser's 0.68 s VAD look-ahead on speech decisions.
    pub(super) fn feed(&mut self, p: Party, samples: &[f32]) -> anyhow::Result<()> {
        self.history[p.index()].push(samples);
        if let Some(call) = self.call.as_mut() {
            call.push(p, samples, &mut self.meters)?;
            return Ok(());
        }
        let mut fired = None;
        if let Some((analyzer, _, auto)) = self.idle.as_mut() {
            let meters = &mut self.meters;
            analyzer.push(p, samples, &mut |o| {
                meters.on(&o);
                if let CallOutput::Frame(p, f) = o {
                    auto.frame(p, f.index, f.speech);
                }
            })?;
            if self.cfg.auto_start {
                fired = auto.fired(self.parties);
            }
        }
        if let (Some(frame), Some((_, origin, _))) = (fired, self.idle.as_ref()) {
            // Half a second before the first speech, as far as the history reaches.
            let rate = u64::from(self.rate);
            let start = origin + frame.saturating_sub(50) * rate / 100;
            self.start_call(start, "auto")?;
        }
        Ok(())
    }

    pub(super) fn new_idle(&mut self) -> anyhow::Result<()> {
        let start = self.common_total();
        let mut analyzer = CallAnalyzer::new(
            CallConfig::default(),
            Some(self.rate),
            (self.parties == 2).then_some(self.rate),
        )?;
        self.meters = MeterState::new(&self.cfg.book);
        // The party that is ahead catches up from its history, so both start together.
        for p in Party::ALL.into_iter().take(self.parties) {
            let back = self.history[p.index()].since(start);
            let meters = &mut self.meters;
            analyzer.push(p, &back, &mut |o| meters.on(&o))?;
        }
        self.idle = Some((analyzer, start, AutoStart::new()));
        Ok(())
    }

    pub(super) fn start_call(&mut self, from: u64, how: &'static str) -> anyhow::Result<()> {
        if self.call.is_some() {
            return Ok(());
        }
        let oldest = self
            .parties()
            .map(|p| self.history[p.index()].oldest())
            .max()
            .unwrap_or(0);
        let start = from.max(oldest).min(self.common_total());
        self.calls += 1;
        let id = call_id(self.calls);
        let stream = CallStream::new(
            CallConfig::default(),
            Some(self.rate),
            (self.parties == 2).then_some(self.rate),
            if self.parties == 2 { "stereo" } else { "mono" },
            AgentChannel::Left,
        )?;
        // A recording that cannot be started (disk full, --out gone) costs the recording, not
        // the call: coaching goes on and the report says why.
        let (recorder, recording_error) = if self.cfg.record {
            match Recorder::start(
                self.cfg.out_dir.join(format!("call-{id}.wav")),
                self.rate,
                self.parties,
            ) {
                Ok(r) => (Some(r), None),
                Err(e) => {
                    self.ui.send(UiEvent::Note(format!(
                        "call {id}: cannot record ({e:#}); coaching goes on"
                    )));
                    (None, Some(format!("{e:#}")))
                }
            }
        } else {
            (None, None)
        };
        let coach = Coach::new(self.cfg.book.clone(), self.cfg.agent_id.as_deref());
        let mut call = CallSession {
            id: id.clone(),
            how,
            start_sample: start,
            pushed: [0; 2],
            stream,
            feed: CoachFeed::new(coach, Transcript::default()),
            asr: self
                .cfg
                .model
                .as_deref()
                .map(|m| AsrLane::start(m, &self.model_slot, &self.cfg.book)),
            recorder,
            recording_error,
            controls: Vec::new(),
            transcripts: Vec::new(),
            transcript_latency_ms: Vec::new(),
            gaps: Vec::new(),
            source_warnings: Vec::new(),
            hold_since: None,
        };
        self.idle = None;
        self.meters = MeterState::new(&self.cfg.book);
        for p in Party::ALL.into_iter().take(self.parties) {
            let back = self.history[p.index()].since(start);
            call.push(p, &back, &mut self.meters)?;
        }
        self.ui.send(UiEvent::CallStarted { id, how });
        self.call = Some(call);
        self.send_warnings();
        Ok(())
    }

    pub(super) fn end_call(&mut self, hung_up: bool) -> anyhow::Result<()> {
        let Some(mut call) = self.call.take() else {
            return Ok(());
        };
        // Both parties end at the same sample (the recording is padded the same way).
        let longest = call
            .pushed
            .iter()
            .take(self.parties)
            .copied()
            .max()
            .unwrap_or(0);
        for p in Party::ALL.into_iter().take(self.parties) {
            let short = (longest - call.pushed[p.index()]) as usize;
            if short > 0 {
                let pad = vec![0.0; short];
                call.push(p, &pad, &mut self.meters)?;
            }
        }
        let CallSession {
            id,
            start_sample,
            stream,
            mut feed,
            mut asr,
            recorder,
            recording_error,
            controls,
            transcripts,
            transcript_latency_ms,
            gaps,
            source_warnings,
            ..
        } = call;
        let mut capture_warnings: Vec<InputWarning> = gaps
            .iter()
            .map(|&(party, s, e)| InputWarning {
                code: "device-lost".into(),
                party: Some(party),
                message: format!(
                    "the {} device was lost from {:.1} s to {:.1} s ({:.1} s): that audio is silence in the analysis and the recording",
                    party.name(),
                    s as f64 / 1000.0,
                    e as f64 / 1000.0,
                    (e - s) as f64 / 1000.0
                ),
            })
            .collect();
        capture_warnings.extend(source_warnings);
        let mut report = stream.finish_heard(
            Vec::new(),
            Vec::new(),
            &mut |o| feed.on(o),
            &mut |p, f, frame| {
                if let Some(a) = asr.as_mut() {
                    a.frame(p, f, frame);
                }
            },
        )?;
        // The call's length as the report (and `analyze` of the recording) gives it.
        let end_ms = (report.summary.duration_s * 1000.0).round() as u64;
        let mut controls = controls;
        if hung_up {
            let e = Event::CallEnd {
                t_ms: end_ms,
                hung_up_by: None,
            };
            controls.push(e.clone());
            feed.control(e);
        }
        if let Some(e) = recording_error {
            capture_warnings.push(InputWarning {
                code: "recording-failed".into(),
                party: None,
                message: format!("the call could not be recorded: {e}"),
            });
        }
        capture_warnings.append(&mut report.warnings);
        report.warnings = capture_warnings;
        if let Some(a) = asr.as_mut() {
            let AsrLane {
                worker, segmenters, ..
            } = a;
            for s in segmenters.iter_mut() {
                s.finish(end_ms, &mut |job| worker.submit(job));
            }
        }
        Self::send_from(&self.ui, &mut feed, self.origin_of(start_sample));
        let ended = EndedCall {
            id: id.clone(),
            report,
            feed,
            asr,
            recorder,
            controls,
            transcripts,
            transcript_latency_ms,
            end_ms,
            rate: self.rate,
            parties: self.parties,
            origin: self.origin_of(start_sample),
        };
        let cfg = self.cfg.clone();
        let ui = self.ui.clone();
        let handle = std::thread::Builder::new()
            .name("callcoach-call-end".into())
            .spawn(move || match finish_call(ended, &cfg, &ui) {
                Ok((report, recording)) => {
                    ui.send(UiEvent::CallEnded {
                        id,
                        call_ms: end_ms,
                        report,
                        recording,
                    });
                }
                Err(e) => {
                    ui.send(UiEvent::Note(format!("call {id}: {e:#}")));
                }
            })?;
        self.finishers.push(handle);
        self.new_idle()
    }

    /// The wall-clock instant of the call in progress's time 0.
    pub(super) fn call_origin(&self) -> Option<Instant> {
        self.call
            .as_ref()
            .and_then(|c| self.origin_of(c.start_sample))
    }

    pub(super) fn send_warnings(&mut self) {
        let origin = self.call_origin();
        if let Some(call) = self.call.as_mut() {
            Self::send_from(&self.ui, &mut call.feed, origin);
        }
    }

    pub(super) fn send_from(ui: &UiTx, feed: &mut CoachFeed, origin: Option<Instant>) {
        for w in feed.take_new() {
            let latency_ms = origin.map(|t0| latency_after(t0, w.t_ms));
            ui.send(UiEvent::Warning {
                warning: Box::new(w.clone()),
                latency_ms,
            });
        }
    }

    pub(super) fn control(&mut self, c: Control) -> anyhow::Result<()> {
        match c {
            Control::CallStart => {
                if self.call.is_some() {
                    // Idempotent: a call is in progress.
                    return Ok(());
                }
                let now = self.common_total();
                self.start_call(now, "api")?;
            }
            Control::CallEnd => {
                let t = self.call.as_ref().map(CallSession::call_ms).unwrap_or(0);
                self.ui.send(UiEvent::Control {
                    control: c,
                    call_ms: t,
                });
                self.end_call(true)?;
                return Ok(());
            }
            Control::HoldStart | Control::HoldEnd => {}
            Control::HelpRequest => {
                self.ui.send(UiEvent::HelpRequested {
                    call: self.call.as_ref().map(|c| c.id.clone()),
                });
                return Ok(());
            }
        }
        if let Some(call) = self.call.as_mut() {
            // Call time now: what has entered the analyser.
            let t_ms = call.call_ms();
            // Idempotent: a repeated hold start (or end) changes nothing and logs nothing.
            let e = match (c, call.hold_since) {
                (Control::HoldStart, None) => {
                    call.hold_since = Some(t_ms);
                    Some(Event::HoldStart { t_ms })
                }
                (Control::HoldEnd, Some(_)) => {
                    call.hold_since = None;
                    Some(Event::HoldEnd { t_ms })
                }
                _ => None,
            };
            let changed = e.is_some();
            if let Some(e) = e {
                call.controls.push(e.clone());
                call.feed.control(e);
            }
            if changed || c == Control::CallStart {
                self.ui.send(UiEvent::Control {
                    control: c,
                    call_ms: t_ms,
                });
            }
        }
        Ok(())
    }

    /// Final transcripts that came back: into the coach (at once: their time is past).
    pub(super) fn poll_asr(&mut self) {
        let origin = self.call_origin();
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(lane) = call.asr.as_mut() else {
            return;
        };
        while let Ok(o) = lane.worker.results().try_recv() {
            if !o.is_final {
                continue;
            }
            // Every final result counts for the latency, empty ones too (the plumbing).
            let latency = origin.map(|t0| latency_after(t0, o.end_ms));
            if let Some(l) = latency {
                call.transcript_latency_ms.push(l);
            }
            if o.text.is_empty() {
                continue;
            }
            let seg = to_segment(o);
            self.meters.transcript(&seg);
            self.ui.send(UiEvent::Transcript {
                segment: seg.clone(),
                latency_ms: latency,
            });
            call.feed.control(Event::Transcript(seg.clone()));
            call.transcripts.push(seg);
        }
    }

    /// Silence for a lost party, keeping the parties aligned (and the call's clock running
    /// when every device is gone).
    pub(super) fn fill_lost(&mut self) -> anyhow::Result<()> {
        for p in Party::ALL.into_iter().take(self.parties) {
            let Some(lost) = self.lost[p.index()].as_ref() else {
                continue;
            };
            let other_alive = self
                .parties()
                .filter(|q| *q != p && self.lost[q.index()].is_none())
                .map(|q| self.total(q))
                .max();
            let target = other_alive.unwrap_or_else(|| {
                lost.since + (lost.wall.elapsed().as_secs_f64() * self.rate as f64) as u64
            });
            let mut need = target.saturating_sub(self.total(p));
            while need > 0 {
                let n = need.min(self.zeros.len() as u64) as usize;
                let zeros = std::mem::take(&mut self.zeros);
                let r = self.feed(p, &zeros[..n]);
                self.zeros = zeros;
                r?;
                need -= n as u64;
            }
        }
        Ok(())
    }
}

/// The feature/coach thread: rings → features → coach → UI events. `clock` (the wall-clock
/// moment of stream sample 0) turns warnings into latencies.
pub fn spawn_pipeline(
    rate: u32,
    rings: [Option<rtrb::Consumer<f32>>; 2],
    cfg: LiveConfig,
    clock: Option<Instant>,
    ui_tx: Sender<UiEvent>,
    control: Receiver<Control>,
    source: Receiver<SourceMsg>,
) -> anyhow::Result<JoinHandle<()>> {
    std::fs::create_dir_all(&cfg.out_dir).with_context(|| {
        format!(
            "{}: cannot create the directory for call reports (--out)",
            cfg.out_dir.display()
        )
    })?;
    let parties = if rings[1].is_some() { 2 } else { 1 };
    let cap = rings
        .iter()
        .flatten()
        .map(|r| r.slots() + 1)
        .max()
        .unwrap_or(1024)
        .max((rate as usize * cfg.ring_ms as usize / 1000).max(1024));
    let handle = std::thread::Builder::new()
        .name("callcoach-pipeline".into())
        .spawn(move || {
            let ui = UiTx::new(ui_tx);
            let mut rings = rings;
            let mut run = || -> anyhow::Result<u64> {
                let history_cap = (u64::from(rate) * HISTORY_S) as usize;
                let mut pl = Pipeline {
                    cfg: cfg.clone(),
                    rate,
                    parties,
                    clock,
                    ui: ui.clone(),
                    history: [History::new(history_cap), History::new(history_cap)],
                    lost: [None, None],
                    idle: None,
                    call: None,
                    meters: MeterState::new(&cfg.book),
                    finishers: Vec::new(),
                    calls: 0,
                    zeros: vec![0.0; (rate / 100) as usize * 10],
                    model_slot: ModelSlot::default(),
                    listen_pos: None,
                };
                if cfg.call_at_start {
                    pl.start_call(0, "stream")?;
                } else {
                    pl.new_idle()?;
                }
                let mut buf = vec![0.0f32; cap.max(1)];
                // At most 50 ms per party per turn, so the parties advance together even when
                // a ring holds seconds (a source faster than real time, a stall catching up).
                let turn = (rate as usize / 20).max(1);
                let mut source_open = true;
                loop {
                    let mut moved = false;
                    for p in Party::ALL.into_iter().take(parties) {
                        // Lockstep: a party more than two turns ahead of the other waits while
                        // more of the other can still come, unless its own ring is filling (a
                        // stalled device must not make the other drop). A lost party is padded
                        // in step; an ended one is waited for no longer.
                        let other_coming = rings[p.other().index()]
                            .as_ref()
                            .is_some_and(|r| !r.is_abandoned() || !r.is_empty());
                        let ahead = parties == 2
                            && other_coming
                            && pl.total(p) > pl.total(p.other()) + 2 * turn as u64;
                        let Some(rx) = rings[p.index()].as_mut() else {
                            continue;
                        };
                        if ahead && rx.slots() < rx.buffer().capacity() / 2 {
                            continue;
                        }
                        let n = rx.slots().min(buf.len()).min(turn);
                        if n > 0 {
                            let chunk = rx.read_chunk(n).context("ring")?;
                            let (a, b) = chunk.as_slices();
                            buf[..a.len()].copy_from_slice(a);
                            buf[a.len()..a.len() + b.len()].copy_from_slice(b);
                            chunk.commit_all();
                            pl.feed(p, &buf[..n])?;
                            moved = true;
                        }
                    }
                    loop {
                        match source.try_recv() {
                            Ok(SourceMsg::Lost { party, reason }) => {
                                if let Some(rx) = rings[party.index()].as_mut() {
                                    // What the device delivered before it went.
                                    let n = rx.slots().min(buf.len());
                                    if let Ok(chunk) = rx.read_chunk(n) {
                                        let (a, b) = chunk.as_slices();
                                        buf[..a.len()].copy_from_slice(a);
                                        buf[a.len()..a.len() + b.len()].copy_from_slice(b);
                                        chunk.commit_all();
                                        pl.feed(party, &buf[..n])?;
                                    }
                                }
                                rings[party.index()] = None;
                                pl.lost[party.index()] = Some(Lost {
                                    since: pl.total(party),
                                    wall: Instant::now(),
                                });
                                pl.meters.m.lost[party.index()] = true;
                                pl.ui.send(UiEvent::PartyLost { party, reason });
                            }
                            Ok(SourceMsg::Restored { party, ring }) => {
                                pl.fill_lost()?;
                                if let Some(lost) = pl.lost[party.index()].take() {
                                    let gap = pl.total(party) - lost.since;
                                    let gap_ms = gap * 1000 / u64::from(rate);
                                    if let Some(call) = pl.call.as_mut() {
                                        let end =
                                            call.pushed[party.index()] * 1000 / u64::from(rate);
                                        call.gaps.push((party, end.saturating_sub(gap_ms), end));
                                    }
                                    pl.ui.send(UiEvent::PartyRestored { party, gap_ms });
                                }
                                pl.meters.m.lost[party.index()] = false;
                                rings[party.index()] = Some(ring);
                            }
                            Ok(SourceMsg::Warning(w)) => {
                                pl.ui.send(UiEvent::Note(w.message.clone()));
                                if let Some(call) = pl.call.as_mut() {
                                    call.source_warnings.push(w);
                                }
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => {
                                source_open = false;
                                break;
                            }
                        }
                    }
                    pl.fill_lost()?;
                    while let Ok(c) = control.try_recv() {
                        pl.control(c)?;
                    }
                    pl.poll_asr();
                    pl.send_warnings();
                    pl.tap_listen();
                    let call_ms = pl.call.as_ref().map(CallSession::call_ms);
                    let hold_ms = pl
                        .call
                        .as_ref()
                        .and_then(|c| c.hold_since.map(|h| c.call_ms().saturating_sub(h)));
                    // Events the screen had no room for go first, in order.
                    pl.ui.flush();
                    if let Some(mut m) = pl.meters.due(call_ms, hold_ms) {
                        if let Some(c) = pl.call.as_ref() {
                            m.checklist = c.feed.coach.checklist().map(|(_, done)| done);
                        }
                        pl.ui.send(UiEvent::Meters(m));
                        // An auto-started call ends when nobody has spoken for a while.
                        if pl.call.as_ref().is_some_and(|c| c.how == "auto")
                            && m.silence_ms as f64 >= cfg.auto_end_s * 1000.0
                        {
                            pl.end_call(false)?;
                        }
                    }
                    let drained = Party::ALL.into_iter().take(parties).all(|p| {
                        rings[p.index()]
                            .as_ref()
                            .is_none_or(|r| r.is_abandoned() && r.is_empty())
                    });
                    if !source_open && drained {
                        break;
                    }
                    if !moved {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                let ended = pl.end_call(false);
                // Every call's files are written before the run ends, error or not.
                for h in pl.finishers.drain(..) {
                    let _ = h.join();
                }
                ended?;
                Ok(pl.common_total() * 1000 / u64::from(rate))
            };
            // The last events (the run's end) may wait for the screen: nothing is dropped.
            let result = run();
            ui.finish();
            match result {
                Ok(stream_ms) => ui.send_waiting(UiEvent::End { stream_ms }),
                Err(e) => {
                    ui.send_waiting(UiEvent::Note(format!("error: {e:#}")));
                    ui.send_waiting(UiEvent::End { stream_ms: 0 });
                }
            }
        })?;
    Ok(handle)
}
