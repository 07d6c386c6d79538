#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! The coach, fed by the feature path, gives the same warnings for any chunking of the same
//! audio; the capture callback does not allocate (counted with a global allocator).
mod common;
use common::*;

use std::cell::Cell;

use callcoach_audio::call::{CallAnalyzer, CallConfig, Party};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Warnings from the coach, fed by the feature path with the audio pushed in chunks of `chunk`.
fn warnings(
    rate: u32,
    agent: &[f32],
    caller: &[f32],
    chunk: usize,
) -> Vec<callcoach_coach::Warning> {
    // The demo's agent talks in short turns (3–4 s voiced each): judge the rate on 3 s of
    // voiced speech, so the rate rule takes part in the comparison too.
    let mut book = callcoach_coach::RuleBook::default_book();
    book.rules.rate.min_speech_s = 3.0;
    let coach = callcoach_coach::Coach::new(book, None);
    let transcript =
        callcoach_coach::transcript::load_with_events(&fixture("demo-call.transcript.jsonl"), None)
            .expect("transcript");
    let mut feed = callcoach::coaching::CoachFeed::new(coach, transcript);
    let mut a = CallAnalyzer::new(CallConfig::default(), Some(rate), Some(rate)).expect("analyzer");
    for (ca, cc) in agent.chunks(chunk).zip(caller.chunks(chunk)) {
        a.push(Party::Agent, ca, &mut |o| feed.on(&o))
            .expect("push");
        a.push(Party::Caller, cc, &mut |o| feed.on(&o))
            .expect("push");
    }
    a.finish(&mut |o| feed.on(&o)).expect("finish");
    let end = a.frames_total() * 10;
    feed.finish(end).1
}

#[test]
fn any_chunking_gives_identical_warnings() {
    let (rate, ch) = channels(&fixture("demo-call.wav"));
    let reference = warnings(rate, &ch[0], &ch[1], 4096);
    assert!(
        reference.len() >= 8,
        "the demo call with its transcript raises and clears warnings: {reference:#?}"
    );
    for chunk in [1, 160, 1024] {
        assert_eq!(
            warnings(rate, &ch[0], &ch[1], chunk),
            reference,
            "chunk {chunk}"
        );
    }
}

#[test]
fn the_capture_callback_does_not_allocate_and_counts_drops() {
    use callcoach::capture::{deliver, CaptureCounters, Owed};
    let (a_tx, mut a_rx) = rtrb::RingBuffer::<f32>::new(16_000);
    let (c_tx, mut c_rx) = rtrb::RingBuffer::<f32>::new(8_000);
    let mut rings = vec![a_tx, c_tx];
    let counters = CaptureCounters::default();
    let mut owed = Owed::default();
    let period: Vec<i16> = (0..320).map(|i| (i * 37 % 2000) as i16 - 1000).collect(); // 10 ms stereo
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    for _ in 0..100 {
        deliver(&period, 2, &mut rings, &counters, u64::MAX, &mut owed);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(COUNT.with(Cell::get), 0, "the capture callback allocated");
    use std::sync::atomic::Ordering;
    assert_eq!(counters.frames.load(Ordering::Relaxed), 16_000);
    // The caller ring holds 0.5 s: the other 0.5 s is dropped and counted, the agent's is not.
    assert_eq!(counters.dropped.load(Ordering::Relaxed), 8_000);
    assert_eq!(a_rx.slots(), 16_000);
    assert_eq!(c_rx.slots(), 8_000);
    assert_eq!(a_rx.pop().unwrap(), f32::from(period[0]) / 32768.0);
    assert_eq!(c_rx.pop().unwrap(), f32::from(period[1]) / 32768.0);
}
