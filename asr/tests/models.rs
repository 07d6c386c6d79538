#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Model download and verification against a local HTTP server (loopback only) serving the real
//! whisper.cpp test model: full download, resume after a dropped connection, a corrupt file, a
//! file that is not a model.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use callcoach_asr::models::{fetch_from, verify, ModelError, ModelInfo};

fn test_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/for-tests-ggml-tiny.bin")
}

fn info() -> ModelInfo {
    ModelInfo {
        name: "for-tests-tiny".into(),
        file: "ggml-for-tests-tiny.bin".into(),
        url: None,
        size: Some(575_451),
        sha256: Some("c486fb9f14a28b1c1dc252741a431646cc573450c900b9d9c406e10294aa01e6".into()),
        sha1: None,
        size_mib: None,
    }
}

/// Serves `body` to `requests` connections; honours `Range: bytes=N-`; closes after `cut`
/// bytes on the first connection when set. Returns the base URL and the Range headers seen.
fn serve(
    body: Vec<u8>,
    requests: usize,
    cut: Option<usize>,
) -> (String, Arc<Mutex<Vec<Option<u64>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (k, stream) in listener.incoming().take(requests).enumerate() {
            let mut s = stream.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head).to_lowercase();
            let from = text
                .lines()
                .find_map(|l| l.strip_prefix("range: bytes="))
                .and_then(|r| {
                    r.trim_end_matches('-')
                        .trim_end_matches("-\r")
                        .trim()
                        .trim_end_matches('-')
                        .parse::<u64>()
                        .ok()
                });
            log.lock().unwrap().push(from);
            let start = from.unwrap_or(0) as usize;
            let part = &body[start..];
            let status = if from.is_some() {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                part.len()
            );
            let n = if k == 0 {
                cut.unwrap_or(part.len()).min(part.len())
            } else {
                part.len()
            };
            let _ = s.write_all(&part[..n]);
        }
    });
    (url, seen)
}

#[test]
fn downloads_verifies_and_renames_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _) = serve(std::fs::read(test_model()).unwrap(), 1, None);
    let mut calls = 0;
    let path = fetch_from(
        &info(),
        &format!("{url}/x.bin"),
        dir.path(),
        &mut |_, total| {
            calls += 1;
            assert_eq!(total, Some(575_451));
        },
    )
    .unwrap();
    assert!(calls > 1, "progress is reported");
    assert_eq!(path, dir.path().join("ggml-for-tests-tiny.bin"));
    assert!(!dir.path().join("ggml-for-tests-tiny.bin.part").exists());
    verify(&path, &info()).unwrap();
}

#[test]
fn a_dropped_download_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = serve(std::fs::read(test_model()).unwrap(), 2, Some(200_000));
    let first = fetch_from(&info(), &format!("{url}/x.bin"), dir.path(), &mut |_, _| {});
    let err = first.unwrap_err().to_string();
    assert!(
        err.contains("run the same command again to resume"),
        "{err}"
    );
    let part = dir.path().join("ggml-for-tests-tiny.bin.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 200_000);
    let path = fetch_from(&info(), &format!("{url}/x.bin"), dir.path(), &mut |_, _| {}).unwrap();
    verify(&path, &info()).unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), &[None, Some(200_000)]);
}

#[test]
fn corrupt_and_wrong_files_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = std::fs::read(test_model()).unwrap();
    body[300_000] ^= 0xff;
    let (url, _) = serve(body, 1, None);
    let err = fetch_from(&info(), &format!("{url}/x.bin"), dir.path(), &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, ModelError::Bad { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("sha256") && msg.contains("callcoach models fetch for-tests-tiny"),
        "{msg}"
    );
    assert!(
        !dir.path().join("ggml-for-tests-tiny.bin").exists(),
        "a bad file never takes the model's name"
    );
    // A text file where a model should be.
    let fake = dir.path().join("fake.bin");
    std::fs::write(&fake, vec![b'x'; 575_451]).unwrap();
    let msg = verify(&fake, &info()).unwrap_err().to_string();
    assert!(msg.contains("ggml header"), "{msg}");
    // A truncated model.
    let short = dir.path().join("short.bin");
    std::fs::write(&short, &std::fs::read(test_model()).unwrap()[..1000]).unwrap();
    let msg = verify(&short, &info()).unwrap_err().to_string();
    assert!(msg.contains("size 1000 bytes, expected 575451"), "{msg}");
}
