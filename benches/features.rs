#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Per-stage benchmarks of the feature path on the bundled demo call (38 s, stereo, 16 kHz).
//! Throughput is reported in audio samples per second; divide by the rate for × real time.
use std::path::Path;

use callcoach_audio::decode::Decoder;
use callcoach_audio::{FeatureConfig, PartyAnalyzer, PartyResampler, FRAME_LEN};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn demo() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/demo-call.wav"
    ))
}

fn agent_channel() -> Vec<f32> {
    let mut d = Decoder::open(demo()).expect("demo");
    let mut out = Vec::new();
    while let Some(b) = d.next_block().expect("decode") {
        out.extend(b.iter().step_by(2));
    }
    out
}

fn stages(c: &mut Criterion) {
    let agent = agent_channel();
    let mut g = c.benchmark_group("stages");
    g.sample_size(10);
    g.throughput(Throughput::Elements(agent.len() as u64 * 2));
    g.bench_function("decode demo call (stereo 16 kHz wav)", |b| {
        b.iter(|| {
            let mut d = Decoder::open(demo()).expect("demo");
            let mut n = 0;
            while let Some(block) = d.next_block().expect("decode") {
                n += block.len();
            }
            n
        })
    });
    let hi: Vec<f32> = agent.iter().flat_map(|&x| [x, x, x]).collect();
    g.throughput(Throughput::Elements(hi.len() as u64));
    g.bench_function("resample 48 kHz -> 16 kHz frames (one party)", |b| {
        b.iter(|| {
            let mut r = PartyResampler::new(48000).expect("resampler");
            let mut frames = 0u32;
            for chunk in hi.chunks(4096) {
                r.push(chunk, &mut |_| frames += 1).expect("push");
            }
            frames
        })
    });
    g.throughput(Throughput::Elements(agent.len() as u64));
    g.bench_function("party features (one party, 16 kHz)", |b| {
        b.iter(|| {
            let mut a = PartyAnalyzer::new(FeatureConfig::default()).expect("analyzer");
            let mut n = 0u32;
            let mut frame = [0.0f32; FRAME_LEN];
            for chunk in agent.chunks_exact(FRAME_LEN) {
                frame.copy_from_slice(chunk);
                a.push_frame(&frame, &mut |_| n += 1);
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
