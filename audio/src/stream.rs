//! [`CallStream`]: a call analysed as its samples arrive, into the same [`CallReport`] as
//! `analyze` gives.

use crate::call::{CallAnalyzer, CallConfig, CallOutput, Heard, Party};
use crate::error::AudioError;
use crate::report::{
    build_report, AgentChannel, CallReport, Collector, FileInfo, InputWarning, Monologue,
    PartyCollect, SourceStats,
};

/// A call analysed as its samples arrive, into the same [`CallReport`] as `analyze` gives: the
/// one code path behind `callcoach analyze` and every call of `callcoach live`. Each party's
/// samples are pushed in any chunking; the report does not depend on it.
pub struct CallStream {
    analyzer: CallAnalyzer,
    collector: Collector,
    stats: [SourceStats; 2],
    /// Order-dependent hashes of each party's samples (stereo: identical channels?).
    hashes: [u64; 2],
    layout: &'static str,
    agent_channel: AgentChannel,
}

impl std::fmt::Debug for CallStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallStream")
            .field("layout", &self.layout)
            .field("frames", &self.analyzer.frames_total())
            .finish_non_exhaustive()
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

impl CallStream {
    /// `layout` is what the report says: `stereo`, `mono` (agent only) or `two-mono`.
    pub fn new(
        cfg: CallConfig,
        agent_rate: Option<u32>,
        caller_rate: Option<u32>,
        layout: &'static str,
        agent_channel: AgentChannel,
    ) -> Result<Self, AudioError> {
        let analyzer = CallAnalyzer::new(cfg, agent_rate, caller_rate)?;
        let collector = Collector {
            parties: [
                Some(PartyCollect::default()),
                analyzer.has(Party::Caller).then(PartyCollect::default),
            ],
            monologue: Monologue::default(),
            mutual: Vec::new(),
            talk_overs: Vec::new(),
        };
        Ok(Self {
            analyzer,
            collector,
            stats: [SourceStats::default(); 2],
            hashes: [FNV_OFFSET; 2],
            layout,
            agent_channel,
        })
    }

    pub fn has(&self, party: Party) -> bool {
        self.analyzer.has(party)
    }

    /// Frames (10 ms) analysed so far: the call time reached, in frames.
    pub fn frames_total(&self) -> u64 {
        self.analyzer.frames_total()
    }

    /// Pushes one party's samples; outputs go to `observer` and into the report, each frame's
    /// features with its 16 kHz audio to `heard` (see [`Heard`]). Allocates only when the
    /// report's lists grow (every 100 ms a series point).
    pub fn push_heard(
        &mut self,
        party: Party,
        samples: &[f32],
        observer: &mut dyn FnMut(&CallOutput),
        heard: &mut Heard<'_>,
    ) -> Result<(), AudioError> {
        self.stats[party.index()].add_block(samples);
        let h = &mut self.hashes[party.index()];
        for x in samples {
            // FNV-1a over the sample bits: chunking-independent, order-dependent.
            *h = (*h ^ u64::from(x.to_bits())).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let collector = &mut self.collector;
        self.analyzer.push_heard(
            party,
            samples,
            &mut |o| {
                observer(&o);
                collector.on(o)
            },
            heard,
        )
    }

    /// Ends the call: flushes the feature path and builds the report. `files` describe the
    /// source; `warnings` come first (decoder notes, capture gaps).
    pub fn finish(
        self,
        files: Vec<FileInfo>,
        warnings: Vec<InputWarning>,
        observer: &mut dyn FnMut(&CallOutput),
    ) -> Result<CallReport, AudioError> {
        self.finish_heard(files, warnings, observer, &mut |_, _, _| {})
    }

    /// [`Self::finish`], handing the last frames' features and audio to `heard`.
    pub fn finish_heard(
        mut self,
        files: Vec<FileInfo>,
        mut warnings: Vec<InputWarning>,
        observer: &mut dyn FnMut(&CallOutput),
        heard: &mut Heard<'_>,
    ) -> Result<CallReport, AudioError> {
        let collector = &mut self.collector;
        self.analyzer.finish_heard(
            &mut |o| {
                observer(&o);
                collector.on(o)
            },
            heard,
        )?;
        let stats = self.stats;
        let analyzer = &self.analyzer;
        if self.layout == "mono" {
            warnings.push(InputWarning {
                code: "agent-only".into(),
                party: None,
                message: "mono recording: analysed as the agent only; caller features and cross-party features (talk-over, dead air) are skipped".into(),
            });
        }
        if self.layout == "stereo"
            && self.hashes[0] == self.hashes[1]
            && stats[0].samples == stats[1].samples
        {
            warnings.push(InputWarning {
                code: "identical-channels".into(),
                party: None,
                message: "both channels are identical (mono saved as stereo?): agent and caller cannot be told apart, so talk ratio, talk-over and caller features are meaningless".into(),
            });
        }
        for p in Party::ALL {
            let st = stats[p.index()];
            if !analyzer.has(p) {
                continue;
            }
            if st.nonzero == 0 {
                warnings.push(InputWarning {
                    code: "digital-silence".into(),
                    party: Some(p),
                    message: format!(
                        "the {} channel is digitally silent (every sample is exactly zero): check the recording's wiring or channel mapping (--agent-channel)",
                        p.name()
                    ),
                });
            }
            let bad = analyzer.non_finite_samples(p);
            if bad > 0 {
                warnings.push(InputWarning {
                    code: "non-finite".into(),
                    party: Some(p),
                    message: format!("the {} channel holds {bad} NaN or infinite samples (a broken float file); they were analysed as silence", p.name()),
                });
            }
            if st.samples > 0 && st.clipped as f64 / st.samples as f64 > 1e-4 {
                warnings.push(InputWarning {
                    code: "clipping".into(),
                    party: Some(p),
                    message: format!(
                        "the {} channel clips: {} samples ({:.3} %) at full scale; loudness and jump figures read low",
                        p.name(),
                        st.clipped,
                        100.0 * st.clipped as f64 / st.samples as f64
                    ),
                });
            }
        }
        Ok(build_report(
            self.layout,
            self.agent_channel,
            files,
            warnings,
            analyzer,
            self.collector,
            &stats,
        ))
    }
}
