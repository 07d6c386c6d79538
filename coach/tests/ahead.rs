#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! The fast path: raw per-frame decisions arriving 0.68 s ahead of the confirmed frames, as the
//! feature path delivers them. "Still silent" is final and fires on the frame where the
//! silence reaches its threshold (8 s in the default rule book); "both talking" fires on the raw overlap and is confirmed or
//! withdrawn by the confirmed frames.

use callcoach_coach::{Ahead, Coach, Event, Frame, Party, RuleBook, Warning, WarningState};

const LEAD_MS: u64 = 680;

/// Who is voiced at `t_ms`, per party, from (from_s, to_s) spans.
fn voiced(spans: &[(f64, f64)], t_ms: u64) -> bool {
    spans
        .iter()
        .any(|&(a, b)| (a * 1000.0) as u64 <= t_ms && t_ms < (b * 1000.0) as u64)
}

/// Runs a call of `end_s`: the raw decisions (`raw`, agent and caller spans) arrive `LEAD_MS`
/// before the confirmed frames (`confirmed`). Returns each warning with the arrival time of
/// the frame whose processing produced it (the wall clock of a live run).
fn run(
    end_s: f64,
    raw: [&[(f64, f64)]; 2],
    confirmed: [&[(f64, f64)]; 2],
) -> (Vec<(Warning, u64)>, Coach) {
    run_with(RuleBook::default_book(), end_s, raw, confirmed)
}

fn run_with(
    book: RuleBook,
    end_s: f64,
    raw: [&[(f64, f64)]; 2],
    confirmed: [&[(f64, f64)]; 2],
) -> (Vec<(Warning, u64)>, Coach) {
    let mut coach = Coach::new(book, None);
    let mut out = Vec::new();
    let mut got = Vec::new();
    coach.push(&Event::CallStart { t_ms: 0 }, &mut out);
    let end = (end_s * 1000.0) as u64;
    for t in (0..end + LEAD_MS).step_by(10) {
        if t < end {
            let a = Ahead {
                t_ms: t,
                voiced: [Some(voiced(raw[0], t)), Some(voiced(raw[1], t))],
            };
            coach.ahead(&a, &mut out);
        }
        if let Some(c) = t.checked_sub(LEAD_MS).filter(|c| *c < end) {
            for (i, party) in [Party::Agent, Party::Caller].into_iter().enumerate() {
                let v = voiced(confirmed[i], c);
                coach.push(
                    &Event::Frame(Frame {
                        party,
                        t_ms: c,
                        voiced: v,
                        utterance: v,
                        nucleus: false,
                        energy_db: if v { -25.0 } else { -70.0 },
                        short_term_lufs: None,
                    }),
                    &mut out,
                );
            }
        }
        got.extend(out.drain(..).map(|w| (w, t)));
    }
    coach.finish(end, &mut out);
    got.extend(out.drain(..).map(|w| (w, end + LEAD_MS)));
    (got, coach)
}

fn of<'a>(w: &'a [(Warning, u64)], rule: &str, state: WarningState) -> Vec<&'a (Warning, u64)> {
    w.iter()
        .filter(|(x, _)| x.rule == rule && x.state == state)
        .collect()
}

#[test]
fn dead_air_fires_on_the_frame_its_five_seconds_complete() {
    let agent: &[(f64, f64)] = &[(0.5, 3.0), (16.0, 18.0)];
    let caller: &[(f64, f64)] = &[(3.5, 6.0)];
    let (w, coach) = run(20.0, [agent, caller], [agent, caller]);
    let raised = of(&w, "dead_air", WarningState::Raised);
    assert_eq!(raised.len(), 1, "{w:#?}");
    let (x, arrived) = raised[0];
    assert_eq!(x.start_ms, 6000);
    // The default rule book's dead air is 8 s.
    assert_eq!(x.t_ms, 14_000, "the silence's 8 s are complete at 14 s");
    assert_eq!(
        *arrived, 14_000,
        "decided on the frame as it arrived, not 0.68 s later"
    );
    assert!(of(&w, "dead_air", WarningState::Withdrawn).is_empty());
    let score = coach
        .scores()
        .into_iter()
        .find(|s| s.rule == "dead_air")
        .unwrap();
    assert_eq!(score.violations, 1);
}

#[test]
fn raw_speech_after_the_confirmed_frames_makes_the_fast_path_wait() {
    // A raw blip at 13.8 s (removed by the confirmed stream): "still silent" cannot be decided
    // on the raw frames until the confirmed stream has passed it, so the warning is late but
    // right, never early.
    let agent: &[(f64, f64)] = &[(0.5, 3.0), (16.0, 18.0)];
    let caller: &[(f64, f64)] = &[(3.5, 6.0)];
    let blip: &[(f64, f64)] = &[(3.5, 6.0), (13.8, 13.83)];
    let (w, _) = run(20.0, [agent, blip], [agent, caller]);
    let raised = of(&w, "dead_air", WarningState::Raised);
    assert_eq!(raised.len(), 1, "{w:#?}");
    assert_eq!(raised[0].0.start_ms, 6000);
    assert!(
        raised[0].1 > 14_000 && raised[0].1 <= 13_830 + LEAD_MS,
        "{:?}",
        raised[0]
    );
}

#[test]
fn an_interruption_fires_when_the_overlap_is_half_a_second_old() {
    let caller: &[(f64, f64)] = &[(0.5, 6.0)];
    let agent: &[(f64, f64)] = &[(5.0, 8.0)];
    let (w, coach) = run(10.0, [agent, caller], [agent, caller]);
    let raised = of(&w, "interrupt", WarningState::Raised);
    assert_eq!(raised.len(), 1, "{w:#?}");
    assert_eq!(raised[0].0.start_ms, 5000);
    assert_eq!(
        raised[0].1, 5490,
        "on the frame that completes 0.5 s of overlap"
    );
    assert!(of(&w, "interrupt", WarningState::Withdrawn).is_empty());
    let score = coach
        .scores()
        .into_iter()
        .find(|s| s.rule == "interrupt")
        .unwrap();
    assert_eq!(score.violations, 1);
}

#[test]
fn a_raw_overlap_the_confirmed_stream_shortens_is_withdrawn() {
    // Raw: the agent 5.0–5.6 s over the caller; confirmed (release trim, blips): 5.0–5.35 s.
    let caller: &[(f64, f64)] = &[(0.5, 6.0)];
    let (w, coach) = run(10.0, [&[(5.0, 5.6)], caller], [&[(5.0, 5.35)], caller]);
    assert_eq!(of(&w, "interrupt", WarningState::Raised).len(), 1, "{w:#?}");
    let withdrawn = of(&w, "interrupt", WarningState::Withdrawn);
    assert_eq!(withdrawn.len(), 1, "{w:#?}");
    assert!(withdrawn[0].1 <= 5000 + 500 + 300 + LEAD_MS + 10);
    let score = coach
        .scores()
        .into_iter()
        .find(|s| s.rule == "interrupt")
        .unwrap();
    assert_eq!(
        score.violations, 0,
        "a withdrawn warning is not a violation"
    );
}

#[test]
fn a_confirmed_overlap_the_raw_frames_missed_still_warns() {
    // Raw: a gap the confirmed stream bridges; confirmed: one long overlap.
    let caller: &[(f64, f64)] = &[(0.5, 6.0)];
    let (w, _) = run(
        10.0,
        [&[(5.0, 5.3), (5.55, 5.8)], caller],
        [&[(5.0, 5.8)], caller],
    );
    let raised = of(&w, "interrupt", WarningState::Raised);
    assert_eq!(raised.len(), 1, "{w:#?}");
    assert_eq!(raised[0].0.start_ms, 5000);
    assert_eq!(
        raised[0].1,
        5490 + LEAD_MS,
        "judged on the confirmed frames"
    );
}

#[test]
fn the_caller_talking_over_the_agent_is_not_an_interruption() {
    let agent: &[(f64, f64)] = &[(0.5, 6.0)];
    let caller: &[(f64, f64)] = &[(5.0, 8.0)];
    let (w, _) = run(10.0, [agent, caller], [agent, caller]);
    assert!(
        of(&w, "interrupt", WarningState::Raised).is_empty(),
        "{w:#?}"
    );
}

#[test]
fn two_overlaps_within_the_look_ahead_are_judged_each_on_its_own() {
    // A short minimum (0.3 s): the agent talks over the caller twice within 0.68 s; the first
    // is real, the second the confirmed stream shortens. The first stays, the second goes.
    let mut book = RuleBook::default_book();
    book.rules.interrupt.min_overlap_s = 0.3;
    book.rules.interrupt.cooldown_s = 0.0;
    let caller: &[(f64, f64)] = &[(0.5, 8.0)];
    let raw: &[(f64, f64)] = &[(5.0, 5.4), (5.65, 6.0)];
    let confirmed: &[(f64, f64)] = &[(5.0, 5.4), (5.65, 5.85)];
    let (w, coach) = run_with(book, 10.0, [raw, caller], [confirmed, caller]);
    let raised = of(&w, "interrupt", WarningState::Raised);
    assert_eq!(raised.len(), 2, "{w:#?}");
    let withdrawn = of(&w, "interrupt", WarningState::Withdrawn);
    assert_eq!(withdrawn.len(), 1, "{w:#?}");
    assert_eq!(
        withdrawn[0].0.id, raised[1].0.id,
        "the second one goes, by its id"
    );
    let score = coach
        .scores()
        .into_iter()
        .find(|s| s.rule == "interrupt")
        .unwrap();
    assert_eq!(score.violations, 1);
}

#[test]
fn an_overlap_the_call_ends_before_confirming_is_withdrawn() {
    // Both say goodbye over each other in the call's last moment: raw 0.6 s, confirmed 0.35 s.
    let caller: &[(f64, f64)] = &[(0.5, 5.7)];
    let (w, coach) = run(5.7, [&[(5.0, 5.7)], caller], [&[(5.0, 5.35)], caller]);
    assert_eq!(of(&w, "interrupt", WarningState::Raised).len(), 1, "{w:#?}");
    assert_eq!(
        of(&w, "interrupt", WarningState::Withdrawn).len(),
        1,
        "{w:#?}"
    );
    let score = coach
        .scores()
        .into_iter()
        .find(|s| s.rule == "interrupt")
        .unwrap();
    assert_eq!(score.violations, 0);
}
