//! The agent's spool: every message waits on disk until the hub acknowledges it, so an agent
//! that loses the hub keeps coaching and loses nothing; on reconnect it resends in order.
//!
//! One append-only JSON-lines file, `spool.jsonl`, in the spool directory, and `acked` holding
//! the last acknowledged sequence number. Appends and acknowledgements are O(1); the file is
//! compacted (rewritten without what was acknowledged) when more than half of it is
//! acknowledged. The sequence counter survives a restart (it continues after the last line on
//! disk). Over `max_bytes`, the oldest replaceable messages (meters, states) go first, then —
//! counted — the oldest of the rest, so a week-long outage cannot fill the disk.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::wire::{encode, AgentMsg, Body};

/// Why the spool could not do its work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    #[error("{path}: {source} (the spool directory must be writable by the agent)")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The spool of one agent.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: usize,
    /// Unacknowledged messages, oldest first, with their encoded size.
    pending: VecDeque<(AgentMsg, usize)>,
    bytes: usize,
    next_seq: u64,
    acked: u64,
    /// Lines in the file that are acknowledged or dropped (compacted away when many).
    dead_lines: usize,
    /// Messages dropped because the spool was full (replaceable ones, then others).
    pub dropped_replaceable: u64,
    pub dropped_other: u64,
    /// Lines of the file that could not be read back (a torn last write): skipped, counted.
    pub unreadable_lines: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, reading back what was not acknowledged.
    pub fn open(dir: &Path, max_bytes: usize) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let acked_path = dir.join("acked");
        let acked = match std::fs::read_to_string(&acked_path) {
            Ok(s) => s.trim().parse().unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&acked_path)(e)),
        };
        let file = dir.join("spool.jsonl");
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(&file)(e)),
        };
        let mut s = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            pending: VecDeque::new(),
            bytes: 0,
            next_seq: acked + 1,
            acked,
            dead_lines: 0,
            dropped_replaceable: 0,
            dropped_other: 0,
            unreadable_lines: 0,
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<AgentMsg>(line) {
                Ok(m) => {
                    s.next_seq = s.next_seq.max(m.seq + 1);
                    if m.seq > acked {
                        s.bytes += line.len() + 1;
                        s.pending.push_back((m, line.len() + 1));
                    } else {
                        s.dead_lines += 1;
                    }
                }
                Err(_) => s.unreadable_lines += 1,
            }
        }
        Ok(s)
    }

    /// Numbers `body`, writes it to disk and keeps it until acknowledged; returns the message
    /// to send now.
    pub fn push(&mut self, at_ms: u64, body: Body) -> Result<AgentMsg, SpoolError> {
        let m = AgentMsg {
            seq: self.next_seq,
            at_ms,
            body,
        };
        self.next_seq += 1;
        let mut line = encode(&m);
        line.push(b'\n');
        let path = self.dir.join("spool.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(&line).map_err(io(&path))?;
        self.bytes += line.len();
        self.pending.push_back((m.clone(), line.len()));
        self.bound();
        Ok(m)
    }

    /// Keeps the spool within `max_bytes`: the oldest replaceable message goes first.
    fn bound(&mut self) {
        while self.bytes > self.max_bytes && self.pending.len() > 1 {
            let at = self
                .pending
                .iter()
                .position(|(m, _)| m.body.is_replaceable());
            let gone = match at {
                Some(i) => {
                    self.dropped_replaceable += 1;
                    self.pending.remove(i)
                }
                None => {
                    self.dropped_other += 1;
                    self.pending.pop_front()
                }
            };
            if let Some((_, n)) = gone {
                self.bytes -= n;
                self.dead_lines += 1;
            }
        }
    }

    /// The hub stored everything up to `seq`: forget it (on disk too).
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq;
        while self.pending.front().is_some_and(|(m, _)| m.seq <= seq) {
            if let Some((_, n)) = self.pending.pop_front() {
                self.bytes -= n;
                self.dead_lines += 1;
            }
        }
        let path = self.dir.join("acked");
        let tmp = self.dir.join("acked.tmp");
        std::fs::write(&tmp, seq.to_string()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if self.dead_lines > 1000 && self.dead_lines > self.pending.len() {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with only what is still pending.
    fn compact(&mut self) -> Result<(), SpoolError> {
        let path = self.dir.join("spool.jsonl");
        let tmp = self.dir.join("spool.jsonl.tmp");
        let mut text = Vec::with_capacity(self.bytes);
        for (m, _) in &self.pending {
            text.extend_from_slice(&encode(m));
            text.push(b'\n');
        }
        std::fs::write(&tmp, &text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        self.dead_lines = 0;
        Ok(())
    }

    /// What to (re)send after connecting, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &AgentMsg> {
        self.pending.iter().map(|(m, _)| m)
    }

    /// The last acknowledged sequence number.
    pub fn acked(&self) -> u64 {
        self.acked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AgentState, MeterSample};

    fn state() -> Body {
        Body::State {
            state: AgentState::InCall,
        }
    }

    #[test]
    fn keeps_until_acked_across_a_restart_and_numbers_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..5 {
            s.push(i, state()).unwrap();
        }
        s.ack(2).unwrap();
        drop(s);
        // The agent restarts: 3, 4, 5 are still to send, and numbering goes on at 6.
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        let seqs: Vec<u64> = s.pending().map(|m| m.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(s.push(9, state()).unwrap().seq, 6);
        s.ack(6).unwrap();
        assert_eq!(s.pending().count(), 0);
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.pending().count(), 0);
        assert_eq!(s.acked(), 6);
    }

    #[test]
    fn over_its_bound_meters_go_first_then_counted_others() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 2000).unwrap();
        let help = |i: u64| Body::HelpRequest {
            call: None,
            text: format!("help {i}"),
        };
        for i in 0..10 {
            s.push(i, help(i)).unwrap();
            s.push(i, Body::Meters(MeterSample::default())).unwrap();
        }
        assert!(s.dropped_replaceable > 0);
        assert_eq!(s.dropped_other, 0, "help requests kept while meters can go");
        assert!(
            s.pending()
                .filter(|m| matches!(m.body, Body::HelpRequest { .. }))
                .count()
                == 10
        );
        for i in 10..60 {
            s.push(i, help(i)).unwrap();
        }
        assert!(s.dropped_other > 0, "bounded even with nothing replaceable");
        assert!(s.bytes <= 2000);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.push(1, state()).unwrap();
        drop(s);
        let path = dir.path().join("spool.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"seq\":2,\"at_").unwrap();
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.pending().count(), 1);
        assert_eq!(s.unreadable_lines, 1);
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let e = Spool::open(&file, 1000).unwrap_err();
        assert!(e.to_string().contains("not-a-dir"), "{e}");
    }
}
