//! Remembered window position and size, per mode, in a small JSON file (the agent places the
//! window once, beside the CRM, and it comes back there).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Mode;

/// Position (outer, top-left) and inner size of the window, in points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// What is remembered between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    pub mode: Option<Mode>,
    pub compact: Option<Placement>,
    pub full: Option<Placement>,
}

impl Remembered {
    pub fn placement(&self, mode: Mode) -> Option<Placement> {
        match mode {
            Mode::Compact => self.compact,
            Mode::Full => self.full,
        }
    }

    pub fn set(&mut self, mode: Mode, p: Placement) {
        match mode {
            Mode::Compact => self.compact = Some(p),
            Mode::Full => self.full = Some(p),
        }
    }

    /// Reads the file; a missing or unreadable file is a fresh start (the window opens at its
    /// default place), never an error that keeps the agent from working.
    pub fn load(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    /// Writes the file (and its directory); returns the error to show in the status line.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Where the window's place is kept: `$CALLCOACH_OVERLAY_STATE`, else
/// `$XDG_CONFIG_HOME/callcoach/overlay.json`, else `~/.config/callcoach/overlay.json`.
pub fn default_state_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CALLCOACH_OVERLAY_STATE") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("callcoach").join("overlay.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_survives_a_damaged_file() {
        let dir = std::env::temp_dir().join(format!("callcoach-geom-{}", std::process::id()));
        let path = dir.join("sub").join("overlay.json");
        let mut r = Remembered {
            mode: Some(Mode::Full),
            ..Remembered::default()
        };
        r.set(
            Mode::Compact,
            Placement {
                x: 10.0,
                y: 20.0,
                w: 700.0,
                h: 60.0,
            },
        );
        r.save(&path).unwrap();
        assert_eq!(Remembered::load(&path), r);
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(Remembered::load(&path), Remembered::default());
        std::fs::remove_dir_all(&dir).ok();
    }
}
