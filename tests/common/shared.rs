//! Helpers shared by the workspace's tests (the root's end-to-end tests and each crate's own,
//! which include this file): the fixtures, external tools (sox, espeak-ng, ffmpeg, installed by
//! `.ci/install-deps`), decoding a file per channel, and a counting allocator.
#![allow(dead_code)]
#![allow(unsafe_code)] // the counting allocator below; nothing else is unsafe

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use callcoach_audio::analyze::{analyze_call, AgentChannel, CallInput, CallReport};
use callcoach_audio::call::CallConfig;

/// The workspace's `tests/fixtures` (found from whichever crate the test belongs to).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("tests/fixtures"))
        .find(|d| d.join("demo-call.wav").is_file())
        .expect("tests/fixtures of the workspace")
        .join(name)
}

pub fn audio(name: &str) -> PathBuf {
    fixture(&format!("audio/{name}"))
}

/// Runs an external tool and panics with its stderr if it fails (missing tools are a CI set-up
/// error: `.ci/run` installs them).
pub fn tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed by this test (apt-get install sox espeak-ng ffmpeg): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn tool_output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed by this test: {e}"))
}

pub fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Speaks pinyin with espeak-ng's Mandarin voice into a 16 kHz mono WAV.
pub fn speak(pinyin: &str, rate: u32, out: &Path) {
    let raw = out.with_extension("raw.wav");
    tool(
        "espeak-ng",
        &[
            "-v",
            "cmn-latn-pinyin",
            "-s",
            &rate.to_string(),
            "-w",
            p(&raw),
            pinyin,
        ],
    );
    tool("sox", &[p(&raw), "-r", "16000", "-b", "16", p(out)]);
    let _ = std::fs::remove_file(raw);
}

/// Speech from espeak with its leading and trailing silence cut, as f32 at 16 kHz, scaled by
/// `gain` (exact speech edges for timing tests).
pub fn trimmed_speech(dir: &Path, name: &str, pinyin: &str, speed: u32, gain: f32) -> Vec<f32> {
    let raw = dir.join(format!("{name}.wav"));
    speak(pinyin, speed, &raw);
    let trimmed = dir.join(format!("{name}-trim.wav"));
    let cut = [
        "silence", "1", "0.01", "0.1%", "reverse", "silence", "1", "0.01", "0.1%", "reverse",
    ];
    let mut args = vec![p(&raw), p(&trimmed)];
    args.extend(cut);
    tool("sox", &args);
    let mut r = hound::WavReader::open(&trimmed).expect("wav");
    r.samples::<i16>()
        .map(|s| s.expect("sample") as f32 / 32768.0 * gain)
        .collect()
}

pub fn analyze(path: &Path) -> CallReport {
    analyze_with(path, None)
}

pub fn analyze_with(path: &Path, caller: Option<&Path>) -> CallReport {
    analyze_call(
        &CallInput {
            call: path.to_path_buf(),
            caller: caller.map(Path::to_path_buf),
            agent_channel: AgentChannel::Left,
            allow_truncated: false,
        },
        &CallConfig::default(),
    )
    .unwrap_or_else(|e| panic!("analyze {}: {e}", path.display()))
}

/// `secs` seconds of digital silence, 16 kHz 16-bit, `channels` channels (sox).
pub fn silence(path: &Path, secs: &str, channels: &str) {
    tool(
        "sox",
        &[
            "-n",
            "-r",
            "16000",
            "-c",
            channels,
            "-b",
            "16",
            p(path),
            "trim",
            "0",
            secs,
        ],
    );
}

/// 40 syllables of call-centre Mandarin in espeak's pinyin.
pub const PINYIN_40: &str = "ni3 hao3 huan1 ying2 zhi4 dian4 ke4 hu4 fu2 wu4 zhong1 xin1 qing3 wen4 you3 shen2 me5 ke3 yi3 bang1 nin2 de5 wo3 men5 hui4 jin4 kuai4 wei4 nin2 chu3 li3 zhe4 ge4 wen4 ti2 xie4 xie4 nin2 de5 nai4 xin1";
pub const PINYIN_40_SYLLABLES: u64 = 41;

/// Decodes a file into one Vec per channel.
pub fn channels(path: &Path) -> (u32, Vec<Vec<f32>>) {
    let mut d = callcoach_audio::decode::Decoder::open(path).expect("open");
    let n = d.channels();
    let mut out = vec![Vec::new(); n];
    while let Some(block) = d.next_block().expect("decode") {
        for frame in block.chunks_exact(n) {
            for (c, x) in frame.iter().enumerate() {
                out[c].push(*x);
            }
        }
    }
    (d.rate(), out)
}

/// A global allocator that counts allocations while [`COUNTING`] is set on this thread (a test
/// installs it with `#[global_allocator] static ALLOC: Counting = Counting;`).
pub struct Counting;
thread_local! {
    pub static COUNTING: Cell<bool> = const { Cell::new(false) };
    pub static COUNT: Cell<u64> = const { Cell::new(0) };
}
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
