//! `--ui overlay`: the live run's events drawn in the agent's window (the `callcoach-overlay`
//! crate), printed as with `--ui text` too; the window's hotkeys become call control.

use callcoach_overlay::{Hotkey, MeterView, OverlayOptions, ScreenEvent};
use crossbeam_channel::{bounded, Receiver, Sender};

use crate::live::{self, Control, UiEvent};

fn to_screen(e: &UiEvent) -> Option<ScreenEvent> {
    Some(match e {
        UiEvent::Warning { warning, .. } => ScreenEvent::Warning(warning.clone()),
        UiEvent::Meters(m) => ScreenEvent::Meters(MeterView {
            in_call: m.call_ms.is_some(),
            call_s: m.call_ms.unwrap_or(0) as f32 / 1000.0,
            loudness_lufs: m.loudness_lufs,
            speaking: m.speaking,
            chars_per_minute: m.chars_per_minute,
            rate_from_text: m
                .rate_source
                .map(|s| matches!(s, Some(callcoach_coach::rate::RateSource::Transcript))),
            agent_talk_ratio: m.agent_talk_ratio,
            silence_s: m.silence_ms as f32 / 1000.0,
            hold_s: m.hold_ms.map(|h| h as f32 / 1000.0),
            lost: m.lost,
            checklist: m.checklist,
        }),
        UiEvent::CallStarted { id, how } => {
            ScreenEvent::Status(format!("通话开始 call {id} ({how})"))
        }
        UiEvent::CallEnded { id, .. } => ScreenEvent::Status(format!("通话结束 call {id} ended")),
        UiEvent::PartyLost { party, reason } => ScreenEvent::Status(format!(
            "{} 设备断开 lost: {reason} — reconnecting",
            party.name()
        )),
        UiEvent::PartyRestored { party, .. } => {
            ScreenEvent::Status(format!("{} 设备恢复 back", party.name()))
        }
        UiEvent::Overflow { party, samples } => {
            ScreenEvent::Status(format!("{}: {samples} samples dropped", party.name()))
        }
        UiEvent::Note(n) => ScreenEvent::Status(n.clone()),
        UiEvent::HubStatus(n) => ScreenEvent::Status(n.clone()),
        UiEvent::HelpRequested { .. } => ScreenEvent::Status("已求助 help requested".into()),
        UiEvent::Whisper { from, text } => ScreenEvent::Nudge {
            text: format!("{text} ({from})"),
            clear_after: std::time::Duration::from_secs(20),
        },
        UiEvent::End { .. } => ScreenEvent::End,
        _ => return None,
    })
}

/// Runs the overlay on this thread until the run ends or the window is closed; returns the
/// latencies `--ui text` would.
pub fn run_overlay(
    events: Receiver<UiEvent>,
    control: Sender<Control>,
    opts: OverlayOptions,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let (screen_tx, screen_rx) = bounded::<ScreenEvent>(1024);
    let (text_tx, text_rx) = bounded::<UiEvent>(1024);
    // Tee: the window and the text log see the same events.
    std::thread::Builder::new()
        .name("callcoach-screen".into())
        .spawn(move || {
            for e in events {
                let end = matches!(e, UiEvent::End { .. });
                if let Some(s) = to_screen(&e) {
                    // Meters are replaced a tenth of a second later; anything else (a warning,
                    // the end) waits for the window, which keeps reading until it is closed.
                    if matches!(e, UiEvent::Meters(_)) {
                        let _ = screen_tx.try_send(s);
                    } else {
                        let _ = screen_tx.send(s);
                    }
                }
                let _ = text_tx.send(e);
                if end {
                    break;
                }
            }
        })?;
    let text = std::thread::spawn(move || live::text_ui(text_rx));
    let (key_tx, key_rx) = bounded::<Hotkey>(16);
    std::thread::Builder::new()
        .name("callcoach-hotkeys".into())
        .spawn(move || {
            let mut hold = false;
            for k in key_rx {
                let c = match k {
                    Hotkey::CallStart => Control::CallStart,
                    Hotkey::CallEnd => Control::CallEnd,
                    Hotkey::Help => Control::HelpRequest,
                    _ => {
                        hold = !hold;
                        if hold {
                            Control::HoldStart
                        } else {
                            Control::HoldEnd
                        }
                    }
                };
                let _ = control.send(c);
            }
        })?;
    callcoach_overlay::run(screen_rx, key_tx, opts)?;
    // The window was closed (or the run ended): stop the audio; the call in progress is
    // finished and written before the log thread sees the end.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    text.join()
        .map_err(|_| anyhow::anyhow!("the text log thread failed"))
}
