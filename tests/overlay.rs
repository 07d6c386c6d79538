#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! The agent's overlay under a virtual X server (Xvfb + openbox): a replayed call raises a
//! warning, and screenshots show its banner flashing (bright and dim amber in turn), none
//! before it; the window is kept above others; Chinese text needs the CJK font (checked by
//! the status line it prints). Needs xvfb, openbox, imagemagick, x11-utils and
//! fonts-wqy-microhei (`.ci/install-deps` installs them).
mod common;
use common::*;

/// Pixels of `colour` (± fuzz) in a PNG, counted by ImageMagick.
fn pixels(png: &std::path::Path, colour: &str) -> f64 {
    let out = tool_output(
        "convert",
        &[
            p(png),
            "-fuzz",
            "6%",
            "-fill",
            "black",
            "+opaque",
            colour,
            "-fill",
            "white",
            "-opaque",
            colour,
            "-format",
            "%[fx:mean*w*h]",
            "info:",
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn overlay_flashes_the_warning_on_screen() {
    let dir = tmpdir();
    // The demo's opening (the agent's normal level) and its loud agent stretch: 0–6 s and
    // 22–32 s; the jump comes about 8.5 s in.
    let (a, b, clip) = (
        dir.path().join("a.wav"),
        dir.path().join("b.wav"),
        dir.path().join("clip.wav"),
    );
    tool(
        "sox",
        &[p(&fixture("demo-call.wav")), p(&a), "trim", "0", "6"],
    );
    tool(
        "sox",
        &[p(&fixture("demo-call.wav")), p(&b), "trim", "22", "10"],
    );
    tool("sox", &[p(&a), p(&b), p(&clip)]);
    let log = dir.path().join("live.log");
    let script = format!(
        r#"set -e
openbox >/dev/null 2>&1 &
sleep 1
"{bin}" live --input "{clip}" --realtime --ui overlay --out "{d}" --no-asr > "{log}" 2>&1 &
pid=$!
sleep 1.5
import -window root "{d}/before.png"
for i in $(seq 1 150); do grep -q "▲ gradual" "{log}" && break; sleep 0.1; done
for i in 1 2 3 4 5 6; do import -window root "{d}/flash$i.png"; sleep 0.07; done
xprop -name callcoach _NET_WM_STATE > "{d}/state.txt" || true
wait $pid
"#,
        bin = env!("CARGO_BIN_EXE_callcoach"),
        clip = clip.display(),
        d = dir.path().display(),
        log = log.display()
    );
    let out = std::process::Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 800x600x24", "bash", "-c", &script])
        .output()
        .expect("xvfb-run is needed for the overlay test: run .ci/install-deps");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("▲ gradual"), "{text}");
    assert!(text.contains("call ended at 16.0 s"), "{text}");
    const BRIGHT: &str = "#FFB000"; // warning severity, lit
    const DIM: &str = "#6B5012"; // the same at 35 %, between flashes
    let before = dir.path().join("before.png");
    let b = (pixels(&before, BRIGHT), pixels(&before, DIM));
    assert!(
        b.0 < 100.0 && b.1 < 100.0,
        "no banner before the warning: {b:?}"
    );
    let shots: Vec<(f64, f64)> = (1..=6)
        .map(|i| {
            let f = dir.path().join(format!("flash{i}.png"));
            (pixels(&f, BRIGHT), pixels(&f, DIM))
        })
        .collect();
    // A banner is some 440 × 60 pixels; flashing: some shots lit, some dim.
    assert!(shots.iter().any(|s| s.0 > 10_000.0), "never lit: {shots:?}");
    assert!(shots.iter().any(|s| s.1 > 10_000.0), "never dim: {shots:?}");
    let state = std::fs::read_to_string(dir.path().join("state.txt")).unwrap_or_default();
    assert!(
        state.contains("_NET_WM_STATE_ABOVE"),
        "always on top: {state}"
    );
}
