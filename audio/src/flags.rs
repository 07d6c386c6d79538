//! Fixed-delay morphological filters on per-frame boolean flags (speech / non-speech).
//!
//! Each filter sees frame `t` and answers for frame `t - delay()`, looking `delay()` frames
//! ahead. Rings are allocated once in `new`; `push` never allocates. Because every decision
//! depends only on a fixed window of input flags, the output is the same however the audio
//! was chunked.

/// Which operation a [`FlagFilter`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// Fill runs of `false` shorter than `n` frames that lie between two `true` frames.
    Close(usize),
    /// Remove runs of `true` shorter than `n` frames that lie between two `false` frames.
    Open(usize),
    /// Extend every `true` run by `n` frames on both sides.
    Dilate(usize),
    /// Cut `n` frames off the end of every `true` run (compensates a detector's release lag).
    TrimEnd(usize),
}

/// A streaming flag filter with a fixed look-ahead.
#[derive(Debug, Clone)]
pub struct FlagFilter {
    op: FlagOp,
    ring: Vec<bool>,
    /// Number of frames pushed so far.
    seen: u64,
}

impl FlagFilter {
    /// Allocates the ring (2n + 1 frames).
    pub fn new(op: FlagOp) -> Self {
        let n = match op {
            FlagOp::Close(n) | FlagOp::Open(n) | FlagOp::Dilate(n) | FlagOp::TrimEnd(n) => n,
        };
        Self {
            op,
            ring: vec![false; 2 * n + 1],
            seen: 0,
        }
    }

    /// Frames of look-ahead (output lags input by this much).
    pub fn delay(&self) -> usize {
        match self.op {
            FlagOp::Close(n) | FlagOp::Open(n) | FlagOp::Dilate(n) | FlagOp::TrimEnd(n) => n,
        }
    }

    /// Pushes the flag of the next frame; returns the filtered flag of the frame `delay()`
    /// frames earlier, or `None` while the look-ahead is still filling.
    pub fn push(&mut self, flag: bool) -> Option<bool> {
        let len = self.ring.len() as u64;
        self.ring[(self.seen % len) as usize] = flag;
        self.seen += 1;
        let d = self.delay() as u64;
        if self.seen <= d {
            return None;
        }
        let t = self.seen - 1; // index of the newest frame
        let u = t - d; // frame we answer for
        let at = |i: u64| self.ring[(i % len) as usize];
        let lo = u.saturating_sub(d);
        Some(match self.op {
            FlagOp::Dilate(_) => (lo..=t).any(at),
            FlagOp::TrimEnd(_) => (u..=t).all(at),
            FlagOp::Close(n) => at(u) || Self::fills(at, u, lo, t, n, true),
            FlagOp::Open(n) => at(u) && !Self::fills(at, u, lo, t, n, false),
        })
    }

    /// Is frame `u` (whose flag is `!target`) inside a run shorter than `n` bounded on both
    /// sides by `target` flags within the window `[lo, hi]`?
    fn fills(at: impl Fn(u64) -> bool, u: u64, lo: u64, hi: u64, n: usize, target: bool) -> bool {
        let before = (lo..u).rev().find(|&i| at(i) == target);
        let after = (u + 1..=hi).find(|&i| at(i) == target);
        match (before, after) {
            (Some(b), Some(a)) => (a - b - 1) < n as u64,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: FlagOp, input: &[u8]) -> Vec<u8> {
        let mut f = FlagFilter::new(op);
        let mut out = Vec::new();
        for &x in input.iter().chain(std::iter::repeat_n(&0u8, f.delay())) {
            if let Some(y) = f.push(x == 1) {
                out.push(u8::from(y));
            }
        }
        out
    }

    #[test]
    fn close_fills_short_gaps_only() {
        assert_eq!(
            run(FlagOp::Close(3), &[1, 0, 0, 1, 0, 0, 0, 1]),
            vec![1, 1, 1, 1, 0, 0, 0, 1]
        );
        // A gap at the start (no speech before it) is never filled.
        assert_eq!(run(FlagOp::Close(3), &[0, 1, 1]), vec![0, 1, 1]);
    }

    #[test]
    fn open_removes_short_blips_only() {
        assert_eq!(
            run(FlagOp::Open(3), &[0, 1, 1, 0, 1, 1, 1, 0]),
            vec![0, 0, 0, 0, 1, 1, 1, 0]
        );
    }

    #[test]
    fn trim_end_cuts_the_tail_of_runs() {
        assert_eq!(
            run(FlagOp::TrimEnd(2), &[0, 1, 1, 1, 1, 0, 0]),
            vec![0, 1, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn dilate_extends_both_sides() {
        assert_eq!(
            run(FlagOp::Dilate(1), &[0, 0, 1, 0, 0, 0]),
            vec![0, 1, 1, 1, 0, 0]
        );
    }
}
