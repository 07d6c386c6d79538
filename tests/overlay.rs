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

/// The demo's opening (the agent's normal level) and its loud agent stretch: 0–6 s and 22–32 s;
/// the jump comes about 8.5 s in.
fn jump_clip(dir: &std::path::Path) -> std::path::PathBuf {
    let (a, b, clip) = (dir.join("a.wav"), dir.join("b.wav"), dir.join("clip.wav"));
    tool(
        "sox",
        &[p(&fixture("demo-call.wav")), p(&a), "trim", "0", "6"],
    );
    tool(
        "sox",
        &[p(&fixture("demo-call.wav")), p(&b), "trim", "22", "10"],
    );
    tool("sox", &[p(&a), p(&b), p(&clip)]);
    clip
}

/// Replays `clip` with the overlay under Xvfb + openbox: a screenshot of the screen before the
/// warning (`before.png`), six while it flashes (`flash1..6.png`), one of the window alone
/// (`window.png`), the window's geometry (`geometry.txt`, xwininfo) and state (`state.txt`).
/// Returns the live run's text log.
fn run_overlay(dir: &std::path::Path, clip: &std::path::Path, extra: &str, name: &str) -> String {
    let log = dir.join("live.log");
    let script = format!(
        r#"set -e
openbox >/dev/null 2>&1 &
sleep 1
CALLCOACH_OVERLAY_STATE="{d}/overlay.json" "{bin}" live --input "{clip}" --realtime --ui overlay {extra} --out "{d}" --no-asr > "{log}" 2>&1 &
pid=$!
sleep 1.5
import -window root "{d}/before.png"
for i in $(seq 1 150); do grep -q "▲ gradual" "{log}" && break; sleep 0.1; done
for i in 1 2 3 4 5 6; do import -window root "{d}/flash$i.png"; sleep 0.07; done
win=$(xwininfo -name callcoach | awk '/Window id:/ {{print $4}}')
import -window "$win" "{d}/window.png" || true
xwininfo -name callcoach > "{d}/geometry.txt" || true
xprop -name callcoach _NET_WM_STATE > "{d}/state.txt" || true
wait $pid
"#,
        bin = env!("CARGO_BIN_EXE_callcoach"),
        clip = clip.display(),
        d = dir.display(),
        log = log.display()
    );
    let out = std::process::Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1024x700x24", "bash", "-c", &script])
        .output()
        .expect("xvfb-run is needed for the overlay test: run .ci/install-deps");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(keep) = std::env::var_os("CALLCOACH_SCREENSHOTS") {
        let keep = std::path::PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(
            dir.join("window.png"),
            keep.join(format!("overlay-{name}.png")),
        )
        .unwrap();
    }
    text
}

/// `xwininfo`'s figure for `key` (e.g. "Height:").
fn geometry(dir: &std::path::Path, key: &str) -> i64 {
    let g = std::fs::read_to_string(dir.join("geometry.txt")).unwrap_or_default();
    g.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(key)
                .map(|v| v.trim().parse().unwrap_or(-1))
        })
        .unwrap_or_else(|| panic!("no {key} in {g}"))
}

const BRIGHT: &str = "#FFB000"; // warning severity, lit
const DIM: &str = "#6B5012"; // the same at 35 %, between flashes

/// Lit and dim banner pixels in each flash screenshot.
fn flashes(dir: &std::path::Path) -> Vec<(f64, f64)> {
    (1..=6)
        .map(|i| {
            let f = dir.join(format!("flash{i}.png"));
            (pixels(&f, BRIGHT), pixels(&f, DIM))
        })
        .collect()
}

#[test]
fn overlay_flashes_the_warning_on_screen() {
    let dir = tmpdir();
    let clip = jump_clip(dir.path());
    let text = run_overlay(dir.path(), &clip, "--overlay full", "full");
    assert!(text.contains("▲ gradual"), "{text}");
    assert!(text.contains("call ended at 16.0 s"), "{text}");
    let before = dir.path().join("before.png");
    let b = (pixels(&before, BRIGHT), pixels(&before, DIM));
    assert!(
        b.0 < 100.0 && b.1 < 100.0,
        "no banner before the warning: {b:?}"
    );
    let shots = flashes(dir.path());
    // A banner is some 460 × 60 pixels; flashing: some shots lit, some dim.
    assert!(shots.iter().any(|s| s.0 > 10_000.0), "never lit: {shots:?}");
    assert!(shots.iter().any(|s| s.1 > 10_000.0), "never dim: {shots:?}");
    let state = std::fs::read_to_string(dir.path().join("state.txt")).unwrap_or_default();
    assert!(
        state.contains("_NET_WM_STATE_ABOVE"),
        "always on top: {state}"
    );
    assert!(geometry(dir.path(), "Height:") > 300, "the full window");
}

/// The compact bar: one slim, wide window that still flashes the warning; and the place the
/// agent gave it comes back on the next run.
#[test]
fn the_compact_bar_is_slim_flashes_and_remembers_its_place() {
    let dir = tmpdir();
    let clip = jump_clip(dir.path());
    // Where the agent left it last time (a state file as the overlay writes it).
    std::fs::write(
        dir.path().join("overlay.json"),
        r#"{"mode": "compact", "compact": {"x": 120.0, "y": 480.0, "w": 760.0, "h": 56.0}}"#,
    )
    .unwrap();
    let text = run_overlay(dir.path(), &clip, "", "compact");
    assert!(text.contains("▲ gradual"), "{text}");
    let (h, w) = (
        geometry(dir.path(), "Height:"),
        geometry(dir.path(), "Width:"),
    );
    assert!(h <= 80 && w >= 700, "a slim bar: {w}×{h}");
    // openbox places the window's frame at the position asked for: the client area is a
    // border and a title bar lower.
    let (x, y) = (
        geometry(dir.path(), "Absolute upper-left X:"),
        geometry(dir.path(), "Absolute upper-left Y:"),
    );
    assert!(
        (110..=140).contains(&x) && (470..=520).contains(&y),
        "remembered place: at {x},{y}"
    );
    let shots = flashes(dir.path());
    assert!(shots.iter().any(|s| s.0 > 3_000.0), "never lit: {shots:?}");
    assert!(shots.iter().any(|s| s.1 > 3_000.0), "never dim: {shots:?}");
    let before = dir.path().join("before.png");
    assert!(
        pixels(&before, BRIGHT) < 100.0,
        "no banner before the warning"
    );
    // The place is written back (the window stayed put for more than a second).
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("overlay.json")).unwrap())
            .unwrap();
    assert_eq!(saved["mode"], "compact", "{saved}");
    assert!(saved["compact"]["w"].as_f64().unwrap() >= 700.0, "{saved}");
}
