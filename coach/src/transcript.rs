//! Timed transcripts from elsewhere: JSON lines or SRT (format in the README).
//!
//! JSON lines, one segment per line (times in seconds):
//! `{"party": "agent", "start": 0.5, "end": 3.2, "text": "您好，示例公司"}`
//! and, optionally, call events from the telephony on lines of their own:
//! `{"event": "hold_start", "time": 12.0}`, `hold_end`, or
//! `{"event": "call_end", "time": 95.2, "hung_up_by": "caller"}`.
//!
//! SRT: standard cues; the speaker is a prefix of the cue text (`坐席：`/`客服：`/`agent:` or
//! `客户：`/`caller:`), or the whole file belongs to the party given by the caller.

use std::path::Path;

use serde::Deserialize;

use crate::event::{Event, Party, TranscriptSegment};

/// A transcript problem, with the line it is on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscriptError {
    #[error("{path}: cannot read the transcript: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSegment {
    party: Party,
    start: f64,
    end: f64,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEvent {
    event: String,
    time: f64,
    #[serde(default)]
    hung_up_by: Option<Party>,
}

/// A transcript file's content: segments and call events, each sorted by time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub segments: Vec<TranscriptSegment>,
    pub events: Vec<Event>,
}

/// Reads a transcript file with its call events.
pub fn load_with_events(path: &Path, party: Option<Party>) -> Result<Transcript, TranscriptError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| TranscriptError::Io {
        path: name.clone(),
        error,
    })?;
    parse_with_events(&name, &text, party)
}

/// Parses transcript text with its call events (JSON lines only carry events).
pub fn parse_with_events(
    name: &str,
    text: &str,
    party: Option<Party>,
) -> Result<Transcript, TranscriptError> {
    let mut events = Vec::new();
    let mut rest = String::new();
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        if line.contains("\"event\"") && line.trim_start().starts_with('{') {
            let n = i + 1;
            let e: JsonEvent = serde_json::from_str(line).map_err(|e| bad(name, n, format!("{e}; expected {{\"event\": \"hold_start\"|\"hold_end\"|\"call_end\", \"time\": seconds}}")))?;
            let t_ms = to_ms(name, n, e.time)?;
            events.push(match e.event.as_str() {
                "hold_start" => Event::HoldStart { t_ms },
                "hold_end" => Event::HoldEnd { t_ms },
                "call_end" => Event::CallEnd {
                    t_ms,
                    hung_up_by: e.hung_up_by,
                },
                other => {
                    return Err(bad(
                        name,
                        n,
                        format!(
                            "unknown event '{other}'; expected hold_start, hold_end or call_end"
                        ),
                    ))
                }
            });
            rest.push('\n'); // keep line numbers
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    events.sort_by_key(Event::time_ms);
    Ok(Transcript {
        segments: parse(name, &rest, party)?,
        events,
    })
}

/// Writes segments and call events as JSON lines that [`load_with_events`] reads back exactly
/// (times in seconds with millisecond precision). `live` leaves one beside each call's report.
pub fn to_jsonl(t: &Transcript) -> String {
    let secs = |ms: u64| serde_json::Value::from(ms as f64 / 1000.0);
    let mut lines: Vec<(u64, String)> = Vec::new();
    for s in &t.segments {
        let v = serde_json::json!({
            "party": s.party,
            "start": secs(s.start_ms),
            "end": secs(s.end_ms),
            "text": s.text,
        });
        lines.push((s.end_ms, v.to_string()));
    }
    for e in &t.events {
        let v = match e {
            Event::HoldStart { t_ms } => {
                serde_json::json!({"event": "hold_start", "time": secs(*t_ms)})
            }
            Event::HoldEnd { t_ms } => {
                serde_json::json!({"event": "hold_end", "time": secs(*t_ms)})
            }
            Event::CallEnd { t_ms, hung_up_by } => match hung_up_by {
                Some(p) => {
                    serde_json::json!({"event": "call_end", "time": secs(*t_ms), "hung_up_by": p})
                }
                None => serde_json::json!({"event": "call_end", "time": secs(*t_ms)}),
            },
            _ => continue,
        };
        lines.push((e.time_ms(), v.to_string()));
    }
    lines.sort_by_key(|l| l.0);
    lines.into_iter().map(|l| l.1 + "\n").collect()
}

/// Reads a transcript file; `party` is used for SRT cues without a speaker prefix.
pub fn load(path: &Path, party: Option<Party>) -> Result<Vec<TranscriptSegment>, TranscriptError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| TranscriptError::Io {
        path: name.clone(),
        error,
    })?;
    parse(&name, &text, party)
}

/// Parses transcript text; JSON lines when the first non-empty line starts with `{`, else SRT.
pub fn parse(
    name: &str,
    text: &str,
    party: Option<Party>,
) -> Result<Vec<TranscriptSegment>, TranscriptError> {
    let text = text.trim_start_matches('\u{feff}');
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut segs = if first.trim_start().starts_with('{') {
        parse_jsonl(name, text, party)?
    } else {
        parse_srt(name, text, party)?
    };
    segs.sort_by_key(|s| (s.end_ms, s.start_ms));
    Ok(segs)
}

fn bad(name: &str, line: usize, message: impl Into<String>) -> TranscriptError {
    TranscriptError::Invalid {
        path: name.to_string(),
        line,
        message: message.into(),
    }
}

fn to_ms(name: &str, line: usize, s: f64) -> Result<u64, TranscriptError> {
    if s.is_finite() && (0.0..=86_400.0).contains(&s) {
        Ok((s * 1000.0).round() as u64)
    } else {
        Err(bad(
            name,
            line,
            format!("time {s} s is not between 0 and 86400"),
        ))
    }
}

fn parse_jsonl(
    name: &str,
    text: &str,
    forced: Option<Party>,
) -> Result<Vec<TranscriptSegment>, TranscriptError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let j: JsonSegment = serde_json::from_str(line).map_err(|e| {
            bad(name, n, format!("{e}; expected {{\"party\": \"agent\"|\"caller\", \"start\": seconds, \"end\": seconds, \"text\": \"…\"}}"))
        })?;
        let (start_ms, end_ms) = (to_ms(name, n, j.start)?, to_ms(name, n, j.end)?);
        if end_ms < start_ms {
            return Err(bad(
                name,
                n,
                format!("end {} s is before start {} s", j.end, j.start),
            ));
        }
        out.push(TranscriptSegment {
            party: forced.unwrap_or(j.party),
            start_ms,
            end_ms,
            text: j.text,
        });
    }
    Ok(out)
}

fn srt_time(name: &str, line: usize, s: &str) -> Result<u64, TranscriptError> {
    let err = || bad(name, line, format!("bad time '{s}': expected HH:MM:SS,mmm"));
    let (hms, ms) = s.trim().split_once([',', '.']).ok_or_else(err)?;
    let parts: Vec<&str> = hms.split(':').collect();
    if parts.len() != 3 || ms.len() != 3 {
        return Err(err());
    }
    let num = |x: &str| x.parse::<u64>().map_err(|_| err());
    let (h, m, sec, milli) = (num(parts[0])?, num(parts[1])?, num(parts[2])?, num(ms)?);
    if m >= 60 || sec >= 60 {
        return Err(err());
    }
    Ok(((h * 60 + m) * 60 + sec) * 1000 + milli)
}

const AGENT_PREFIXES: [&str; 5] = ["坐席", "客服", "agent", "a", "座席"];
const CALLER_PREFIXES: [&str; 4] = ["客户", "caller", "c", "用户"];

/// Splits a `speaker：text` prefix off a cue.
fn speaker(text: &str) -> Option<(Party, &str)> {
    let (head, rest) = text.split_once([':', '：'])?;
    let h = head.trim().to_lowercase();
    if AGENT_PREFIXES.contains(&h.as_str()) {
        Some((Party::Agent, rest.trim()))
    } else if CALLER_PREFIXES.contains(&h.as_str()) {
        Some((Party::Caller, rest.trim()))
    } else {
        None
    }
}

fn parse_srt(
    name: &str,
    text: &str,
    forced: Option<Party>,
) -> Result<Vec<TranscriptSegment>, TranscriptError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let cue_line = i + 1;
        if lines[i].trim().parse::<u64>().is_err() {
            return Err(bad(
                name,
                cue_line,
                format!(
                    "expected a cue number, found '{}' (is this SRT or JSON lines?)",
                    lines[i].trim()
                ),
            ));
        }
        i += 1;
        let timing = lines
            .get(i)
            .ok_or_else(|| bad(name, i + 1, "cue has no time line"))?;
        let (a, b) = timing
            .split_once("-->")
            .ok_or_else(|| bad(name, i + 1, "expected 'start --> end'"))?;
        let (start_ms, end_ms) = (srt_time(name, i + 1, a)?, srt_time(name, i + 1, b)?);
        if end_ms < start_ms {
            return Err(bad(name, i + 1, "end is before start"));
        }
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() {
            body.push(lines[i].trim());
            i += 1;
        }
        let joined = body.join(" ");
        let (party, text) = match (speaker(&joined), forced) {
            (Some((p, t)), _) => (p, t.to_string()),
            (None, Some(p)) => (p, joined.clone()),
            (None, None) => {
                return Err(bad(name, cue_line + 2, "no speaker: start the cue text with 坐席： or 客户： (agent: / caller:), or pass the file as agent=FILE / caller=FILE"));
            }
        };
        out.push(TranscriptSegment {
            party,
            start_ms,
            end_ms,
            text,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn jsonl_round_trips_segments_and_events() {
        let t = Transcript {
            segments: vec![TranscriptSegment {
                party: Party::Agent,
                start_ms: 1_234,
                end_ms: 5_679,
                text: "您好，\"示例\"公司".into(),
            }],
            events: vec![
                Event::HoldStart { t_ms: 7_001 },
                Event::HoldEnd { t_ms: 9_999 },
                Event::CallEnd {
                    t_ms: 12_345,
                    hung_up_by: Some(Party::Caller),
                },
            ],
        };
        let back = parse_with_events("x.jsonl", &to_jsonl(&t), None).unwrap();
        assert_eq!(back, t);
    }

    use super::*;

    #[test]
    fn reads_json_lines_and_srt() {
        let j = parse("t.jsonl", "{\"party\":\"agent\",\"start\":0.5,\"end\":2,\"text\":\"您好\"}\n\n{\"party\":\"caller\",\"start\":2.5,\"end\":3,\"text\":\"你好\"}\n", None).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(
            (j[0].start_ms, j[0].end_ms, j[1].party),
            (500, 2000, Party::Caller)
        );
        let s = parse("t.srt", "1\n00:00:00,500 --> 00:00:02,000\n坐席：您好，\n示例公司\n\n2\n00:00:02,500 --> 00:00:03,000\n客户：你好\n", None).unwrap();
        assert_eq!(s[0].text, "您好， 示例公司");
        assert_eq!(s[1].party, Party::Caller);
        let forced = parse(
            "c.srt",
            "1\n00:00:01,000 --> 00:00:02,000\n喂\n",
            Some(Party::Caller),
        )
        .unwrap();
        assert_eq!(forced[0].party, Party::Caller);
    }

    #[test]
    fn json_lines_carry_call_events() {
        let t = parse_with_events("t.jsonl", "{\"event\":\"hold_start\",\"time\":5}\n{\"party\":\"agent\",\"start\":0.5,\"end\":2,\"text\":\"您好\"}\n{\"event\":\"call_end\",\"time\":9,\"hung_up_by\":\"agent\"}\n", None).unwrap();
        assert_eq!(t.segments.len(), 1);
        assert_eq!(
            t.events,
            vec![
                Event::HoldStart { t_ms: 5000 },
                Event::CallEnd {
                    t_ms: 9000,
                    hung_up_by: Some(Party::Agent)
                }
            ]
        );
        let e = parse_with_events("t.jsonl", "\n{\"event\":\"coffee\",\"time\":5}", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.jsonl:2:") && e.contains("unknown event"),
            "{e}"
        );
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let e = parse("t.jsonl", "{\"party\":\"agent\",\"start\":0.5,\"end\":2,\"text\":\"您好\"}\n{\"party\":\"boss\",\"start\":1,\"end\":2,\"text\":\"x\"}\n", None).unwrap_err().to_string();
        assert!(e.starts_with("t.jsonl:2:"), "{e}");
        let e = parse(
            "t.srt",
            "1\n00:00:0x,500 --> 00:00:02,000\n坐席：您好\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("t.srt:2:") && e.contains("HH:MM:SS"), "{e}");
        let e = parse("t.srt", "1\n00:00:01,000 --> 00:00:02,000\n您好\n", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no speaker"), "{e}");
        let e = parse(
            "t.jsonl",
            "{\"party\":\"agent\",\"start\":3,\"end\":2,\"text\":\"x\"}",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("before start"), "{e}");
    }
}
