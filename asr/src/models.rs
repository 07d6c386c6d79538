//! Whisper model files: the manifest (`models/manifest.toml`, embedded), where models are
//! looked for, verification (size, digest, ggml header) and a resumable download.
//!
//! Search order for a model: an explicit `--model` (a path or a manifest name), then the
//! `CALLCOACH_MODEL` environment variable (same), then the user data directory
//! (`$XDG_DATA_HOME/callcoach/models`, else `~/.local/share/callcoach/models`), then `./models`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha1::Digest as _;

/// The embedded manifest.
pub const MANIFEST: &str = include_str!("../../models/manifest.toml");

/// Environment variable naming a model (path or name).
pub const MODEL_ENV: &str = "CALLCOACH_MODEL";
/// Environment variable replacing the download base URL (a mirror); files are fetched as
/// `BASE/FILE`.
pub const MIRROR_ENV: &str = "CALLCOACH_MODEL_MIRROR";

/// Models tried, in order, when none is named: small enough for a CPU in real time.
pub const PREFERRED: [&str; 6] = [
    "small-q5_1",
    "base-q5_1",
    "base",
    "small",
    "tiny-q5_1",
    "tiny",
];

/// One model of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub name: String,
    pub file: String,
    /// Pinned URL; `base_url/file` when absent.
    pub url: Option<String>,
    /// Exact size in bytes, when known.
    pub size: Option<u64>,
    /// Approximate size, MiB, when the exact size is not known.
    pub size_mib: Option<u64>,
    pub sha256: Option<String>,
    pub sha1: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    base_url: String,
    model: Vec<ModelInfo>,
}

/// Model problems. Every message says what to run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("unknown model '{0}'; `callcoach models list` shows the names")]
    UnknownName(String),
    #[error("no Whisper model found (looked in: {searched}); ASR is off. Run `callcoach models fetch base-q5_1` (about 57 MiB), or `callcoach models import DIR` with a faster-whisper (CTranslate2) model directory, or pass --model PATH")]
    NotFound { searched: String },
    #[error("{path}: {problem}; run `callcoach models fetch {name}` to download it again")]
    Bad {
        path: PathBuf,
        name: String,
        problem: String,
    },
    #[error("{path}: not a Whisper model ({problem}); pass a ggml model file, e.g. from `callcoach models fetch base-q5_1`")]
    NotAModel { path: PathBuf, problem: String },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("download of {url} failed: {detail}; run the same command again to resume")]
    Download { url: String, detail: String },
    #[error("the embedded model manifest is invalid: {0}")]
    Manifest(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |error| ModelError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The manifest's models.
pub fn manifest() -> Result<(String, Vec<ModelInfo>), ModelError> {
    let m: Manifest =
        toml_edit::de::from_str(MANIFEST).map_err(|e| ModelError::Manifest(e.to_string()))?;
    Ok((m.base_url, m.model))
}

/// A manifest entry by name.
pub fn info(name: &str) -> Result<ModelInfo, ModelError> {
    manifest()?
        .1
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ModelError::UnknownName(name.to_string()))
}

/// Where a model is downloaded from (mirror, pinned URL, or base URL).
pub fn url_of(m: &ModelInfo) -> Result<String, ModelError> {
    if let Ok(mirror) = std::env::var(MIRROR_ENV) {
        return Ok(format!("{}/{}", mirror.trim_end_matches('/'), m.file));
    }
    let base = manifest()?.0;
    Ok(m.url
        .clone()
        .unwrap_or_else(|| format!("{base}/{}", m.file)))
}

/// The user data directory for models.
pub fn user_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("callcoach/models"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/callcoach/models"))
}

/// Directories searched for model files, in order.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = user_dir().into_iter().collect();
    dirs.push(PathBuf::from("models"));
    dirs
}

/// Finds the model to use: `explicit`, else `$CALLCOACH_MODEL`, else the first preferred
/// model installed in the search directories.
pub fn resolve(explicit: Option<&str>) -> Result<PathBuf, ModelError> {
    let env = std::env::var(MODEL_ENV).ok().filter(|s| !s.is_empty());
    if let Some(want) = explicit.or(env.as_deref()) {
        let p = Path::new(want);
        if p.is_file() || want.contains('/') || want.ends_with(".bin") {
            return if p.is_file() {
                Ok(p.to_path_buf())
            } else {
                Err(ModelError::NotFound {
                    searched: p.display().to_string(),
                })
            };
        }
        return match info(want) {
            Ok(m) => find_installed(&m).ok_or_else(|| ModelError::NotFound {
                searched: searched_text(&m.file),
            }),
            // Not a manifest name: an imported model (`callcoach models import`), if installed.
            Err(e) => installed_file(&format!("ggml-{want}.bin")).ok_or(e),
        };
    }
    for name in PREFERRED {
        if let Some(p) = info(name).ok().and_then(|m| find_installed(&m)) {
            return Ok(p);
        }
    }
    if let Some(p) = imported().into_iter().next() {
        return Ok(p);
    }
    Err(ModelError::NotFound {
        searched: searched_text("ggml-*.bin"),
    })
}

fn searched_text(file: &str) -> String {
    let mut places = vec![format!("${MODEL_ENV}")];
    places.extend(
        search_dirs()
            .iter()
            .map(|d| d.join(file).display().to_string()),
    );
    places.join(", ")
}

/// The installed file of a model, if any search directory has it.
pub fn find_installed(m: &ModelInfo) -> Option<PathBuf> {
    installed_file(&m.file)
}

fn installed_file(file: &str) -> Option<PathBuf> {
    search_dirs()
        .into_iter()
        .map(|d| d.join(file))
        .find(|p| p.is_file())
}

/// Installed models that are not in the manifest (`callcoach models import`, named
/// `ggml-SIZE-ct2.bin`), in name order.
pub fn imported() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = search_dirs()
        .into_iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.filter_map(Result::ok).map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with("ggml-") && f.ends_with("-ct2.bin"))
        })
        .collect();
    found.sort();
    found
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that a file starts like a ggml model (whisper.cpp's magic).
pub fn check_header(path: &Path) -> Result<(), ModelError> {
    let mut head = [0u8; 4];
    let mut f = File::open(path).map_err(io(path))?;
    let n = f.read(&mut head).map_err(io(path))?;
    if n < 4 || &head != b"lmgg" {
        return Err(ModelError::NotAModel {
            path: path.to_path_buf(),
            problem: "no ggml header".into(),
        });
    }
    Ok(())
}

/// Verifies a model file against its manifest entry: header, exact size when known, digest.
pub fn verify(path: &Path, m: &ModelInfo) -> Result<(), ModelError> {
    let bad = |problem: String| ModelError::Bad {
        path: path.to_path_buf(),
        name: m.name.clone(),
        problem,
    };
    let len = fs::metadata(path).map_err(io(path))?.len();
    if let Some(size) = m.size {
        if len != size {
            return Err(bad(format!(
                "size {len} bytes, expected {size} (truncated or wrong file)"
            )));
        }
    }
    check_header(path).map_err(|_| bad("no ggml header (not a model file)".into()))?;
    let mut f = File::open(path).map_err(io(path))?;
    let mut s256 = sha2::Sha256::new();
    let mut s1 = sha1::Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        if m.sha256.is_some() {
            s256.update(&buf[..n]);
        } else {
            s1.update(&buf[..n]);
        }
    }
    let (want, got, kind) = match (&m.sha256, &m.sha1) {
        (Some(w), _) => (w, hex(&s256.finalize()), "sha256"),
        (None, Some(w)) => (w, hex(&s1.finalize()), "sha1"),
        (None, None) => return Ok(()),
    };
    if !got.eq_ignore_ascii_case(want) {
        return Err(bad(format!(
            "{kind} {got} does not match the manifest's {want} (corrupt or truncated)"
        )));
    }
    Ok(())
}

/// Downloads a model into `dir` (resuming a `.part` file), verifies it and renames it into
/// place. `progress(done, total)` is called as bytes arrive.
pub fn fetch(
    m: &ModelInfo,
    dir: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<PathBuf, ModelError> {
    fetch_from(m, &url_of(m)?, dir, progress)
}

/// [`fetch`] from an explicit URL.
pub fn fetch_from(
    m: &ModelInfo,
    url: &str,
    dir: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<PathBuf, ModelError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let dest = dir.join(&m.file);
    let part = dir.join(format!("{}.part", m.file));
    let url = url.to_string();
    let have = fs::metadata(&part).map(|x| x.len()).unwrap_or(0);
    let dl = |detail: String| ModelError::Download {
        url: url.clone(),
        detail,
    };
    let mut req = ureq::get(&url);
    if have > 0 {
        req = req.header("Range", &format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| dl(e.to_string()))?;
    let status = resp.status().as_u16();
    let resumed = status == 206;
    if !(status == 200 || resumed) {
        return Err(dl(format!("HTTP {status}")));
    }
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let start = if resumed { have } else { 0 };
    let total = m.size.or(len.map(|l| l + start));
    let mut out = OpenOptions::new()
        .create(true)
        .append(resumed)
        .write(true)
        .truncate(!resumed)
        .open(&part)
        .map_err(io(&part))?;
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = start;
    progress(done, total);
    loop {
        let n = body
            .read(&mut buf)
            .map_err(|e| dl(format!("{e} after {done} bytes")))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io(&part))?;
        done += n as u64;
        progress(done, total);
    }
    out.sync_all().map_err(io(&part))?;
    drop(out);
    if let Some(l) = len {
        if done < start + l {
            // The connection dropped: keep the part for the next run to resume.
            return Err(dl(format!(
                "connection closed after {done} of {} bytes",
                start + l
            )));
        }
    }
    if let Err(e) = verify(&part, m) {
        // A bad complete file cannot be resumed into a good one.
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    fs::rename(&part, &dest).map_err(io(&dest))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_has_every_required_model_with_a_digest() {
        let (_, models) = manifest().unwrap();
        for name in [
            "tiny",
            "base",
            "small",
            "medium",
            "large-v3-turbo",
            "tiny-q5_1",
            "tiny-q8_0",
            "base-q5_1",
            "base-q8_0",
            "small-q5_1",
            "small-q8_0",
            "medium-q5_0",
            "medium-q8_0",
            "large-v3-turbo-q5_0",
            "large-v3-turbo-q8_0",
        ] {
            let m = models
                .iter()
                .find(|m| m.name == name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert!(
                m.sha256.is_some() || m.sha1.is_some(),
                "{name} has no digest"
            );
            assert!(
                m.size.is_some() || m.size_mib.is_some(),
                "{name} has no size"
            );
            assert!(m.file.starts_with("ggml-") && m.file.ends_with(".bin"));
        }
        for p in PREFERRED {
            assert!(info(p).is_ok(), "{p}");
        }
    }
}
