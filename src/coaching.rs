//! Wiring: the audio feature path's output, plus transcript segments, into the coach.

use std::collections::VecDeque;

use callcoach_audio::call::{CallEvent, CallOutput, Party as AudioParty};
use callcoach_coach::transcript::Transcript;
use callcoach_coach::{Ahead, Coach, Event, Frame, Party, Warning};

fn party(p: AudioParty) -> Party {
    match p {
        AudioParty::Agent => Party::Agent,
        AudioParty::Caller => Party::Caller,
    }
}

/// Feeds a [`Coach`] from the feature path, inserting transcript segments (at their end) and
/// call events from files at their time.
#[derive(Debug)]
pub struct CoachFeed {
    pub coach: Coach,
    pending: VecDeque<Event>,
    out: Vec<Warning>,
    /// How many of `out` were handed out by [`Self::take_new`].
    seen: usize,
    last_ms: u64,
}

impl CoachFeed {
    pub fn new(coach: Coach, transcript: Transcript) -> Self {
        let mut coach = coach;
        let mut out = Vec::new();
        coach.push(&Event::CallStart { t_ms: 0 }, &mut out);
        let mut pending: Vec<Event> = transcript
            .segments
            .into_iter()
            .map(Event::Transcript)
            .chain(transcript.events)
            .collect();
        pending.sort_by_key(Event::time_ms);
        Self {
            coach,
            pending: pending.into(),
            out,
            seen: 0,
            last_ms: 0,
        }
    }

    fn push(&mut self, e: Event) {
        let t = e.time_ms();
        while self.pending.front().is_some_and(|p| p.time_ms() <= t) {
            if let Some(p) = self.pending.pop_front() {
                self.coach.push(&p, &mut self.out);
            }
        }
        self.last_ms = self.last_ms.max(t);
        self.coach.push(&e, &mut self.out);
    }

    /// One output of the feature path.
    pub fn on(&mut self, o: &CallOutput) {
        match *o {
            CallOutput::Ahead(a) => {
                let t_ms = a.index * 10;
                // The fast path may not run past a call event the coach has not seen yet (a
                // hold or the end): the confirmed frames will reach it first.
                let blocked = self.pending.iter().any(|p| {
                    p.time_ms() <= t_ms && !matches!(p, Event::Transcript(_) | Event::Frame(_))
                });
                if !blocked {
                    self.coach.ahead(
                        &Ahead {
                            t_ms,
                            voiced: a.voiced,
                        },
                        &mut self.out,
                    );
                }
            }
            CallOutput::Frame(p, f) => self.push(Event::Frame(Frame {
                party: party(p),
                t_ms: f.index * 10,
                voiced: f.voiced,
                utterance: f.utterance,
                nucleus: f.nucleus,
                energy_db: f.energy_db,
                short_term_lufs: f.short_term_lufs,
            })),
            // Decided on arriving frames, ahead of the confirmed ones: straight to the coach,
            // which handles it at its own time without moving its clock (emptying the queue of
            // call events up to the jump's time would run them 0.68 s early).
            CallOutput::Event(CallEvent::Jump(p, j)) => self.coach.push(
                &Event::LoudnessJump {
                    party: party(p),
                    t_ms: j.confirmed_index * 10,
                    onset_ms: j.index * 10,
                    rise_db: j.level_db - j.baseline_db,
                },
                &mut self.out,
            ),
            CallOutput::Event(CallEvent::TalkOver { span, second }) => self.push(Event::TalkOver {
                start_ms: span.start * 10,
                end_ms: span.end * 10,
                second: party(second),
            }),
            CallOutput::Event(_) => {}
        }
    }

    /// A call event from outside (telephony, hotkey) at call time `e.time_ms()`: applied when
    /// the analysed frames reach that time, so it lands in order.
    pub fn control(&mut self, e: Event) {
        let t = e.time_ms();
        // A transcript that ends when the call ends was spoken before the hang-up: it goes
        // before events of the same time (as `analyze` orders them), so the coach hears it.
        let transcript = matches!(e, Event::Transcript(_));
        let at = self
            .pending
            .iter()
            .position(|p| p.time_ms() > t || (transcript && p.time_ms() == t))
            .unwrap_or(self.pending.len());
        self.pending.insert(at, e);
    }

    /// Warning state changes since the last call (live display).
    pub fn take_new(&mut self) -> &[Warning] {
        let from = self.seen;
        self.seen = self.out.len();
        &self.out[from..]
    }

    /// How many warning state changes [`Self::take_new`] has handed out.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// Ends the call at `end_ms`; returns every warning state change.
    pub fn finish(mut self, end_ms: u64) -> (Coach, Vec<Warning>) {
        while let Some(p) = self.pending.pop_front() {
            self.coach.push(&p, &mut self.out);
        }
        self.coach.finish(end_ms.max(self.last_ms), &mut self.out);
        (self.coach, self.out)
    }
}
