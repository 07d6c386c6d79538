#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! The supervisor's pages in a real browser: Debian's headless Chromium driven by
//! chromedriver (WebDriver over HTTP). A supervisor logs in, watches the wallboard change while
//! an agent's `callcoach live --hub` replays a call in real time (its overlay on a virtual X
//! screen), opens the call, types a whisper, and the whisper appears on the agent's overlay.
//! Screenshots of each step are kept (set CALLCOACH_SCREENSHOTS=DIR to copy them out).
//! Needs chromium, chromium-driver, xvfb, openbox, imagemagick (`.ci/install-deps`).
mod common;
use common::hubproc::*;
use common::*;

use base64::Engine;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    addr: SocketAddr,
    session: String,
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(
            self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
            None,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wd(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    let b = body.map(|b| b.to_string());
    let (status, _, text) = http(addr, method, path, b.as_deref(), None);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    assert_eq!(status, 200, "WebDriver {method} {path}: {text}");
    v["value"].clone()
}

impl Driver {
    fn start(profile: &std::path::Path) -> Self {
        let addr = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={}", addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is needed for the browser test: run .ci/install-deps (chromium, chromium-driver)");
        let t0 = Instant::now();
        while http(addr, "GET", "/status", None, None).0 != 200 {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1280,860", "--lang=zh-CN",
                    format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let v = wd(addr, "POST", "/session", Some(caps));
        let session = v["sessionId"].as_str().expect("a session").to_string();
        Self {
            addr,
            session,
            child,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        wd(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until it returns something truthy (20 s at most).
    fn until(&self, what: &str, script: &str) -> Value {
        self.until_for(what, script, 20)
    }

    fn until_for(&self, what: &str, script: &str, secs: u64) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.js(script);
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            if t0.elapsed() > Duration::from_secs(secs) {
                let page = self.js("return location.href + '\\n' + document.body.innerText;");
                panic!(
                    "waited {secs} s for {what}; the page:\n{}",
                    page.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&self, path: &std::path::Path) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

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
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

#[test]
fn a_supervisor_watches_opens_the_call_and_whispers_onto_the_overlay() {
    let dir = tmpdir();
    let d = dir.path();
    let db = d.join("hub.sqlite");
    account(&db, "lead", "supervisor", "east");
    let token = account(&db, "A1001", "agent", "east").unwrap();
    std::fs::write(d.join("token"), &token).unwrap();
    let addr = free_port();
    let _hub = HubProc::start(&db, addr);

    // The supervisor first: Chromium up, logged in, an empty wallboard.
    let shots = d.join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let chrome = Driver::start(&d.join("profile"));
    let base = format!("http://{addr}");
    // Not signed in: the wallboard sends the browser to the login page.
    chrome.go(&format!("{base}/wallboard"));
    chrome.until("the login page", "return location.pathname === '/login';");
    chrome.type_into("#name", "lead");
    chrome.type_into("#password", PASSWORD);
    chrome.screenshot(&shots.join("hub-login.png"));
    chrome.click("#go");
    chrome.until("the wallboard", "return location.pathname === '/wallboard' && document.querySelector('#count').textContent.includes('0 坐席');");
    // The agent: the demo call replayed live, the overlay on a virtual screen. The script takes
    // the overlay's picture before the whisper and when the test says the whisper is out.
    // The demo call twice over (76 s): time enough for every step while the call lasts.
    let call = d.join("call.wav");
    let demo = fixture("demo-call.wav");
    tool("sox", &[p(&demo), p(&demo), p(&call)]);
    let log = d.join("live.log");
    let script = format!(
        r#"set -e
openbox >/dev/null 2>&1 &
sleep 1
CALLCOACH_OVERLAY_STATE="{d}/overlay.json" "{bin}" live --input "{demo}" --realtime --ui overlay --overlay full --no-asr --agent-id A1001 --hub ws://{addr} --hub-token-file "{d}/token" --out "{d}/calls" > "{log}" 2>&1 &
pid=$!
for i in $(seq 1 300); do [ -e "{d}/shoot-before" ] && break; sleep 0.1; done
win=$(xwininfo -name callcoach | awk '/Window id:/ {{print $4}}')
import -window "$win" "{d}/overlay-before.png" || true
for i in $(seq 1 400); do [ -e "{d}/shoot-after" ] && break; sleep 0.1; done
sleep 0.5
import -window "$win" "{d}/overlay-whisper.png" || true
wait $pid
"#,
        bin = env!("CARGO_BIN_EXE_callcoach"),
        demo = call.display(),
        d = d.display(),
        log = log.display()
    );
    let agent = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1024x700x24", "bash", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xvfb-run is needed for the browser test: run .ci/install-deps");
    let live_said = |what: &str, secs: u64| {
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(what) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "live never said {what:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    live_said("hub: connected", 30);
    // The agent's tile, in a call, its call time running.
    let t1 = chrome.until(
        "A1001 in a call",
        "const t = document.querySelector('.tile[data-agent=\"A1001\"]'); return t && t.dataset.state === 'in_call' && t.querySelector('.m-time').textContent !== '—' && t.querySelector('.m-time').textContent;",
    );
    chrome.screenshot(&shots.join("hub-wallboard-1.png"));
    std::thread::sleep(Duration::from_secs(3));
    let t2 = chrome.until(
        "the tile's call time",
        "const t = document.querySelector('.tile[data-agent=\"A1001\"]'); return t && t.querySelector('.m-time').textContent;",
    );
    assert_ne!(t1, t2, "the wallboard updates live");
    // The demo's loudness jump shows on the tile and in the alert feed.
    chrome.until_for("the jump's alert (25 s into the call)", "return [...document.querySelectorAll('#feed .alert')].some(a => a.dataset.rule === 'gradual');", 40);
    chrome.screenshot(&shots.join("hub-wallboard-2.png"));
    // Open the call; whisper.
    // (The wallboard redraws tiles as they change: click through the page's own DOM rather
    // than hold an element reference that a redraw makes stale.)
    chrome.js("document.querySelector('.tile[data-agent=\"A1001\"]').click();");
    chrome.until("the call view", "return location.pathname === '/call' && document.querySelector('#title').textContent.includes('A1001');");
    std::fs::write(d.join("shoot-before"), "").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    chrome.type_into("#whisper", "请放慢语速，确认订单号");
    chrome.click("#send");
    chrome.until(
        "the whisper sent",
        "return document.querySelector('#sent').textContent.includes('已发送');",
    );
    chrome.screenshot(&shots.join("hub-call.png"));
    live_said("whisper from lead: 请放慢语速，确认订单号", 10);
    std::fs::write(d.join("shoot-after"), "").unwrap();
    let out = agent.wait_with_output().unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The whisper's purple panel on the overlay: absent before, there after.
    const NUDGE: &str = "#8040C0";
    let before = pixels(&d.join("overlay-before.png"), NUDGE);
    let after = pixels(&d.join("overlay-whisper.png"), NUDGE);
    assert!(before < 200.0, "no whisper panel before: {before}");
    assert!(
        after > 3000.0,
        "the whisper panel on the overlay: {after} pixels"
    );
    for f in ["overlay-before.png", "overlay-whisper.png"] {
        std::fs::copy(d.join(f), shots.join(format!("hub-{f}"))).unwrap();
    }
    if let Some(keep) = std::env::var_os("CALLCOACH_SCREENSHOTS") {
        let keep = std::path::PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        for e in std::fs::read_dir(&shots).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), keep.join(e.file_name())).unwrap();
        }
    }
}
