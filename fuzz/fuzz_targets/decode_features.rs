//! Arbitrary bytes through the decoder and the whole feature path: must never panic.
#![no_main]

use std::path::Path;

use callcoach_audio::call::{CallAnalyzer, CallConfig, Party};
use callcoach_audio::decode::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut decoder) = Decoder::from_bytes(Path::new("fuzz-input"), data.to_vec()) else {
        return;
    };
    let channels = decoder.channels();
    let rate = decoder.rate();
    let caller = (channels >= 2).then_some(rate);
    let Ok(mut analyzer) = CallAnalyzer::new(CallConfig::default(), Some(rate), caller) else {
        return;
    };
    let mut per_party = [Vec::new(), Vec::new()];
    let mut budget = 20 * rate as usize; // at most 20 s of audio per input keeps runs fast
    loop {
        let block = match decoder.next_block() {
            Ok(Some(b)) => b,
            Ok(None) | Err(_) => break,
        };
        let frames = block.len() / channels;
        for (ch, buf) in per_party.iter_mut().enumerate().take(channels.min(2)) {
            buf.clear();
            buf.extend(block.iter().skip(ch).step_by(channels).take(frames));
        }
        let _ = analyzer.push(Party::Agent, &per_party[0], &mut |_| {});
        if caller.is_some() {
            let _ = analyzer.push(Party::Caller, &per_party[1], &mut |_| {});
        }
        if frames >= budget {
            break;
        }
        budget -= frames;
    }
    let _ = analyzer.finish(&mut |_| {});
});
