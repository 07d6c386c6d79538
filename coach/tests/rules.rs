#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Every rule of the default rule book on a scripted call that breaks it and one that keeps it.
//! Scripts are time-stamped events (10 ms frames, transcript segments, call events), the same
//! input the engine gets from `analyze` and live.

use callcoach_coach::{
    Coach, Event, Frame, Party, RuleBook, TranscriptSegment, Warning, WarningState,
};

/// What one party does over a span of the call.
#[derive(Clone, Copy)]
struct Talk {
    party: Party,
    from_ms: u64,
    to_ms: u64,
    /// Syllables per second (nuclei) while talking.
    syl_per_s: f64,
    /// Short-term loudness while talking, LUFS.
    lufs: f32,
    /// Frame level while talking / silent, dBFS.
    speech_db: f32,
}

fn talk(party: Party, from_s: f64, to_s: f64) -> Talk {
    Talk {
        party,
        from_ms: (from_s * 1000.0) as u64,
        to_ms: (to_s * 1000.0) as u64,
        syl_per_s: 2.0,
        lufs: -22.0,
        speech_db: -25.0,
    }
}

struct Script {
    end_ms: u64,
    talks: Vec<Talk>,
    events: Vec<Event>,
    noise_db: f32,
}

impl Script {
    fn new(end_s: f64) -> Self {
        Self {
            end_ms: (end_s * 1000.0) as u64,
            talks: Vec::new(),
            events: Vec::new(),
            noise_db: -70.0,
        }
    }
    fn talk(mut self, t: Talk) -> Self {
        self.talks.push(t);
        self
    }
    fn say(mut self, party: Party, from_s: f64, to_s: f64, text: &str) -> Self {
        self.talks.push(talk(party, from_s, to_s));
        self.events.push(Event::Transcript(TranscriptSegment {
            party,
            start_ms: (from_s * 1000.0) as u64,
            end_ms: (to_s * 1000.0) as u64,
            text: text.into(),
        }));
        self
    }
    fn event(mut self, e: Event) -> Self {
        self.events.push(e);
        self
    }
    /// All events in time order: frames for both parties every 10 ms, others at their time.
    fn events(&self) -> Vec<Event> {
        let mut out = vec![Event::CallStart { t_ms: 0 }];
        let mut others = self.events.clone();
        others.sort_by_key(Event::time_ms);
        let mut others = others.into_iter().peekable();
        for t in (0..self.end_ms).step_by(10) {
            while others.peek().is_some_and(|e| e.time_ms() <= t) {
                out.extend(others.next());
            }
            for party in [Party::Agent, Party::Caller] {
                let now = self
                    .talks
                    .iter()
                    .find(|k| k.party == party && k.from_ms <= t && t < k.to_ms);
                let nucleus = now.is_some_and(|k| {
                    let period = (1000.0 / k.syl_per_s) as u64;
                    (t - k.from_ms) % period.max(10) < 10
                });
                out.push(Event::Frame(Frame {
                    party,
                    t_ms: t,
                    voiced: now.is_some(),
                    utterance: now.is_some(),
                    nucleus,
                    energy_db: now.map_or(self.noise_db, |k| k.speech_db),
                    short_term_lufs: (t % 100 == 90).then(|| now.map_or(-70.0, |k| k.lufs)),
                }));
            }
        }
        out.extend(others);
        if !out.iter().any(|e| matches!(e, Event::CallEnd { .. })) {
            out.push(Event::CallEnd {
                t_ms: self.end_ms,
                hung_up_by: None,
            });
        }
        out
    }
    fn run_with(&self, book: RuleBook, agent: Option<&str>) -> Vec<Warning> {
        let mut coach = Coach::new(book, agent);
        let mut out = Vec::new();
        for e in self.events() {
            coach.push(&e, &mut out);
        }
        out
    }
    fn run(&self) -> Vec<Warning> {
        self.run_with(RuleBook::default_book(), None)
    }
}

fn raised<'a>(w: &'a [Warning], rule: &str) -> Vec<&'a Warning> {
    w.iter()
        .filter(|w| w.rule == rule && w.state == WarningState::Raised)
        .collect()
}

/// A well-behaved call: greeting, a conversation at 2 syllables/s (120/min) whose transcripts
/// have as many characters as the audio has nuclei, a proper closing.
fn good_call() -> Script {
    Script::new(44.0)
        .say(
            Party::Agent,
            0.5,
            8.0,
            "您好，示例公司，请问有什么可以帮您？",
        )
        .say(Party::Caller, 8.5, 13.0, "我想查一下我的账单")
        .say(
            Party::Agent,
            13.5,
            27.0,
            "好的，请您稍等，我帮您查询一下，您的账单已经发到您的邮箱了",
        )
        .say(Party::Caller, 27.5, 29.5, "好的谢谢")
        .say(Party::Agent, 30.0, 36.0, "请问还有其他可以帮您的吗？")
        .say(Party::Caller, 36.5, 38.0, "没有了")
        .say(Party::Agent, 38.5, 42.5, "感谢您的来电，再见！")
}

#[test]
fn a_compliant_call_raises_nothing() {
    let w = good_call().run();
    let shown: Vec<_> = w
        .iter()
        .filter(|w| w.state == WarningState::Raised && w.hidden.is_none())
        .collect();
    assert!(shown.is_empty(), "{shown:#?}");
}

#[test]
fn rate_too_fast_and_too_slow_with_exceptions_and_per_agent_band() {
    let fast = Script::new(30.0).talk(Talk {
        syl_per_s: 3.5,
        ..talk(Party::Agent, 0.5, 25.0)
    });
    let w = fast.run();
    let r = raised(&w, "rate");
    assert_eq!(r.len(), 1, "{w:#?}");
    assert!(r[0].message_zh.contains("语速过快"));
    assert!(
        (200.0..220.0).contains(&r[0].evidence.measured.unwrap()),
        "{:?}",
        r[0].evidence
    );
    // Raised only after the window has 5 s of speech and 5 s sustained out of band.
    assert!(
        r[0].t_ms >= 10_000 && r[0].t_ms <= 11_000,
        "raised at {}",
        r[0].t_ms
    );
    assert!(w
        .iter()
        .any(|x| x.rule == "rate" && x.state == WarningState::Cleared));
    let slow = Script::new(30.0).talk(Talk {
        syl_per_s: 1.2,
        ..talk(Party::Agent, 0.5, 25.0)
    });
    assert!(raised(&slow.run(), "rate")[0]
        .message_zh
        .contains("语速过慢"));
    let ok = Script::new(30.0).talk(Talk {
        syl_per_s: 2.0,
        ..talk(Party::Agent, 0.5, 25.0)
    });
    assert!(raised(&ok.run(), "rate").is_empty());
    // The caller asked the agent to speak faster: slow speech is excused from then on.
    let asked = Script::new(30.0)
        .say(Party::Caller, 0.1, 0.4, "你说快一点")
        .talk(Talk {
            syl_per_s: 1.2,
            ..talk(Party::Agent, 0.5, 25.0)
        });
    assert!(raised(&asked.run(), "rate").is_empty());
    // A per-agent band: agent A7 may speak up to 230 chars/min.
    let mut book = RuleBook::default_book();
    book.rules.rate.agents.insert(
        "A7".into(),
        callcoach_coach::rulebook::RateBand {
            min_cpm: 90.0,
            max_cpm: 230.0,
        },
    );
    assert!(raised(&fast.run_with(book.clone(), Some("A7")), "rate").is_empty());
    assert_eq!(raised(&fast.run_with(book, Some("B1")), "rate").len(), 1);
}

#[test]
fn volume_too_quiet_and_too_loud() {
    let quiet = Script::new(20.0).talk(Talk {
        lufs: -36.0,
        ..talk(Party::Agent, 0.5, 15.0)
    });
    let w = quiet.run();
    assert!(
        raised(&w, "volume")[0].message_zh.contains("音量过小"),
        "{w:#?}"
    );
    let loud = Script::new(20.0).talk(Talk {
        lufs: -10.0,
        ..talk(Party::Agent, 0.5, 15.0)
    });
    assert!(raised(&loud.run(), "volume")[0]
        .message_zh
        .contains("音量过大"));
    let fine = Script::new(20.0).talk(Talk {
        lufs: -20.0,
        ..talk(Party::Agent, 0.5, 15.0)
    });
    assert!(raised(&fine.run(), "volume").is_empty());
}

#[test]
fn sudden_loudness_jump() {
    let base = Script::new(10.0).talk(talk(Party::Agent, 0.5, 9.0));
    let jump = base.event(Event::LoudnessJump {
        party: Party::Agent,
        t_ms: 5000,
        onset_ms: 5000,
        rise_db: 9.5,
    });
    let w = jump.run();
    let r = raised(&w, "gradual");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].evidence.measured, Some(9.5f32 as f64));
    // It flashes and clears by itself.
    assert!(w
        .iter()
        .any(|x| x.rule == "gradual" && x.state == WarningState::Cleared && x.t_ms == 8000));
    let caller_jump =
        Script::new(10.0)
            .talk(talk(Party::Agent, 0.5, 9.0))
            .event(Event::LoudnessJump {
                party: Party::Caller,
                t_ms: 5000,
                onset_ms: 5000,
                rise_db: 12.0,
            });
    assert!(
        raised(&caller_jump.run(), "gradual").is_empty(),
        "only the agent's voice is coached"
    );
}

#[test]
fn silent_caller_protocol_step_by_step() {
    // Greeting, then the agent follows every prompt: 2 repeats, closing line, then may hang up.
    let s = Script::new(40.0)
        .talk(talk(Party::Agent, 0.5, 3.0))
        .talk(talk(Party::Agent, 6.5, 9.0)) // repeat 1/2 after the prompt at 6.0
        .talk(talk(Party::Agent, 14.5, 17.0)) // repeat 2/2 after the prompt at 14.0
        .talk(talk(Party::Agent, 22.5, 26.0)) // closing line after the prompt at 22.0
        .event(Event::CallEnd {
            t_ms: 35_000,
            hung_up_by: Some(Party::Agent),
        });
    let w = s.run();
    let steps: Vec<&str> = w
        .iter()
        .filter(|x| x.rule == "silent_caller" && x.state != WarningState::Cleared)
        .map(|x| x.message_zh.as_str())
        .collect();
    assert_eq!(steps.len(), 4, "{steps:#?}");
    assert!(
        steps[0].contains("1/2")
            && steps[1].contains("2/2")
            && steps[2].contains("结束语")
            && steps[3].contains("可以挂机")
    );
    assert!(
        raised(&w, "closing").is_empty(),
        "hanging up is allowed after the protocol: {w:#?}"
    );
    assert!(raised(&w, "dead_air").is_empty());
    // Hanging up after only the first prompt is a violation.
    let early = Script::new(12.0)
        .talk(talk(Party::Agent, 0.5, 3.0))
        .event(Event::CallEnd {
            t_ms: 8000,
            hung_up_by: Some(Party::Agent),
        });
    let w = early.run();
    assert!(
        w.iter()
            .any(|x| x.rule == "silent_caller" && x.message_zh.contains("未完成")),
        "{w:#?}"
    );
    // A caller who speaks ends the protocol.
    let speaks = Script::new(20.0)
        .talk(talk(Party::Agent, 0.5, 3.0))
        .talk(talk(Party::Caller, 4.0, 8.0));
    assert!(raised(&speaks.run(), "silent_caller").is_empty());
}

#[test]
fn weak_and_noisy_caller() {
    let weak = Script::new(20.0)
        .talk(talk(Party::Agent, 0.2, 2.0))
        .talk(Talk {
            lufs: -50.0,
            ..talk(Party::Caller, 2.5, 18.0)
        });
    assert_eq!(raised(&weak.run(), "weak_caller").len(), 1);
    let fine = Script::new(20.0)
        .talk(talk(Party::Agent, 0.2, 2.0))
        .talk(talk(Party::Caller, 2.5, 18.0));
    assert!(raised(&fine.run(), "weak_caller").is_empty());
    let mut noisy = Script::new(30.0).talk(talk(Party::Agent, 0.2, 2.0));
    for k in 0..6 {
        let a = 3.0 + k as f64 * 4.0;
        noisy = noisy.talk(Talk {
            speech_db: -30.0,
            ..talk(Party::Caller, a, a + 3.0)
        });
    }
    noisy.noise_db = -34.0;
    assert_eq!(raised(&noisy.run(), "noisy_caller").len(), 1);
    noisy.noise_db = -70.0;
    assert!(raised(&noisy.run(), "noisy_caller").is_empty());
}

#[test]
fn hold_interaction_alarms_and_thanks() {
    let hold = |agent_checks_in: bool, thanks: bool, len_s: f64| {
        let mut s = Script::new(len_s + 30.0)
            .say(
                Party::Agent,
                0.5,
                3.0,
                "您好，示例公司，请问有什么可以帮您？",
            )
            .say(Party::Caller, 3.5, 6.0, "帮我查一下")
            .event(Event::HoldStart { t_ms: 7000 })
            .event(Event::HoldEnd {
                t_ms: 7000 + (len_s * 1000.0) as u64,
            });
        if agent_checks_in {
            let mut t = 30.0;
            while t < len_s {
                s = s.say(Party::Agent, t, t + 2.0, "正在为您查询，请您稍等");
                t += 25.0;
            }
        }
        let back = 7.0 + len_s + 0.5;
        let text = if thanks {
            "感谢您的耐心等待，已经查到了"
        } else {
            "已经查到了"
        };
        s.say(Party::Agent, back, back + 3.0, text)
    };
    let w = hold(false, true, 70.0).run();
    assert!(
        raised(&w, "hold")
            .iter()
            .any(|x| x.message_zh.contains("交流")),
        "{w:#?}"
    );
    assert!(raised(&w, "hold")
        .iter()
        .any(|x| x.message_zh.contains("60")));
    let w = hold(true, true, 50.0).run();
    assert!(raised(&w, "hold").is_empty(), "{w:#?}");
    let w = hold(true, true, 200.0).run();
    assert!(
        raised(&w, "hold")
            .iter()
            .any(|x| x.message_zh.contains("180")
                && x.severity == callcoach_coach::Severity::Critical)
    );
    let w = hold(true, false, 50.0).run();
    assert!(
        raised(&w, "hold")
            .iter()
            .any(|x| x.message_zh.contains("感谢")),
        "{w:#?}"
    );
}

#[test]
fn dead_air_mid_call_but_not_on_hold() {
    let s = Script::new(20.0)
        .talk(talk(Party::Agent, 0.5, 3.0))
        .talk(talk(Party::Caller, 3.5, 6.0))
        .talk(talk(Party::Agent, 16.0, 18.0));
    let w = s.run();
    let r = raised(&w, "dead_air");
    assert_eq!(r.len(), 1, "{w:#?}");
    assert_eq!(r[0].start_ms, 6000);
    assert!(w
        .iter()
        .any(|x| x.rule == "dead_air" && x.state == WarningState::Cleared && x.t_ms == 16_000));
    let short = Script::new(20.0)
        .talk(talk(Party::Agent, 0.5, 3.0))
        .talk(talk(Party::Caller, 3.5, 6.0))
        .talk(talk(Party::Agent, 12.0, 18.0));
    assert!(raised(&short.run(), "dead_air").is_empty());
    let held = s
        .event(Event::HoldStart { t_ms: 6500 })
        .event(Event::HoldEnd { t_ms: 15_500 });
    assert!(raised(&held.run(), "dead_air").is_empty());
}

#[test]
fn agent_interrupting_the_caller() {
    // Judged on the frames: the agent starts at 5 s while the caller speaks until 6 s.
    let w = Script::new(10.0)
        .talk(talk(Party::Caller, 0.5, 6.0))
        .talk(talk(Party::Agent, 5.0, 8.0))
        .run();
    let r = raised(&w, "interrupt");
    assert_eq!(r.len(), 1, "{w:#?}");
    assert_eq!(
        (r[0].start_ms, r[0].t_ms),
        (5000, 5490),
        "when the overlap is 0.5 s old"
    );
    // 0.3 s of overlap is not an interruption.
    let short = Script::new(10.0)
        .talk(talk(Party::Caller, 0.5, 5.3))
        .talk(talk(Party::Agent, 5.0, 8.0));
    assert!(raised(&short.run(), "interrupt").is_empty());
    // The caller talking over the agent is not the agent interrupting.
    let caller_second = Script::new(10.0)
        .talk(talk(Party::Agent, 0.5, 6.0))
        .talk(talk(Party::Caller, 5.0, 8.0));
    assert!(raised(&caller_second.run(), "interrupt").is_empty());
}

#[test]
fn interruption_from_events_alone() {
    // An already-analysed call (events, no frames): judged on the talk-over event.
    let events = |end_ms: u64, second: Party| {
        let mut coach = Coach::new(RuleBook::default_book(), None);
        let mut out = Vec::new();
        for e in [
            Event::CallStart { t_ms: 0 },
            Event::TalkOver {
                start_ms: 5000,
                end_ms,
                second,
            },
            Event::CallEnd {
                t_ms: 10_000,
                hung_up_by: None,
            },
        ] {
            coach.push(&e, &mut out);
        }
        out
    };
    assert_eq!(raised(&events(6000, Party::Agent), "interrupt").len(), 1);
    assert!(raised(&events(5300, Party::Agent), "interrupt").is_empty());
    assert!(raised(&events(6000, Party::Caller), "interrupt").is_empty());
}

#[test]
fn greeting_content_timing_and_holidays() {
    let bad = Script::new(20.0)
        .say(Party::Agent, 0.5, 3.0, "喂，你好")
        .say(Party::Caller, 3.5, 8.0, "我想问一下");
    let w = bad.run();
    let g = raised(&w, "greeting");
    assert_eq!(g.len(), 1);
    assert!(
        g[0].message_zh.contains("示例公司") && g[0].message_zh.contains("请问有什么可以帮您"),
        "{}",
        g[0].message_zh
    );
    // Recognition error (帮→班) within the pinyin tolerance still counts.
    let asr = Script::new(20.0)
        .say(Party::Agent, 0.5, 3.0, "您好示例公司请问有什么可以班您")
        .say(Party::Caller, 3.5, 8.0, "我想问一下");
    assert!(raised(&asr.run(), "greeting").is_empty());
    let silent = Script::new(20.0)
        .talk(talk(Party::Caller, 1.0, 3.0))
        .talk(talk(Party::Agent, 12.0, 15.0));
    assert!(raised(&silent.run(), "greeting")[0]
        .message_zh
        .contains("未及时"));
    let mut book = RuleBook::default_book();
    book.settings.call_date = "2026-10-01".into();
    let w = good_call().run_with(book.clone(), None);
    assert!(raised(&w, "greeting")[0].message_zh.contains("节日问候"));
    let festive = Script::new(20.0).say(
        Party::Agent,
        0.5,
        4.0,
        "节日快乐！您好，示例公司，请问有什么可以帮您？",
    );
    assert!(raised(&festive.run_with(book, None), "greeting").is_empty());
}

#[test]
fn forbidden_phrases_by_category_and_polite_score() {
    let s = good_call().say(
        Party::Agent,
        20.0,
        22.0,
        "我刚才已经说过了，您自己去百度一下",
    );
    let w = s.run();
    let f = raised(&w, "forbidden");
    assert_eq!(f.len(), 2, "{f:#?}");
    assert!(f.iter().any(|x| x.message_zh.contains("impatience")));
    assert!(f
        .iter()
        .any(|x| x.evidence.heard.as_deref() == Some("您自己去百度一下")));
    let t = good_call().say(Party::Agent, 20.0, 22.0, "我剛才已經說過了"); // traditional characters
    assert_eq!(raised(&t.run(), "forbidden").len(), 1);
    let mut coach = Coach::new(RuleBook::default_book(), None);
    let mut out = Vec::new();
    for e in good_call().events() {
        coach.push(&e, &mut out);
    }
    let polite = coach
        .scores()
        .into_iter()
        .find(|s| s.rule == "polite")
        .unwrap();
    assert!(polite.score >= 60, "{polite:?}");
}

#[test]
fn closing_and_who_hangs_up_first() {
    let w = good_call()
        .event(Event::CallEnd {
            t_ms: 43_000,
            hung_up_by: Some(Party::Caller),
        })
        .run();
    assert!(raised(&w, "closing").is_empty());
    let abrupt = Script::new(20.0)
        .say(
            Party::Agent,
            0.5,
            4.0,
            "您好，示例公司，请问有什么可以帮您？",
        )
        .say(Party::Caller, 4.5, 8.0, "查账单")
        .say(Party::Agent, 8.5, 12.0, "已经发给您了");
    let w = abrupt.run();
    assert!(raised(&w, "closing")[0].message_zh.contains("再见"));
    let w = good_call()
        .event(Event::CallEnd {
            t_ms: 43_000,
            hung_up_by: Some(Party::Agent),
        })
        .run();
    assert!(raised(&w, "closing")
        .iter()
        .any(|x| x.message_zh.contains("先挂机")));
}

#[test]
fn abusive_caller_reminders_then_polite_end() {
    let mut s = Script::new(40.0).say(
        Party::Agent,
        0.5,
        3.0,
        "您好，示例公司，请问有什么可以帮您？",
    );
    for k in 0..4 {
        let t = 4.0 + k as f64 * 6.0;
        s = s.say(Party::Caller, t, t + 2.0, "你们这些混蛋").say(
            Party::Agent,
            t + 2.5,
            t + 5.0,
            "请您文明用语",
        );
    }
    let w = s
        .event(Event::CallEnd {
            t_ms: 30_000,
            hung_up_by: Some(Party::Agent),
        })
        .run();
    let a = raised(&w, "abusive");
    assert_eq!(a.len(), 4);
    assert!(a[0].message_zh.contains("1/3") && a[2].message_zh.contains("3/3"));
    assert!(a[3].message_zh.contains("结束通话"));
    assert!(
        !raised(&w, "closing")
            .iter()
            .any(|x| x.message_zh.contains("先挂机")),
        "a polite end is allowed"
    );
    assert!(raised(&good_call().run(), "abusive").is_empty());
}

#[test]
fn alert_fatigue_cooldown_cap_and_trial_mode() {
    // Trial mode: logged, not shown.
    let mut book = RuleBook::default_book();
    book.rules.dead_air.mode = callcoach_coach::rulebook::Mode::Log;
    let s = Script::new(30.0)
        .talk(talk(Party::Agent, 0.5, 3.0))
        .talk(talk(Party::Caller, 3.5, 6.0))
        .talk(talk(Party::Agent, 16.0, 18.0));
    let w = s.run_with(book, None);
    assert_eq!(
        raised(&w, "dead_air")[0].hidden,
        Some(callcoach_coach::warning::Hidden::LogOnly)
    );
    // Cap: many jumps in one minute; only max_warnings_per_minute are shown.
    let mut s = Script::new(60.0).talk(talk(Party::Agent, 0.5, 59.0));
    for k in 0..10 {
        s = s.event(Event::LoudnessJump {
            party: Party::Agent,
            t_ms: 2000 + k * 5000,
            onset_ms: 2000 + k * 5000,
            rise_db: 10.0,
        });
    }
    let mut book = RuleBook::default_book();
    book.rules.gradual.cooldown_s = 0.0;
    let w = s.run_with(book, None);
    let shown = raised(&w, "gradual")
        .iter()
        .filter(|x| x.hidden.is_none())
        .count();
    assert_eq!(shown, 4, "{w:#?}");
    assert_eq!(
        raised(&w, "gradual").len(),
        10,
        "capped warnings are still in the report"
    );
    // A critical warning is never hidden by the cap: forbidden phrases after the cap is full.
    let mut s = Script::new(60.0).talk(talk(Party::Agent, 0.5, 59.0));
    for k in 0..6 {
        s = s.event(Event::LoudnessJump {
            party: Party::Agent,
            t_ms: 2000 + k * 1000,
            onset_ms: 2000 + k * 1000,
            rise_db: 10.0,
        });
    }
    let s = s.say(Party::Agent, 20.0, 22.0, "您看错了").say(
        Party::Agent,
        30.0,
        32.0,
        "我们公司的规定就这样",
    );
    let mut book = RuleBook::default_book();
    book.rules.gradual.cooldown_s = 0.0;
    let w = s.run_with(book, None);
    assert!(
        raised(&w, "gradual").iter().any(|x| x.hidden.is_some()),
        "the cap is full: {w:#?}"
    );
    let forbidden = raised(&w, "forbidden");
    assert_eq!(forbidden.len(), 2, "{w:#?}");
    assert!(
        forbidden.iter().all(|x| x.hidden.is_none()),
        "{forbidden:#?}"
    );
    // Cooldown: a dead-air warning cannot come back within 10 s of clearing.
    let s = Script::new(31.0)
        .talk(talk(Party::Agent, 0.5, 3.0))
        .talk(talk(Party::Caller, 3.5, 6.0))
        .talk(talk(Party::Agent, 15.0, 15.5))
        .talk(talk(Party::Agent, 24.0, 30.0));
    assert_eq!(raised(&s.run(), "dead_air").len(), 1);
}

#[test]
fn same_events_same_warnings_and_ids_are_stable() {
    let a = good_call().say(Party::Agent, 20.0, 22.0, "不清楚").run();
    let b = good_call().say(Party::Agent, 20.0, 22.0, "不清楚").run();
    assert_eq!(a, b);
    assert!(a.iter().any(|w| w.id == "forbidden#1"));
}

#[test]
fn any_rule_can_be_excused_by_caller_phrases() {
    let s = || {
        Script::new(20.0)
            .talk(talk(Party::Agent, 0.5, 3.0))
            .say(Party::Caller, 3.5, 6.0, "你等我一下，我找找")
            .talk(talk(Party::Agent, 16.0, 18.0))
    };
    assert_eq!(raised(&s().run(), "dead_air").len(), 1);
    let mut book = RuleBook::default_book();
    book.rules.dead_air.excused_by = vec!["等我一下".into()];
    assert!(raised(&s().run_with(book, None), "dead_air").is_empty());
}

#[test]
fn the_call_flow_checklist_ticks_itself_from_the_agents_words() {
    let book = RuleBook::default_book();
    let company = book.settings.company.clone();
    let run = |s: &Script| {
        let mut coach = Coach::new(book.clone(), None);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for e in s.events() {
            coach.push(&e, &mut out);
            seen.push(coach.checklist().map(|(_, d)| d));
        }
        (coach.checklist(), seen)
    };
    let s = Script::new(40.0)
        .say(
            Party::Agent,
            0.5,
            3.0,
            &format!("您好，{company}，请问有什么可以帮您？"),
        )
        .say(Party::Caller, 3.5, 8.0, "我想查一下我的话费")
        .say(
            Party::Agent,
            8.5,
            11.0,
            "好的，您是想查询本月的话费，对吗？",
        )
        .say(Party::Caller, 11.5, 13.0, "对")
        .say(Party::Agent, 30.0, 33.0, "请问还有其他可以帮您的吗？")
        .say(Party::Caller, 33.5, 34.0, "没有了")
        .say(Party::Agent, 34.5, 36.0, "感谢您的来电，再见！");
    let (done, seen) = run(&s);
    assert_eq!(
        done.map(|(step, d)| (step.label(), d)),
        [
            ("问候", true),
            ("确认需求", true),
            ("询问其他", true),
            ("道别", true)
        ]
    );
    // In order, as the words were said: nothing ticked before the greeting was heard.
    assert_eq!(seen[0], [false; 4]);
    assert!(seen.contains(&[true, true, false, false]));
    // A greeting without the company name and no confirmation: those stay unticked.
    let s = Script::new(20.0)
        .say(Party::Agent, 0.5, 3.0, "您好，请问有什么可以帮您？")
        .say(Party::Caller, 3.5, 8.0, "我想查一下我的话费")
        .say(Party::Agent, 8.5, 11.0, "好的，马上帮您查，再见");
    let (done, _) = run(&s);
    assert_eq!(done.map(|(_, d)| d), [false, false, false, true]);
}
