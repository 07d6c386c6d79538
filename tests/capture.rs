#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Real cpal capture without a sound card: ALSA's `file` plugin reads a raw file as a capture
//! device (`alsa:filesrc`, defined in a config named by ALSA_CONFIG_PATH), and `callcoach live`
//! coaches it through the same pipeline as `analyze`.
mod common;
use common::*;

#[test]
fn live_capture_through_alsa_reaches_the_coach() {
    let dir = tmpdir();
    let raw = dir.path().join("call.raw");
    // Zero padding: the unpaced plugin repeats stale data after the end of the file.
    tool(
        "sox",
        &[
            p(&fixture("demo-call.wav")),
            "-t",
            "raw",
            "-e",
            "signed",
            "-b",
            "16",
            "-r",
            "16000",
            "-c",
            "2",
            p(&raw),
            "pad",
            "0",
            "12",
        ],
    );
    let conf = dir.path().join("asound.conf");
    std::fs::write(&conf, format!("pcm.filesrc {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n infile \"{}\"\n format \"raw\"\n}}\n", raw.display())).unwrap();
    let alsa = format!("/usr/share/alsa/alsa.conf:{}", conf.display());
    let list = std::process::Command::new(env!("CARGO_BIN_EXE_callcoach"))
        .arg("devices")
        .env("ALSA_CONFIG_PATH", &alsa)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("alsa:filesrc"),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callcoach"))
        .args([
            "live",
            "--stereo-device",
            "alsa:filesrc",
            "--seconds",
            "48",
            "--ring-ms",
            "60000",
        ])
        .env("ALSA_CONFIG_PATH", &alsa)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("call ended at 48.0 s"), "{text}");
    assert!(text.contains("capture: 0 samples dropped"), "{text}");
    // The demo's agent switches from a quiet to a loud recording: the jump comes through.
    assert!(text.contains("▲ gradual"), "{text}");
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_callcoach"))
        .args(["live", "--stereo-device", "alsa:nothing-here"])
        .env("ALSA_CONFIG_PATH", &alsa)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("callcoach devices"));
}
