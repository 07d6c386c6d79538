//! Any bytes as an agent's or the hub's message: a typed error or a message that validates and
//! survives a round trip, never a panic.
#![no_main]

use callcoach_proto::wire::{decode_agent, decode_hub, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode_agent(data) {
        let again = decode_agent(&encode(&m)).expect("a valid message re-encodes validly");
        assert_eq!(again, m);
    }
    if let Ok(m) = decode_hub(data) {
        let again = decode_hub(&encode(&m)).expect("a valid message re-encodes validly");
        assert_eq!(again, m);
    }
});
