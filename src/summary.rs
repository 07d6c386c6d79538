//! The short human summary printed by `analyze`.

use std::fmt::Write as _;

use callcoach_audio::analyze::{CallReport, PartyReport};
use callcoach_coach::{RuleScore, Warning, WarningState};

fn opt(v: Option<f32>, unit: &str) -> String {
    v.map(|x| format!("{x:.1} {unit}"))
        .unwrap_or_else(|| "n/a".into())
}

fn party(out: &mut String, r: &PartyReport) {
    let name = format!("{:?}", r.party).to_lowercase();
    let _ = writeln!(out, "  {name}:");
    let _ = writeln!(
        out,
        "    loudness {} integrated (range {}), speech level {}, noise floor {}, SNR {}",
        opt(r.integrated_lufs, "LUFS"),
        opt(r.loudness_range_lu, "LU"),
        opt(r.speech_level_dbfs, "dBFS"),
        opt(r.noise_floor_dbfs, "dBFS"),
        opt(r.snr_db, "dB")
    );
    let rate = r
        .chars_per_minute
        .map(|c| {
            format!(
                "{c:.0} chars/min ({} syllables in {:.1} s of utterances)",
                r.syllables, r.utterance_time_s
            )
        })
        .unwrap_or_else(|| "n/a (too little speech)".into());
    let _ = writeln!(
        out,
        "    speaking {:.1} s (talk ratio {:.0} %), model-free rate {rate}",
        r.speaking_time_s,
        r.talk_ratio * 100.0
    );
    let _ = writeln!(
        out,
        "    longest silence {:.1} s, longest monologue {:.1} s, loudness jumps {}{}",
        r.longest_silence_s,
        r.longest_monologue_s,
        r.loudness_jumps.len(),
        r.loudness_jumps
            .iter()
            .map(|j| format!(" [{:.1} s +{:.1} dB]", j.time_s, j.rise_db))
            .collect::<String>()
    );
}

/// Renders the summary as text.
pub fn render(r: &CallReport, warnings: &[Warning], scores: &[RuleScore]) -> String {
    let mut out = String::new();
    let files: Vec<_> = r
        .files
        .iter()
        .map(|f| {
            format!(
                "{} ({}, {} Hz, {} ch)",
                f.path, f.codec, f.sample_rate, f.channels
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "call: {} — {}, {:.1} s",
        files.join(" + "),
        r.layout,
        r.summary.duration_s
    );
    for w in &r.warnings {
        let _ = writeln!(out, "  WARNING [{}]: {}", w.code, w.message);
    }
    party(&mut out, &r.agent);
    match &r.caller {
        Some(c) => party(&mut out, c),
        None => {
            let _ = writeln!(
                out,
                "  caller: not in the recording (caller features skipped)"
            );
        }
    }
    if r.caller.is_some() {
        let _ = writeln!(
            out,
            "  overlaps (talk-over): {} totalling {:.1} s{}",
            r.summary.talk_over_count,
            r.summary.talk_over_s,
            r.talk_overs
                .iter()
                .take(5)
                .map(|t| format!(
                    " [{:.1}–{:.1} s by {:?}]",
                    t.start_s, t.end_s, t.second_speaker
                )
                .to_lowercase())
                .collect::<String>()
        );
        let _ = writeln!(
            out,
            "  mutual silences (dead air ≥ 1 s): {}, longest {:.1} s",
            r.summary.mutual_silence_count, r.summary.longest_mutual_silence_s
        );
    }
    // A warning the fast path raised and the confirmed stream withdrew is not counted.
    let withdrawn: std::collections::HashSet<&str> = warnings
        .iter()
        .filter(|w| w.state == WarningState::Withdrawn)
        .map(|w| w.id.as_str())
        .collect();
    let raised: Vec<&Warning> = warnings
        .iter()
        .filter(|w| w.state == WarningState::Raised && !withdrawn.contains(w.id.as_str()))
        .collect();
    let _ = writeln!(out, "  coaching: {} warning(s)", raised.len());
    for w in &raised {
        let hidden = match w.hidden {
            Some(h) => format!(" ({h:?})").to_lowercase(),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "    {:>6.1} s  {:<13} {:?}{hidden}: {} — 参考话术: {}",
            w.t_ms as f64 / 1000.0,
            w.rule,
            w.severity,
            w.message_zh,
            if w.line.is_empty() { "—" } else { &w.line }
        );
    }
    let failed: Vec<String> = scores
        .iter()
        .filter(|s| s.enabled && s.violations > 0 && s.rule != "polite")
        .map(|s| format!("{} {}", s.rule, s.score))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "  scores below 100: {}", failed.join(", "));
    }
    out
}
