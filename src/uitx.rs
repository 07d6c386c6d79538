//! The pipeline's hand-off to the screen: never blocks the audio path, never drops a warning
//! silently. Events go through a bounded channel; when the screen falls behind, meters (which
//! the next ones replace) are dropped and counted, and every other event waits in a backlog
//! that is sent, in order, as soon as there is room (each send and each pipeline turn tries).
//! The backlog is bounded too ([`BACKLOG_MAX`]): a screen that stops reading for good cannot
//! grow the process without end. Over the bound, the oldest event that is not a warning goes
//! first; only when warnings are all that is left does the oldest raised one go — counted, and
//! said on the screen as soon as it reads again (a warning's end and a call's end are kept).
//! The end of the run reports what was dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Sender, TrySendError};

use crate::live::UiEvent;

/// Events kept for a screen that has fallen behind (about an hour of a busy call's warnings).
pub const BACKLOG_MAX: usize = 4096;

/// A cloneable sender to the screen (the pipeline and the call-finishing threads share it).
#[derive(Debug, Clone)]
pub struct UiTx {
    tx: Sender<UiEvent>,
    backlog: Arc<Mutex<VecDeque<UiEvent>>>,
    dropped_meters: Arc<AtomicU64>,
    /// Other events dropped from a full backlog, and how many of them were warnings.
    dropped_events: Arc<AtomicU64>,
    dropped_warnings: Arc<AtomicU64>,
    /// Warnings dropped that the screen has been told about.
    told_warnings: Arc<AtomicU64>,
}

impl UiTx {
    pub fn new(tx: Sender<UiEvent>) -> Self {
        Self {
            tx,
            backlog: Arc::default(),
            dropped_meters: Arc::default(),
            dropped_events: Arc::default(),
            dropped_warnings: Arc::default(),
            told_warnings: Arc::default(),
        }
    }

    /// Keeps `ev` for later, within [`BACKLOG_MAX`]: over it, the oldest event that is not a
    /// warning goes first, then the oldest raised or updated warning. A warning's end (cleared,
    /// withdrawn) and a call's end are never dropped (a banner would stay up for good), so in
    /// the worst case the backlog holds those beyond the bound.
    fn keep(&self, q: &mut VecDeque<UiEvent>, ev: UiEvent) {
        use callcoach_coach::WarningState;
        if q.len() >= BACKLOG_MAX {
            let protected = |e: &UiEvent| match e {
                UiEvent::Warning { warning, .. } => {
                    matches!(
                        warning.state,
                        WarningState::Cleared | WarningState::Withdrawn
                    )
                }
                UiEvent::CallEnded { .. } | UiEvent::End { .. } => true,
                _ => false,
            };
            let at = q
                .iter()
                .position(|e| !protected(e) && !matches!(e, UiEvent::Warning { .. }))
                .or_else(|| q.iter().position(|e| !protected(e)));
            if let Some(gone) = at.and_then(|i| q.remove(i)) {
                self.dropped_events.fetch_add(1, Ordering::Relaxed);
                if matches!(gone, UiEvent::Warning { .. }) {
                    self.dropped_warnings.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        q.push_back(ev);
    }

    /// Tells the screen about warnings it missed, once there is room again.
    fn tell(&self, q: &mut VecDeque<UiEvent>) {
        let dropped = self.dropped_warnings.load(Ordering::Relaxed);
        let told = self.told_warnings.load(Ordering::Relaxed);
        if dropped > told && q.is_empty() {
            let note = UiEvent::Note(format!(
                "{} warning(s) could not be shown: the screen stopped reading (they are in the report)",
                dropped - told
            ));
            if self.tx.try_send(note).is_ok() {
                self.told_warnings.store(dropped, Ordering::Relaxed);
            }
        }
    }

    /// Sends `ev` (after anything still waiting). Meters are dropped when the screen is
    /// behind; other events wait. Never blocks on the screen.
    pub fn send(&self, ev: UiEvent) {
        let Ok(mut q) = self.backlog.lock() else {
            // A poisoned lock: a finishing thread panicked while sending; go around it.
            let _ = self.tx.try_send(ev);
            return;
        };
        if !Self::drain(&self.tx, &mut q) {
            return;
        }
        self.tell(&mut q);
        let ev = if q.is_empty() {
            match self.tx.try_send(ev) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(ev)) => ev,
            }
        } else {
            ev
        };
        if matches!(ev, UiEvent::Meters(_)) {
            self.dropped_meters.fetch_add(1, Ordering::Relaxed);
        } else {
            self.keep(&mut q, ev);
        }
    }

    /// Sends what waits in the backlog, as far as there is room (each pipeline turn).
    pub fn flush(&self) {
        if let Ok(mut q) = self.backlog.lock() {
            if Self::drain(&self.tx, &mut q) {
                self.tell(&mut q);
            }
        }
    }

    /// At the end of the run: sends everything still waiting, waiting for the screen to take
    /// it (the screen is gone: nothing to do).
    pub fn finish(&self) {
        if let Ok(mut q) = self.backlog.lock() {
            while let Some(ev) = q.pop_front() {
                if self.tx.send(ev).is_err() {
                    q.clear();
                }
            }
        }
    }

    /// Sends one event after the backlog, waiting for room (the end of the run only); the
    /// end of the run first says what the screen missed.
    pub fn send_waiting(&self, ev: UiEvent) {
        self.finish();
        if matches!(ev, UiEvent::End { .. }) {
            let meters = self.dropped_meters.load(Ordering::Relaxed);
            let events = self.dropped_events.load(Ordering::Relaxed);
            let warnings = self.dropped_warnings.load(Ordering::Relaxed);
            if meters > 0 || events > 0 {
                let _ = self.tx.send(UiEvent::Note(format!(
                    "screen fell behind: {meters} meter update(s) skipped, {events} other event(s) dropped ({warnings} warning(s), all in the report)"
                )));
            }
        }
        let _ = self.tx.send(ev);
    }

    /// Events waiting for the screen, and meters dropped so far.
    pub fn pending(&self) -> (usize, u64) {
        (
            self.backlog.lock().map_or(0, |q| q.len()),
            self.dropped_meters.load(Ordering::Relaxed),
        )
    }

    /// False when the screen is gone (nothing more to send).
    fn drain(tx: &Sender<UiEvent>, q: &mut VecDeque<UiEvent>) -> bool {
        while let Some(front) = q.pop_front() {
            match tx.try_send(front) {
                Ok(()) => {}
                Err(TrySendError::Full(back)) => {
                    q.push_front(back);
                    return true;
                }
                Err(TrySendError::Disconnected(_)) => {
                    q.clear();
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::Meters;
    use crossbeam_channel::bounded;

    #[test]
    fn a_slow_screen_loses_meters_but_no_event_and_keeps_their_order() {
        let (tx, rx) = bounded(2);
        let ui = UiTx::new(tx);
        for i in 0..5 {
            ui.send(UiEvent::Note(format!("note {i}")));
            ui.send(UiEvent::Meters(Meters::default()));
        }
        let (waiting, dropped) = ui.pending();
        assert_eq!(
            (waiting, dropped),
            (4, 4),
            "note 0 and the first meters in the channel, the other notes waiting, meters dropped"
        );
        let mut notes = Vec::new();
        loop {
            while let Ok(ev) = rx.try_recv() {
                match ev {
                    UiEvent::Note(n) => notes.push(n),
                    UiEvent::Meters(_) => {}
                    other => panic!("{other:?}"),
                }
            }
            if ui.pending().0 == 0 {
                break;
            }
            ui.flush();
        }
        let want: Vec<String> = (0..5).map(|i| format!("note {i}")).collect();
        assert_eq!(notes, want);
    }

    fn warning(i: usize) -> UiEvent {
        let w = callcoach_coach::Warning {
            id: format!("dead_air#{i}"),
            rule: callcoach_coach::RuleId::DeadAir,
            severity: callcoach_coach::Severity::Warning,
            party: callcoach_coach::Party::Agent,
            state: callcoach_coach::WarningState::Raised,
            t_ms: i as u64,
            start_ms: 0,
            message_zh: String::new(),
            message_en: String::new(),
            evidence: Default::default(),
            line: String::new(),
            hidden: None,
        };
        UiEvent::Warning {
            warning: Box::new(w),
            latency_ms: None,
        }
    }

    #[test]
    fn a_screen_that_stops_reading_cannot_grow_the_backlog_and_is_told_what_it_missed() {
        let (tx, rx) = bounded(1);
        let ui = UiTx::new(tx);
        // Notes first, then more warnings than the backlog holds.
        for i in 0..10 {
            ui.send(UiEvent::Note(format!("note {i}")));
        }
        for i in 0..BACKLOG_MAX + 5 {
            ui.send(warning(i));
        }
        assert_eq!(ui.pending().0, BACKLOG_MAX, "bounded");
        // The notes went before any warning; then the oldest warnings.
        let mut warnings = 0;
        let mut notes = Vec::new();
        let mut read = |ev| match ev {
            UiEvent::Warning { .. } => warnings += 1,
            UiEvent::Note(n) => notes.push(n),
            _ => {}
        };
        loop {
            while let Ok(ev) = rx.try_recv() {
                read(ev);
            }
            if ui.pending().0 == 0 {
                break;
            }
            ui.flush();
        }
        ui.flush();
        while let Ok(ev) = rx.try_recv() {
            read(ev);
        }
        // 10 notes + BACKLOG_MAX + 5 warnings sent, one in the channel: 14 had to go, the 9
        // notes still waiting first, then 5 warnings — and the screen is told.
        assert_eq!(warnings, BACKLOG_MAX + 5 - 5);
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("5 warning(s) could not be shown")),
            "{notes:?}"
        );
    }
}
