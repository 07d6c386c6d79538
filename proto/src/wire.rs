//! The messages. JSON, one message per WebSocket text frame (or per spool line).

use callcoach_coach::{TranscriptSegment, Warning};
use serde::{Deserialize, Serialize};

/// Bumped when a message changes incompatibly; the hub refuses other versions by name.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest message either side accepts (a transcript segment or a call summary fits easily).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest agent id and text field.
pub const MAX_ID_CHARS: usize = 64;
pub const MAX_TEXT_CHARS: usize = 4000;

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    #[error("message of {size} bytes is over the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("malformed message: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("protocol version {got}, this side speaks {PROTOCOL_VERSION}: upgrade the older side")]
    Version { got: u32 },
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

/// What the agent's machine is doing (the wallboard tile's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    Idle,
    InCall,
    OnHold,
    CaptureLost,
}

/// The live meters, as the overlay shows them (about twice a second is plenty for a tile).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct MeterSample {
    pub call_ms: Option<u64>,
    pub loudness_lufs: [Option<f32>; 2],
    pub chars_per_minute: [Option<f32>; 2],
    pub agent_talk_ratio: Option<f32>,
    pub silence_ms: u64,
}

/// What happened on the agent's side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Body {
    /// First message of a connection (seq 0, not numbered): who this is. The hub answers with
    /// an `ack` of the last message it has stored of this agent.
    Hello {
        version: u32,
        agent: String,
    },
    State {
        state: AgentState,
    },
    Meters(MeterSample),
    CallStarted {
        call: String,
    },
    Warning {
        call: String,
        warning: Box<Warning>,
    },
    Transcript {
        call: String,
        segment: TranscriptSegment,
    },
    /// The call's end, with its report's summary as JSON (stored, searchable).
    CallEnded {
        call: String,
        summary: serde_json::Value,
    },
    /// The agent asks for help (overlay hotkey or button).
    HelpRequest {
        call: Option<String>,
        text: String,
    },
}

impl Body {
    /// Meter updates are the only messages a newer one replaces (dropped first when the spool
    /// is full).
    pub fn is_replaceable(&self) -> bool {
        matches!(self, Body::Meters(_) | Body::State { .. })
    }
}

/// One numbered message from an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentMsg {
    /// 1, 2, 3… per agent, never reused (the spool keeps the counter across restarts).
    pub seq: u64,
    /// When it happened, ms since the Unix epoch (agent's clock).
    pub at_ms: u64,
    pub body: Body,
}

/// What the hub sends an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HubMsg {
    /// Everything up to and including `seq` is stored: the agent may forget it.
    Ack {
        seq: u64,
    },
    /// A supervisor's typed nudge, for the overlay.
    Whisper {
        from: String,
        text: String,
    },
    /// Start / stop streaming the call's audio (someone is listening).
    ListenStart {
        lease: String,
    },
    ListenStop {
        lease: String,
    },
    /// The hub closes the connection, and why.
    Close {
        reason: String,
    },
}

fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), ProtoError> {
    let n = s.chars().count();
    if n > max {
        return Err(ProtoError::Invalid {
            field,
            problem: format!("{n} characters, at most {max}"),
        });
    }
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ProtoError::Invalid {
            field,
            problem: "control characters".into(),
        });
    }
    Ok(())
}

pub fn check_id(field: &'static str, s: &str) -> Result<(), ProtoError> {
    if s.is_empty() {
        return Err(ProtoError::Invalid {
            field,
            problem: "empty".into(),
        });
    }
    check_text(field, s, MAX_ID_CHARS)?;
    if !s
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ProtoError::Invalid {
            field,
            problem: "only letters, digits, '-', '_' and '.'".into(),
        });
    }
    Ok(())
}

impl AgentMsg {
    /// Checks what serde cannot: version, ids, text sizes, a sequence number from 1.
    pub fn validate(&self) -> Result<(), ProtoError> {
        // `hello` opens a connection and is not numbered (seq 0); everything else is.
        if self.seq == 0 && !matches!(self.body, Body::Hello { .. }) {
            return Err(ProtoError::Invalid {
                field: "seq",
                problem: "sequence numbers start at 1".into(),
            });
        }
        match &self.body {
            Body::Hello { version, agent } => {
                if *version != PROTOCOL_VERSION {
                    return Err(ProtoError::Version { got: *version });
                }
                check_id("agent", agent)
            }
            Body::CallStarted { call } | Body::CallEnded { call, .. } => check_id("call", call),
            Body::Warning { call, warning } => {
                check_id("call", call)?;
                check_text("warning.message_zh", &warning.message_zh, MAX_TEXT_CHARS)?;
                check_text("warning.line", &warning.line, MAX_TEXT_CHARS)
            }
            Body::Transcript { call, segment } => {
                check_id("call", call)?;
                check_text("segment.text", &segment.text, MAX_TEXT_CHARS)
            }
            Body::HelpRequest { call, text } => {
                if let Some(c) = call {
                    check_id("call", c)?;
                }
                check_text("text", text, MAX_TEXT_CHARS)
            }
            Body::State { .. } | Body::Meters(_) => Ok(()),
        }
    }
}

fn sized(bytes: &[u8]) -> Result<(), ProtoError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtoError::TooLarge {
            size: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok(())
}

/// Parses and checks one agent message (the hub's side). Never panics on any input.
pub fn decode_agent(bytes: &[u8]) -> Result<AgentMsg, ProtoError> {
    sized(bytes)?;
    let m: AgentMsg = serde_json::from_slice(bytes).map_err(ProtoError::Malformed)?;
    m.validate()?;
    Ok(m)
}

/// Parses and checks one hub message (the agent's side). Never panics on any input.
pub fn decode_hub(bytes: &[u8]) -> Result<HubMsg, ProtoError> {
    sized(bytes)?;
    let m: HubMsg = serde_json::from_slice(bytes).map_err(ProtoError::Malformed)?;
    if let HubMsg::Whisper { from, text } = &m {
        check_text("from", from, MAX_ID_CHARS)?;
        check_text("text", text, MAX_TEXT_CHARS)?;
    }
    Ok(m)
}

/// Serialises a message (always within the limits for a message that validates).
pub fn encode<T: Serialize>(m: &T) -> Vec<u8> {
    // Serialising these types cannot fail (no maps with non-string keys, no custom impls).
    serde_json::to_vec(m).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(seq: u64, agent: &str) -> AgentMsg {
        AgentMsg {
            seq,
            at_ms: 1,
            body: Body::Hello {
                version: PROTOCOL_VERSION,
                agent: agent.into(),
            },
        }
    }

    #[test]
    fn round_trips_and_refuses_what_it_must() {
        let m = hello(1, "A1001");
        assert_eq!(decode_agent(&encode(&m)).unwrap(), m);
        let too_big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            decode_agent(&too_big),
            Err(ProtoError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_agent(b"{\"seq\":1,"),
            Err(ProtoError::Malformed(_))
        ));
        let mut old = hello(1, "A1001");
        old.body = Body::Hello {
            version: 0,
            agent: "A1001".into(),
        };
        let e = decode_agent(&encode(&old)).unwrap_err();
        assert!(e.to_string().contains("upgrade"), "{e}");
        for bad in ["", "a b", "x/../y", &"a".repeat(65)] {
            assert!(
                decode_agent(&encode(&hello(1, bad))).is_err(),
                "agent id {bad:?}"
            );
        }
        assert!(
            decode_agent(&encode(&hello(0, "A1"))).is_ok(),
            "hello is not numbered"
        );
        let mut meters = hello(0, "A1");
        meters.body = Body::Meters(MeterSample::default());
        assert!(decode_agent(&encode(&meters)).is_err(), "seq 0");
        let unknown = br#"{"seq":1,"at_ms":1,"body":{"type":"format_disk"}}"#;
        assert!(decode_agent(unknown).is_err());
    }
}

#[cfg(test)]
mod mutations {
    use super::*;

    /// The fuzz target's property on 20,000 mutations of valid messages (a deterministic
    /// stand-in for `cargo fuzz run decode_messages` where cargo-fuzz is not installed): any
    /// bytes give a typed error or a message that re-encodes to itself, never a panic.
    #[test]
    fn mutated_messages_never_panic() {
        let seeds: Vec<Vec<u8>> = vec![
            encode(&AgentMsg {
                seq: 7,
                at_ms: 1,
                body: Body::HelpRequest {
                    call: Some("c-1".into()),
                    text: "请帮忙".into(),
                },
            }),
            encode(&AgentMsg {
                seq: 3,
                at_ms: 2,
                body: Body::Meters(MeterSample::default()),
            }),
            encode(&HubMsg::Whisper {
                from: "lead".into(),
                text: "请放慢语速".into(),
            }),
            encode(&HubMsg::Ack { seq: 9 }),
        ];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let mut m = seeds[i % seeds.len()].clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % m.len().max(1);
                match next() % 3 {
                    0 => m[at] = next() as u8,
                    1 => {
                        let alphabet = b"{}[]\":,0-9e\\u";
                        m.insert(at, alphabet[(next() as usize) % alphabet.len()])
                    }
                    _ => {
                        m.remove(at);
                    }
                }
                if m.is_empty() {
                    m.push(b'{');
                }
            }
            if let Ok(a) = decode_agent(&m) {
                assert_eq!(decode_agent(&encode(&a)).unwrap(), a);
            }
            if let Ok(h) = decode_hub(&m) {
                assert_eq!(decode_hub(&encode(&h)).unwrap(), h);
            }
        }
    }
}
