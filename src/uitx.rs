//! The pipeline's hand-off to the screen: never blocks the audio path, never drops a warning
//! silently. Events go through a bounded channel; when the screen falls behind, meters (which
//! the next ones replace) are dropped and counted, and every other event waits in a backlog
//! that is sent, in order, as soon as there is room (each send and each pipeline turn tries).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Sender, TrySendError};

use crate::live::UiEvent;

/// A cloneable sender to the screen (the pipeline and the call-finishing threads share it).
#[derive(Debug, Clone)]
pub struct UiTx {
    tx: Sender<UiEvent>,
    backlog: Arc<Mutex<VecDeque<UiEvent>>>,
    dropped_meters: Arc<AtomicU64>,
}

impl UiTx {
    pub fn new(tx: Sender<UiEvent>) -> Self {
        Self {
            tx,
            backlog: Arc::default(),
            dropped_meters: Arc::default(),
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
            q.push_back(ev);
        }
    }

    /// Sends what waits in the backlog, as far as there is room (each pipeline turn).
    pub fn flush(&self) {
        if let Ok(mut q) = self.backlog.lock() {
            Self::drain(&self.tx, &mut q);
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

    /// Sends one event after the backlog, waiting for room (the end of the run only).
    pub fn send_waiting(&self, ev: UiEvent) {
        self.finish();
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
}
