#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! The feature path gives identical output for any chunking of the same audio, and does not
//! allocate in steady state (counted with a global allocator).
mod common;
use common::*;

use std::cell::Cell;

use callcoach_audio::call::{CallAnalyzer, CallConfig, CallEvent, CallOutput, Party};
use callcoach_audio::FrameFeatures;

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Default, PartialEq, Debug)]
struct Collected {
    frames: Vec<(Party, FrameFeatures)>,
    events: Vec<String>,
    /// Everything in output order: the coach depends on the order, not only the content.
    stream: Vec<String>,
}

impl Collected {
    /// Records one output of the feature path.
    fn on(&mut self, o: CallOutput) {
        self.stream.push(format!("{o:?}"));
        match o {
            CallOutput::Frame(p, f) => self.frames.push((p, f)),
            CallOutput::Event(e) => self.events.push(format!("{e:?}")),
            CallOutput::Ahead(_) => {}
        }
    }
}

fn run(rate: u32, agent: &[f32], caller: &[f32], chunk: usize) -> Collected {
    let mut a = CallAnalyzer::new(CallConfig::default(), Some(rate), Some(rate)).expect("analyzer");
    let mut c = Collected::default();
    let mut sink = |o: CallOutput| c.on(o);
    for (ca, cc) in agent.chunks(chunk).zip(caller.chunks(chunk)) {
        a.push(Party::Agent, ca, &mut sink).expect("push");
        a.push(Party::Caller, cc, &mut sink).expect("push");
    }
    a.finish(&mut sink).expect("finish");
    c
}

/// The agent's audio running 10 s ahead of the caller's: the order the output comes in must not
/// depend on which party's audio arrived first either.
fn run_agent_first(rate: u32, agent: &[f32], caller: &[f32]) -> Collected {
    let mut a = CallAnalyzer::new(CallConfig::default(), Some(rate), Some(rate)).expect("analyzer");
    let mut c = Collected::default();
    let mut sink = |o: CallOutput| c.on(o);
    let lead = rate as usize * 10;
    a.push(Party::Agent, &agent[..lead.min(agent.len())], &mut sink)
        .expect("push");
    let step = rate as usize / 10;
    for (i, cc) in caller.chunks(step).enumerate() {
        let from = (lead + i * step).min(agent.len());
        let to = (from + step).min(agent.len());
        a.push(Party::Agent, &agent[from..to], &mut sink)
            .expect("push");
        a.push(Party::Caller, cc, &mut sink).expect("push");
    }
    a.finish(&mut sink).expect("finish");
    c
}

#[test]
fn any_chunking_gives_identical_features_and_events() {
    let dir = tmpdir();
    let demo = fixture("demo-call.wav");
    let tel = dir.path().join("tel.wav");
    tool("sox", &[p(&demo), "-r", "8000", "-e", "mu-law", p(&tel)]);
    let hi = dir.path().join("48k.wav");
    tool("sox", &[p(&demo), "-r", "48000", p(&hi)]);
    for path in [demo, tel, hi] {
        let (rate, ch) = channels(&path);
        let reference = run(rate, &ch[0], &ch[1], 4096);
        assert!(
            reference.frames.len() > 7000,
            "{} frames",
            reference.frames.len()
        );
        assert!(
            reference.events.iter().any(|e| e.contains("TalkOver")),
            "the demo call has a talk-over"
        );
        assert!(reference.frames.iter().any(|(_, f)| f.nucleus));
        assert!(
            reference.stream.iter().any(|o| o.starts_with("Ahead")),
            "the fast path's frames are in the stream"
        );
        assert!(
            run_agent_first(rate, &ch[0], &ch[1]) == reference,
            "{} at {rate} Hz: the agent's audio first differs",
            path.display()
        );
        for chunk in [1, 160, 1024] {
            let other = run(rate, &ch[0], &ch[1], chunk);
            assert_eq!(
                other.frames.len(),
                reference.frames.len(),
                "{} chunk {chunk}",
                path.display()
            );
            assert!(
                other == reference,
                "{} at {rate} Hz: chunk {chunk} differs from chunk 4096",
                path.display()
            );
        }
    }
}

#[test]
fn steady_state_feature_step_does_not_allocate() {
    for rate in [8000u32, 16000, 44100, 48000] {
        let mut a =
            CallAnalyzer::new(CallConfig::default(), Some(rate), Some(rate)).expect("analyzer");
        // Speech-like test signal: a 200 Hz buzz gated at 4 Hz, plus a tone, different per party.
        let signal: Vec<f32> = (0..rate as usize * 30)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let gate = if (t * 4.0).fract() < 0.6 { 1.0 } else { 0.05 };
                gate * 0.2
                    * ((2.0 * std::f32::consts::PI * 200.0 * t).sin().signum() * 0.5
                        + (2.0 * std::f32::consts::PI * 900.0 * t).sin())
            })
            .collect();
        let mut frames = 0u64;
        let mut events = 0u64;
        let mut sink = |o: CallOutput| match o {
            CallOutput::Frame(..) => frames += 1,
            CallOutput::Event(CallEvent::Jump(..)) | CallOutput::Event(_) => events += 1,
            CallOutput::Ahead(_) => {}
        };
        let warm = rate as usize * 3;
        for chunk in signal[..warm].chunks(1024) {
            a.push(Party::Agent, chunk, &mut sink).expect("push");
            a.push(Party::Caller, chunk, &mut sink).expect("push");
        }
        COUNT.with(|c| c.set(0));
        COUNTING.with(|c| c.set(true));
        for chunk in signal[warm..].chunks(1024) {
            a.push(Party::Agent, chunk, &mut sink).expect("push");
            a.push(Party::Caller, chunk, &mut sink).expect("push");
        }
        COUNTING.with(|c| c.set(false));
        let allocations = COUNT.with(Cell::get);
        assert!(
            frames > 2 * 2500,
            "the steady state was exercised ({frames} frames)"
        );
        assert_eq!(
            allocations, 0,
            "{rate} Hz: {allocations} allocations in 27 s of steady-state audio"
        );
    }
}

/// A party more than 20 s behind (a stalled live device) overflows the pairing queue: the
/// frames it lost count as silence and every frame is still paired with the other party's
/// frame of the same time, never with its place in the queue.
#[test]
fn after_an_overflow_frames_are_still_paired_by_their_time() {
    let rate = 16000u32;
    let n = rate as usize * 30;
    let tone = |f: f32| -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * f * std::f32::consts::TAU / rate as f32).sin() * 0.3)
            .collect()
    };
    let (agent, caller) = (tone(220.0), tone(330.0));
    let mut a = CallAnalyzer::new(CallConfig::default(), Some(rate), Some(rate)).expect("analyzer");
    let mut frames: Vec<(Party, u64)> = Vec::new();
    let mut sink = |o: CallOutput| {
        if let CallOutput::Frame(p, f) = o {
            frames.push((p, f.index));
        }
    };
    // All of the agent's 30 s before any of the caller's (then the caller's as a device
    // delivers it, 10 ms at a time).
    a.push(Party::Agent, &agent, &mut sink).expect("push");
    for c in caller.chunks(160) {
        a.push(Party::Caller, c, &mut sink).expect("push");
    }
    a.finish(&mut sink).expect("finish");
    assert!(a.overflow_frames > 0, "the agent's queue overflowed");
    assert_eq!(frames.len() % 2, 0);
    for pair in frames.chunks(2) {
        assert_eq!(pair[0].0, Party::Agent);
        assert_eq!(pair[1].0, Party::Caller);
        assert_eq!(pair[0].1, pair[1].1, "paired by time: {pair:?}");
    }
    let last = frames.last().expect("frames").1;
    assert_eq!(
        last + 1,
        frames.len() as u64 / 2,
        "one pair per frame of the call"
    );
}
