//! Starting calls on their own: the audio kept before "now" (so a call detected late starts
//! where the talking did) and the sustained two-party speech that starts one.

use super::*;

/// Audio kept before "now" so that a call detected late starts where the talking did.
pub(super) struct History {
    pub(super) buf: Vec<f32>,
    /// Samples ever written.
    pub(super) written: u64,
}

impl History {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            buf: vec![0.0; cap.max(1)],
            written: 0,
        }
    }
    /// Allocation-free.
    pub(super) fn push(&mut self, samples: &[f32]) {
        let cap = self.buf.len();
        for &x in samples {
            self.buf[(self.written % cap as u64) as usize] = x;
            self.written += 1;
        }
    }
    pub(super) fn oldest(&self) -> u64 {
        self.written.saturating_sub(self.buf.len() as u64)
    }
    /// Samples `from..written` (allocates; at a call's start only).
    pub(super) fn since(&self, from: u64) -> Vec<f32> {
        let cap = self.buf.len() as u64;
        (from.max(self.oldest())..self.written)
            .map(|i| self.buf[(i % cap) as usize])
            .collect()
    }
}

pub(super) const HISTORY_S: u64 = 15;
/// Sliding window of the auto-start detector, frames.
pub(super) const AUTO_WINDOW: usize = 1000;
/// Speech each party needs inside the window, frames (1 s; 3 s when only the agent is heard).
pub(super) const AUTO_NEED: u32 = 100;
pub(super) const AUTO_NEED_ALONE: u32 = 300;

/// Sustained speech of both parties → a call. Runs on the idle analyser's frames.
pub(super) struct AutoStart {
    pub(super) voiced: [VecDeque<(u64, bool)>; 2],
    pub(super) count: [u32; 2],
}

impl AutoStart {
    pub(super) fn new() -> Self {
        Self {
            voiced: [
                VecDeque::with_capacity(AUTO_WINDOW + 1),
                VecDeque::with_capacity(AUTO_WINDOW + 1),
            ],
            count: [0; 2],
        }
    }
    pub(super) fn frame(&mut self, p: Party, index: u64, speech: bool) {
        let q = &mut self.voiced[p.index()];
        q.push_back((index, speech));
        self.count[p.index()] += u32::from(speech);
        if q.len() > AUTO_WINDOW {
            if let Some((_, v)) = q.pop_front() {
                self.count[p.index()] -= u32::from(v);
            }
        }
    }
    /// The frame where the talking began, once it has been sustained.
    pub(super) fn fired(&self, parties: usize) -> Option<u64> {
        let ok = if parties == 2 {
            self.count[0] >= AUTO_NEED && self.count[1] >= AUTO_NEED
        } else {
            self.count[0] >= AUTO_NEED_ALONE
        };
        ok.then(|| {
            self.voiced
                .iter()
                .take(parties)
                .filter_map(|q| q.iter().find(|v| v.1).map(|v| v.0))
                .min()
                .unwrap_or(0)
        })
    }
}
