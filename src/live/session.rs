//! One call: its record while it runs, and its finishing (last transcripts, report, files)
//! on a thread of its own when it ends.

use super::*;

/// One call in progress.
pub(super) struct CallSession {
    pub(super) id: String,
    /// How it started (`api`, `auto`, `stream`).
    pub(super) how: &'static str,
    /// The stream sample where the call begins.
    pub(super) start_sample: u64,
    /// Samples of this call pushed per party.
    pub(super) pushed: [u64; 2],
    pub(super) stream: CallStream,
    pub(super) feed: CoachFeed,
    pub(super) asr: Option<AsrLane>,
    pub(super) recorder: Option<Recorder>,
    /// Why the call could not be recorded, when it could not.
    pub(super) recording_error: Option<String>,
    /// Call events for the transcript file (hold, call end).
    pub(super) controls: Vec<Event>,
    pub(super) transcripts: Vec<TranscriptSegment>,
    pub(super) transcript_latency_ms: Vec<f64>,
    /// (party, start ms, end ms) of audio filled with silence because a device was lost.
    pub(super) gaps: Vec<(Party, u64, u64)>,
    /// What the source said about its input (a replayed file's damaged packets).
    pub(super) source_warnings: Vec<InputWarning>,
    pub(super) hold_since: Option<u64>,
}

impl CallSession {
    pub(super) fn call_ms(&self) -> u64 {
        self.stream.frames_total() * 10
    }

    /// Pushes one party's samples through features, coach, ASR and recorder.
    pub(super) fn push(
        &mut self,
        p: Party,
        samples: &[f32],
        meters: &mut MeterState,
    ) -> anyhow::Result<()> {
        let CallSession {
            stream, feed, asr, ..
        } = self;
        stream.push_heard(
            p,
            samples,
            &mut |o| {
                feed.on(o);
                meters.on(o);
            },
            &mut |p, f, frame| {
                if let Some(a) = asr.as_mut() {
                    a.frame(p, f, frame);
                }
            },
        )?;
        if let Some(r) = self.recorder.as_mut() {
            r.push(p, self.pushed[p.index()], samples);
        }
        self.pushed[p.index()] += samples.len() as u64;
        Ok(())
    }
}

/// Everything a finished call still needs, handed to its finishing thread.
pub(super) struct EndedCall {
    pub(super) id: String,
    pub(super) report: CallReport,
    pub(super) feed: CoachFeed,
    pub(super) asr: Option<AsrLane>,
    pub(super) recorder: Option<Recorder>,
    pub(super) controls: Vec<Event>,
    pub(super) transcripts: Vec<TranscriptSegment>,
    pub(super) transcript_latency_ms: Vec<f64>,
    pub(super) end_ms: u64,
    pub(super) rate: u32,
    pub(super) parties: usize,
    /// Wall-clock instant of the call's time 0, for latencies.
    pub(super) origin: Option<Instant>,
}

/// Waits for the last transcripts, runs the coach to the end, writes report, transcript and
/// recording. Runs off the pipeline thread (the ASR queue may take seconds to drain).
pub(super) fn finish_call(
    c: EndedCall,
    cfg: &LiveConfig,
    ui: &UiTx,
) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let EndedCall {
        id,
        mut report,
        mut feed,
        asr,
        recorder,
        mut controls,
        mut transcripts,
        mut transcript_latency_ms,
        end_ms,
        rate,
        parties,
        origin,
    } = c;
    let asr_report = match asr {
        Some(lane) => {
            let load_error = lane.worker.load_error();
            let (outs, stats, model) = lane.worker.finish_keep();
            if let (Some(m), Ok(mut slot)) = (model, lane.slot.lock()) {
                *slot = Some(m);
            }
            for o in outs.into_iter().filter(|o| o.is_final) {
                let latency = origin.map(|t0| latency_after(t0, o.end_ms));
                if let Some(l) = latency {
                    transcript_latency_ms.push(l);
                }
                if o.text.is_empty() {
                    continue;
                }
                let seg = to_segment(o);
                ui.send(UiEvent::Transcript {
                    segment: seg.clone(),
                    latency_ms: latency,
                });
                feed.control(Event::Transcript(seg.clone()));
                transcripts.push(seg);
            }
            let (p50, p99) = percentiles(&mut transcript_latency_ms);
            let wall_s = lane.started.elapsed().as_secs_f64();
            match load_error {
                Some(e) => AsrReport::off(e),
                None => AsrReport {
                    status: "on".into(),
                    reason: None,
                    outcome: Some(AsrOutcome {
                        model: lane.model.display().to_string(),
                        segments: transcripts.clone(),
                        stats,
                        real_time_factor: end_ms as f64 / 1000.0 / wall_s.max(1e-9),
                        wall_s,
                        decode_s: stats.decode_us as f64 / 1e6,
                        final_latency_ms_p50: p50,
                        final_latency_ms_p99: p99,
                    }),
                },
            }
        }
        None => AsrReport::off(cfg.asr_off_reason.clone()),
    };
    let asr_on = asr_report.status == "on";
    let seen = feed.seen();
    let (coach, warnings) = feed.finish(end_ms);
    for w in &warnings[seen..] {
        ui.send(UiEvent::Warning {
            warning: Box::new(w.clone()),
            latency_ms: None,
        });
    }
    let not_recorded = |report: &mut CallReport| {
        report.files = vec![FileInfo {
            path: "(live, not recorded)".into(),
            codec: "live capture, 16-bit".into(),
            sample_rate: rate,
            channels: parties,
            duration_s: end_ms as f64 / 1000.0,
        }];
    };
    // A recorder that failed (disk full, directory gone) costs the recording, not the report.
    let recorded = recorder.map(|r| {
        let dropped = r.dropped_chunks;
        drop(r.tx);
        let info = r
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("the recorder thread failed"))
            .and_then(|x| x);
        info.and_then(|info| Ok((Decoder::open(&info.path)?, info, dropped)))
    });
    let recording = match recorded {
        Some(Err(e)) => {
            ui.send(UiEvent::Note(format!(
                "call {id}: the recording failed ({e:#}); the report is still written"
            )));
            report.warnings.insert(
                0,
                InputWarning {
                    code: "recording-failed".into(),
                    party: None,
                    message: format!("the call could not be recorded: {e:#}"),
                },
            );
            not_recorded(&mut report);
            None
        }
        Some(Ok((d, info, dropped))) => {
            report.files = vec![FileInfo {
                path: info.path.display().to_string(),
                codec: d.codec().to_string(),
                sample_rate: d.rate(),
                channels: d.channels(),
                duration_s: info.frames as f64 / rate as f64,
            }];
            if info.filled > 0 || dropped > 0 {
                report.warnings.insert(0, InputWarning {
                    code: "recording-gap".into(),
                    party: None,
                    message: format!("{:.2} s of the recording were written as silence ({dropped} chunk(s) did not reach the recorder in time: a slow disk?)", info.filled as f64 / rate as f64 / parties as f64),
                });
            }
            Some(info.path)
        }
        None => {
            not_recorded(&mut report);
            None
        }
    };
    controls.sort_by_key(Event::time_ms);
    transcripts.sort_by_key(|s| (s.end_ms, s.start_ms));
    crate::report::rates_from_coach(&mut report, &coach);
    let full = FullReport {
        call: report,
        asr: asr_report,
        coach: CoachReport {
            rules: cfg.rules_name.clone(),
            transcript: asr_on || !transcripts.is_empty(),
            warnings,
            scores: coach.scores(),
            speech_rate: SpeechRates::of(&coach),
            checklist: crate::report::ChecklistItem::of(&coach),
        },
    };
    let text = serde_json::to_string_pretty(&full).context("serialising the report")?;
    let path = write_kept(
        cfg,
        &format!("call-{id}.json"),
        (text + "\n").as_bytes(),
        ui,
    )?;
    let t = Transcript {
        segments: transcripts,
        events: controls,
    };
    write_kept(
        cfg,
        &format!("call-{id}.transcript.jsonl"),
        callcoach_coach::transcript::to_jsonl(&t).as_bytes(),
        ui,
    )?;
    Ok((path, recording))
}

/// Where a call's files go when `--out` cannot take them: `$CALLCOACH_FALLBACK_DIR`, else the
/// user's own state directory (`$XDG_STATE_HOME` or `~/.local/state`, `callcoach/unsaved`:
/// reports hold personal data, so not a shared temporary directory), else the temporary one.
pub(super) fn fallback_dir() -> PathBuf {
    let user_state = || {
        std::env::var_os("XDG_STATE_HOME")
            .filter(|x| !x.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
    };
    std::env::var_os("CALLCOACH_FALLBACK_DIR")
        .map(PathBuf::from)
        .or_else(|| user_state().map(|d| d.join("callcoach/unsaved")))
        .unwrap_or_else(|| std::env::temp_dir().join("callcoach-unsaved"))
}

/// Writes one of a call's files in `--out`; when that fails (disk full, directory removed), in
/// the fallback directory, saying so on screen. An error only if neither can take it.
pub(super) fn write_kept(
    cfg: &LiveConfig,
    name: &str,
    bytes: &[u8],
    ui: &UiTx,
) -> anyhow::Result<PathBuf> {
    let path = cfg.out_dir.join(name);
    let first = match std::fs::write(&path, bytes) {
        Ok(()) => return Ok(path),
        Err(e) => e,
    };
    let dir = fallback_dir();
    let kept = dir.join(name);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&kept, bytes))
        .with_context(|| {
            format!(
                "{}: cannot write ({first}), nor {}",
                path.display(),
                kept.display()
            )
        })?;
    ui.send(UiEvent::Note(format!(
        "{}: cannot write ({first}); kept in {} instead",
        path.display(),
        kept.display()
    )));
    Ok(kept)
}

/// ms since the audio at call time `t_ms` entered (call time 0 entered at `origin`).
pub(super) fn latency_after(origin: Instant, t_ms: u64) -> f64 {
    (origin.elapsed().as_secs_f64() * 1000.0 - t_ms as f64).max(0.0)
}

/// A call id from the wall clock (UTC), e.g. `20261123-101502Z-1`.
pub(super) fn call_id(seq: u32) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}Z-{seq}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
