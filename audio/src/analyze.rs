//! Offline analysis of a recorded call: decode → resample → features → [`CallReport`].

use std::path::{Path, PathBuf};

use crate::call::{CallConfig, CallOutput, Party};
use crate::decode::Decoder;
use crate::error::AudioError;

pub use crate::report::*;
pub use crate::stream::CallStream;

/// How the call is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInput {
    /// Stereo call, or the agent's mono file.
    pub call: PathBuf,
    /// The caller's mono file, when the parties are in two files.
    pub caller: Option<PathBuf>,
    pub agent_channel: AgentChannel,
    /// Analyse what is there when a file is shorter than its header says.
    pub allow_truncated: bool,
}

struct Source {
    decoder: Decoder,
    /// Which channel goes to which party: (channel index, party).
    routes: Vec<(usize, Party)>,
}

/// Analyses a recorded call. Streams: memory stays bounded whatever the length.
pub fn analyze_call(input: &CallInput, cfg: &CallConfig) -> Result<CallReport, AudioError> {
    analyze_call_observed(input, cfg, &mut |_| {})
}

/// [`analyze_call`], also handing every frame and event to `observer` as it comes out of the
/// feature path (in time order per party; how the coach is fed).
pub fn analyze_call_observed(
    input: &CallInput,
    cfg: &CallConfig,
    observer: &mut dyn FnMut(&CallOutput),
) -> Result<CallReport, AudioError> {
    analyze_call_heard(input, cfg, observer, &mut |_, _, _| {})
}

/// [`analyze_call_observed`], also handing each frame's features with its 16 kHz audio to
/// `heard` (see [`crate::call::Heard`]): a recogniser's input from the same single pass.
pub fn analyze_call_heard(
    input: &CallInput,
    cfg: &CallConfig,
    observer: &mut dyn FnMut(&CallOutput),
    heard: &mut crate::call::Heard<'_>,
) -> Result<CallReport, AudioError> {
    let first = Decoder::open(&input.call)?;
    let warnings = Vec::new();
    let (sources, layout) = match (&input.caller, first.channels()) {
        (Some(caller_path), _) => {
            let second = Decoder::open(caller_path)?;
            for d in [&first, &second] {
                if d.channels() != 1 {
                    return Err(AudioError::Layout {
                        path: d.path().to_path_buf(),
                        detail: format!(
                            "has {} channels; with --caller both files must be mono (use one stereo file without --caller instead)",
                            d.channels()
                        ),
                    });
                }
            }
            (
                vec![
                    Source { decoder: first, routes: vec![(0, Party::Agent)] },
                    Source { decoder: second, routes: vec![(0, Party::Caller)] },
                ],
                "two-mono",
            )
        }
        (None, 1) => {
            (vec![Source { decoder: first, routes: vec![(0, Party::Agent)] }], "mono")
        }
        (None, 2) => {
            let routes = match input.agent_channel {
                AgentChannel::Left => vec![(0, Party::Agent), (1, Party::Caller)],
                AgentChannel::Right => vec![(1, Party::Agent), (0, Party::Caller)],
            };
            (vec![Source { decoder: first, routes }], "stereo")
        }
        (None, n) => {
            return Err(AudioError::Layout {
                path: input.call.clone(),
                detail: format!("has {n} channels; a call must be mono (agent only), stereo (agent + caller) or two mono files (--caller)"),
            })
        }
    };
    let rate_of = |p: Party| {
        sources
            .iter()
            .find(|s| s.routes.iter().any(|r| r.1 == p))
            .map(|s| s.decoder.rate())
    };
    let mut stream = CallStream::new(
        cfg.clone(),
        rate_of(Party::Agent),
        rate_of(Party::Caller),
        layout,
        input.agent_channel,
    )?;
    let mut scratch: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    let mut files = Vec::new();
    let mut sources = sources;
    let mut finished = vec![false; sources.len()];
    // Round-robin over the sources so both parties advance together (bounded pairing rings).
    while finished.iter().any(|f| !f) {
        for (si, src) in sources.iter_mut().enumerate() {
            if finished[si] {
                continue;
            }
            let channels = src.decoder.channels();
            let Some(block) = src.decoder.next_block()? else {
                finished[si] = true;
                continue;
            };
            for &(ch, party) in &src.routes {
                let buf = &mut scratch[party.index()];
                buf.clear();
                buf.extend(block.chunks_exact(channels).map(|frame| frame[ch]));
            }
            for &(_, party) in &src.routes {
                stream.push_heard(party, &scratch[party.index()], observer, heard)?;
            }
        }
    }
    let mut warnings = warnings;
    for src in &sources {
        let d = &src.decoder;
        let (skipped, filled) = d.damaged();
        if filled > 0 {
            warnings.push(InputWarning {
                code: "damaged-packets".into(),
                party: None,
                message: format!(
                    "{}: {skipped} damaged packet(s) and unreadable data replaced by {:.2} s of silence (the parties stay aligned)",
                    d.path().display(),
                    filled as f64 / d.rate() as f64
                ),
            });
        }
        if let Some(declared) = d.declared_frames() {
            // Damage already reported may leave the total short by a packet or so (a damaged
            // packet that did not say its length; MP3 frames lost to a resync leave no trace in
            // its timestamps): not a truncation. At most 1 s.
            let slack = (skipped * 2 * d.packet_frames()).min(u64::from(d.rate()));
            if d.decoded_frames() + slack < declared && !input.allow_truncated {
                return Err(AudioError::Corrupt {
                    path: d.path().to_path_buf(),
                    detail: format!(
                        "truncated: the header promises {:.2} s but the file holds {:.2} s; pass --allow-truncated to analyse the part that is there",
                        declared as f64 / d.rate() as f64,
                        d.decoded_frames() as f64 / d.rate() as f64
                    ),
                });
            }
        }
        if d.decoded_frames() == 0 {
            return Err(AudioError::NoAudio {
                path: d.path().to_path_buf(),
            });
        }
        files.push(FileInfo {
            path: d.path().display().to_string(),
            codec: d.codec().to_string(),
            sample_rate: d.rate(),
            channels: d.channels(),
            duration_s: d.decoded_frames() as f64 / d.rate() as f64,
        });
    }
    stream.finish_heard(files, warnings, observer, heard)
}

/// Convenience for a single path.
pub fn analyze_file(path: &Path) -> Result<CallReport, AudioError> {
    analyze_call(
        &CallInput {
            call: path.to_path_buf(),
            caller: None,
            agent_channel: AgentChannel::Left,
            allow_truncated: false,
        },
        &CallConfig::default(),
    )
}
