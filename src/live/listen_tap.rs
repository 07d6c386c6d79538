//! Listen-in's tap: while a supervisor listens (the hub link sets `on`), the pipeline sends
//! both parties' audio, about every 100 ms, as one binary frame: `CCA1`, the sample rate (u32
//! LE), then 16-bit samples interleaved (agent, caller; silence for a missing caller).
//! Nothing is sent, copied or allocated while nobody listens; while someone does, one frame
//! buffer per 100 ms, handed off with `try_send` (a full link drops the frame: listening is
//! best-effort, the analysis is not).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;

use super::pipeline::Pipeline;

/// Where the audio goes while someone listens.
#[derive(Debug, Clone)]
pub struct ListenTap {
    pub on: Arc<AtomicBool>,
    pub tx: Sender<Vec<u8>>,
}

/// A frame's magic bytes.
pub const MAGIC: &[u8; 4] = b"CCA1";

/// One frame from the parties' samples (same length; `caller` None: silence).
pub fn frame(rate: u32, agent: &[f32], caller: Option<&[f32]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + agent.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&rate.to_le_bytes());
    let pcm = |x: f32| ((x.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes();
    for (i, &a) in agent.iter().enumerate() {
        out.extend_from_slice(&pcm(a));
        out.extend_from_slice(&pcm(caller.and_then(|c| c.get(i)).copied().unwrap_or(0.0)));
    }
    out
}

impl Pipeline {
    /// Sends what both parties have said since the last frame, when someone listens.
    pub(super) fn tap_listen(&mut self) {
        let Some(tap) = self.cfg.listen.as_ref() else {
            return;
        };
        if !tap.on.load(Ordering::Relaxed) {
            self.listen_pos = None;
            return;
        }
        let now = self.common_total();
        let rate = u64::from(self.rate);
        // At most 200 ms in one frame (well within the hub's message limit at 48 kHz).
        let from = (*self.listen_pos.get_or_insert(now)).max(now.saturating_sub(rate / 5));
        if now < from + rate / 10 {
            return;
        }
        let agent = self.history[0].since(from);
        let caller = (self.parties == 2).then(|| self.history[1].since(from));
        let n = (now - from) as usize;
        let agent = &agent[..agent.len().min(n)];
        let _ = tap.tx.try_send(frame(
            self.rate,
            agent,
            caller.as_deref().map(|c| &c[..c.len().min(n)]),
        ));
        self.listen_pos = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_rate_and_interleaved_parties() {
        let f = frame(16000, &[0.5, -1.0], Some(&[0.0, 1.0]));
        assert_eq!(&f[..4], MAGIC);
        assert_eq!(u32::from_le_bytes([f[4], f[5], f[6], f[7]]), 16000);
        let s: Vec<i16> = f[8..]
            .chunks(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(s, [16383, 0, -32767, 32767]);
        assert_eq!(frame(8000, &[0.1], None).len(), 12);
    }
}
