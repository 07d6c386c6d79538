//! A real hub for the end-to-end tests: `callcoach hub serve` in a process of its own (so it
//! can be killed), its accounts made with `callcoach hub user`/`token`, and a small blocking
//! HTTP client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::cmd;

pub const PASSWORD: &str = "correct horse battery";

pub struct HubProc {
    pub db: PathBuf,
    pub addr: SocketAddr,
    pub child: Option<Child>,
}

/// A free loopback port (bound and released).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Makes `name` with `role` (and `team`) in `db`; returns an agent's token.
pub fn account(db: &Path, name: &str, role: &str, team: &str) -> Option<String> {
    let o = cmd()
        .env("CALLCOACH_HUB_PASSWORD", PASSWORD)
        .args(["hub", "user", name, "--role", role, "--db"])
        .arg(db)
        .args(
            (!team.is_empty())
                .then_some(["--team", team])
                .into_iter()
                .flatten(),
        )
        .output()
        .expect("run callcoach hub user");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (role == "agent").then(|| {
        let o = cmd()
            .args(["hub", "token", name, "--db"])
            .arg(db)
            .output()
            .expect("run callcoach hub token");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    })
}

impl HubProc {
    pub fn start(db: &Path, addr: SocketAddr) -> Self {
        let mut h = Self {
            db: db.to_path_buf(),
            addr,
            child: None,
        };
        h.spawn();
        h
    }

    pub fn spawn(&mut self) {
        let child = cmd()
            .args(["hub", "serve", "--listen", &self.addr.to_string(), "--db"])
            .arg(&self.db)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start callcoach hub serve");
        self.child = Some(child);
        let t0 = Instant::now();
        while http(self.addr, "GET", "/healthz", None, None).0 != 200 {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the hub did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no graceful anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for HubProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request: (status, Set-Cookie's name=value, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    cookie: Option<&str>,
) -> (u16, Option<String>, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, None, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if s.write_all(req.as_bytes()).is_err() {
        return (0, None, String::new());
    }
    // Read the head, then exactly Content-Length bytes (chromedriver keeps the connection
    // open whatever `Connection: close` says), or to the end without one.
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut want: Option<usize> = None;
    loop {
        if let Some(pos) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            if want.is_none() {
                let head = String::from_utf8_lossy(&out[..pos]).to_ascii_lowercase();
                want = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .map(|n| pos + 4 + n);
            }
            if want.is_some_and(|w| out.len() >= w) {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split_once(':'))
        .and_then(|(_, v)| v.trim().split(';').next().map(str::to_string));
    (status, cookie, rest.to_string())
}

/// Logs in; returns the session cookie (`cc_session=…`).
pub fn login(addr: SocketAddr, name: &str) -> String {
    let body = format!(r#"{{"name":"{name}","password":"{PASSWORD}"}}"#);
    let (status, cookie, text) = http(addr, "POST", "/api/login", Some(&body), None);
    assert_eq!(status, 200, "login {name}: {text}");
    cookie.expect("a session cookie")
}
