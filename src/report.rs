//! The JSON report of one call: the audio analysis, the transcription's status and the coach's
//! warnings and scores. `analyze` and every call of `live` write this same structure.

use callcoach_audio::analyze::CallReport;
use callcoach_coach::rate::Rate;
use callcoach_coach::{Coach, RuleScore, Warning};
use serde::Serialize;

use crate::transcribe::AsrOutcome;

/// The JSON report: the audio analysis plus the coach's warnings and scores.
#[derive(Serialize, Debug, Clone)]
pub struct FullReport {
    #[serde(flatten)]
    pub call: CallReport,
    pub asr: AsrReport,
    pub coach: CoachReport,
}

#[derive(Serialize, Debug, Clone)]
pub struct CoachReport {
    /// The rule book used.
    pub rules: String,
    /// Whether text rules had a transcript to work on.
    pub transcript: bool,
    /// Every warning state change (raised, updated, cleared), in time order.
    pub warnings: Vec<Warning>,
    pub scores: Vec<RuleScore>,
    /// Each party's chars/min over the call, and which estimate it is (transcript characters
    /// over voiced time; calibrated or plain syllable nuclei where there is no text).
    pub speech_rate: SpeechRates,
    /// The call-flow checklist at the call's end (greeting, request confirmed, anything else,
    /// goodbye), ticked from the agent's transcript.
    pub checklist: Vec<ChecklistItem>,
}

/// One step of the call-flow checklist.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct ChecklistItem {
    pub step: callcoach_coach::FlowStep,
    pub label: &'static str,
    pub done: bool,
}

impl ChecklistItem {
    pub fn of(coach: &Coach) -> Vec<Self> {
        coach
            .checklist()
            .into_iter()
            .map(|(step, done)| Self {
                step,
                label: step.label(),
                done,
            })
            .collect()
    }
}

/// Speech rate per party, with its source.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct SpeechRates {
    pub agent: Option<Rate>,
    pub caller: Option<Rate>,
}

impl SpeechRates {
    pub fn of(coach: &Coach) -> Self {
        let [agent, caller] = coach.speech_rates();
        Self { agent, caller }
    }

    /// One line for the text summary.
    pub fn line(&self) -> String {
        let one = |r: Option<Rate>| {
            r.map_or_else(
                || "–".to_string(),
                |r| {
                    format!(
                        "{:.0} chars/min ({}, {:.1} s voiced)",
                        r.chars_per_min,
                        r.source.as_str(),
                        r.voiced_s
                    )
                },
            )
        };
        format!(
            "  speech rate: agent {}, caller {}\n",
            one(self.agent),
            one(self.caller)
        )
    }
}

/// Whether transcription ran, and what it gave.
#[derive(Serialize, Clone, Debug)]
pub struct AsrReport {
    /// "on", "off" or "skipped".
    pub status: String,
    /// Why it is off or skipped (with the fix).
    pub reason: Option<String>,
    #[serde(flatten)]
    pub outcome: Option<AsrOutcome>,
}

impl AsrReport {
    pub fn off(reason: impl Into<String>) -> Self {
        Self {
            status: "off".into(),
            reason: Some(reason.into()),
            outcome: None,
        }
    }

    /// One line for the text summary.
    pub fn line(&self) -> String {
        match (&self.outcome, &self.reason) {
            (Some(o), _) => format!(
                "  ASR: on ({}): {} segment(s), {:.1}x real time, {} utterance(s) transcribed, {} dropped, {} gated\n",
                o.model,
                o.segments.len(),
                o.real_time_factor,
                o.stats.transcribed,
                o.stats.dropped_agent + o.stats.dropped_caller,
                o.stats.gated
            ),
            (None, Some(r)) => format!("  ASR: {}: {r}\n", self.status),
            (None, None) => format!("  ASR: {}\n", self.status),
        }
    }
}

/// The report's chars/min series become the coach's: the figure the rate rule judges and the
/// live meter shows (transcript characters where there is text, calibrated syllable nuclei
/// elsewhere; the rule book's window and minimum speech), so the plot, the meter and the
/// warnings never disagree. The audio-only figure stays in each party's `chars_per_minute`.
pub fn rates_from_coach(report: &mut callcoach_audio::analyze::CallReport, coach: &Coach) {
    use callcoach_coach::Party;
    for (series, party) in [
        (report.series.agent.as_mut(), Party::Agent),
        (report.series.caller.as_mut(), Party::Caller),
    ] {
        if let Some(series) = series {
            let n = series.chars_per_minute.len();
            let mut rates = coach.rate_series(party).to_vec();
            rates.resize(n, None);
            series.chars_per_minute = rates;
        }
    }
}
