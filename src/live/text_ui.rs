//! `--ui text`: what the overlay shows, printed.

use super::*;

/// `--ui text`: prints what the overlay shows; returns the raise latencies of audio-path
/// warnings and the transcript latencies.
pub fn text_ui(events: Receiver<UiEvent>) -> (Vec<f64>, Vec<f64>) {
    let mut latencies = Vec::new();
    let mut transcript_latencies = Vec::new();
    let mut last_meter_s = 0u64;
    let mut checklist = [false; 4];
    for e in events {
        match e {
            UiEvent::Warning {
                warning: w,
                latency_ms,
            } => {
                let lat = latency_ms
                    .map(|l| format!(" (+{l:.0} ms)"))
                    .unwrap_or_default();
                match w.state {
                    WarningState::Raised => {
                        if let Some(l) = latency_ms {
                            latencies.push(l);
                        }
                        let shown = if w.hidden.is_some() {
                            " [not shown]"
                        } else {
                            ""
                        };
                        println!(
                            "{:>7.1} s  ▲ {:<13} {}{shown}{lat}\n            参考话术: {}",
                            w.t_ms as f64 / 1000.0,
                            w.rule,
                            w.message_zh,
                            w.line
                        );
                    }
                    WarningState::Updated => println!(
                        "{:>7.1} s  ~ {:<13} {}",
                        w.t_ms as f64 / 1000.0,
                        w.rule,
                        w.message_zh
                    ),
                    WarningState::Cleared => println!(
                        "{:>7.1} s  ▽ {:<13} cleared",
                        w.t_ms as f64 / 1000.0,
                        w.rule
                    ),
                    WarningState::Withdrawn => println!(
                        "{:>7.1} s  ✗ {:<13} withdrawn (not confirmed)",
                        w.t_ms as f64 / 1000.0,
                        w.rule
                    ),
                }
            }
            UiEvent::Meters(m) => {
                if m.checklist != checklist {
                    checklist = m.checklist;
                    let steps: Vec<String> = callcoach_coach::FlowStep::ALL
                        .iter()
                        .zip(checklist)
                        .map(|(s, d)| format!("{}{}", s.label(), if d { "✓" } else { "☐" }))
                        .collect();
                    println!(
                        "{:>7.1} s  ☰ checklist {}",
                        m.call_ms.unwrap_or(0) as f64 / 1000.0,
                        steps.join(" ")
                    );
                }
                // Every 10 s of call time: the meters the overlay draws continuously.
                if let Some(t) = m.call_ms {
                    if t / 10_000 != last_meter_s {
                        last_meter_s = t / 10_000;
                        let f = |x: Option<f32>, d: usize| {
                            x.map_or("–".to_string(), |v| format!("{v:.d$}"))
                        };
                        println!(
                            "{:>7.1} s  ≡ agent {} LUFS {} 字/分 ({}) · caller {} LUFS · talk {} · silence {:.1} s",
                            t as f64 / 1000.0,
                            f(m.loudness_lufs[0], 1),
                            f(m.chars_per_minute[0], 0),
                            m.rate_source[0].map_or("–", |s| s.as_str()),
                            f(m.loudness_lufs[1], 1),
                            m.agent_talk_ratio.map_or("–".into(), |r| format!("{:.0} %", r * 100.0)),
                            m.silence_ms as f64 / 1000.0
                        );
                    }
                }
            }
            UiEvent::Overflow { party, samples } => println!(
                "  ! {} ring overflow: {samples} samples dropped",
                party.name()
            ),
            UiEvent::Gap { party, ms } => {
                println!(
                    "  ! {} device skipped {ms:.0} ms (timestamps)",
                    party.name()
                )
            }
            UiEvent::CallStarted { id, how } => println!("● call {id} started ({how})"),
            UiEvent::CallEnded {
                id,
                call_ms,
                report,
                recording,
            } => {
                println!(
                    "call ended at {:.1} s: {id}\n  report: {}",
                    call_ms as f64 / 1000.0,
                    report.display()
                );
                if let Some(r) = recording {
                    println!("  recording: {}", r.display());
                }
            }
            UiEvent::Control { control, call_ms } => {
                println!("{:>7.1} s  ● {control:?}", call_ms as f64 / 1000.0)
            }
            UiEvent::PartyLost { party, reason } => {
                println!("  ✖ {} lost: {reason} (reconnecting)", party.name())
            }
            UiEvent::PartyRestored { party, gap_ms } => println!(
                "  ✔ {} back after {:.1} s",
                party.name(),
                gap_ms as f64 / 1000.0
            ),
            UiEvent::Transcript {
                segment,
                latency_ms,
            } => {
                if let Some(l) = latency_ms {
                    transcript_latencies.push(l);
                }
                println!(
                    "{:>7.1} s  “ {}: {}",
                    segment.end_ms as f64 / 1000.0,
                    match segment.party {
                        callcoach_coach::Party::Agent => "agent",
                        callcoach_coach::Party::Caller => "caller",
                    },
                    segment.text
                );
            }
            UiEvent::Note(n) => println!("  · {n}"),
            UiEvent::HubStatus(n) => println!("  · {n}"),
            UiEvent::HelpRequested { call } => println!(
                "  ☎ help requested{}",
                call.map(|c| format!(" (call {c})")).unwrap_or_default()
            ),
            UiEvent::Whisper { from, text } => println!("  ✉ 主管提示 whisper from {from}: {text}"),
            UiEvent::End { stream_ms } => {
                println!("audio ended at {:.1} s", stream_ms as f64 / 1000.0);
                let _ = std::io::Write::flush(&mut std::io::stdout());
                break;
            }
        }
        // Show it now, also when stdout is a pipe or a file.
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
    (latencies, transcript_latencies)
}
