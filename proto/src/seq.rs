//! The hub's per-agent sequence check: what to do with message `seq` given what is stored.

/// The verdict on one numbered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next one: store it.
    New,
    /// Already stored (a resend after a reconnect): acknowledge again, store nothing.
    Duplicate,
    /// A gap: messages `expected..seq` never came. The agent's spool resends in order, so
    /// this is a broken client; the connection is closed with the reason.
    Gap { expected: u64 },
}

/// The last sequence number stored for one agent (0: none yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqCheck {
    pub last: u64,
}

impl SeqCheck {
    pub fn new(last: u64) -> Self {
        Self { last }
    }

    /// Judges `seq`; a `New` one becomes the last stored.
    pub fn judge(&mut self, seq: u64) -> Verdict {
        if seq <= self.last {
            Verdict::Duplicate
        } else if seq == self.last + 1 {
            self.last = seq;
            Verdict::New
        } else {
            Verdict::Gap {
                expected: self.last + 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_duplicate_and_gap() {
        let mut s = SeqCheck::default();
        assert_eq!(s.judge(1), Verdict::New);
        assert_eq!(s.judge(2), Verdict::New);
        assert_eq!(s.judge(2), Verdict::Duplicate);
        assert_eq!(s.judge(1), Verdict::Duplicate);
        assert_eq!(s.judge(4), Verdict::Gap { expected: 3 });
        assert_eq!(s.last, 2, "a gap stores nothing");
        assert_eq!(s.judge(3), Verdict::New);
    }
}
