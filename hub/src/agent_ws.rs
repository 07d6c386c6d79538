//! An agent's socket (`GET /agent/ws`, `Authorization: Bearer TOKEN`).
//!
//! The first message is `hello` naming the agent the token belongs to; the hub answers with an
//! `ack` of the last message it has stored of that agent (the agent drops those from its
//! spool and resends the rest). Then every numbered message goes to the writer in order and is
//! acknowledged once stored. Binary frames are the call's audio, forwarded only while a
//! supervisor listens. Anything malformed, oversized, out of order or from another agent
//! closes the connection with the reason (counted); the hub goes on.
//!
//! The socket is split: one task writes (acks, whispers, listen leases), this one reads.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use callcoach_proto::seq::{SeqCheck, Verdict};
use callcoach_proto::wire::{decode_agent, encode, Body, HubMsg, ProtoError, MAX_MESSAGE_BYTES};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{broadcast, mpsc};

use crate::state::{AgentLink, Counters, Hub, Outbound};
use crate::store::User;
use crate::writer::WriteJob;

/// Time allowed for the `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// An agent silent for this long (no message, no pong) is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub async fn upgrade(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(token) = bearer(&headers).map(str::to_string) else {
        Counters::bump(&hub.counters.refused_auth);
        return (
            StatusCode::UNAUTHORIZED,
            "send the agent's token as `Authorization: Bearer TOKEN` (an admin makes one with `callcoach hub token AGENT`)",
        )
            .into_response();
    };
    let user = match hub.db(move |s| s.user_by_agent_token(&token)).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            Counters::bump(&hub.counters.refused_auth);
            return (
                StatusCode::UNAUTHORIZED,
                "unknown agent token: ask an admin for a new one (`callcoach hub token AGENT`)",
            )
                .into_response();
        }
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session(hub, user, socket))
}

fn close_frame(reason: &str) -> Message {
    // A close frame's reason is at most 123 bytes: cut on a character boundary.
    let mut r = reason.to_string();
    while r.len() > 123 {
        r.pop();
    }
    Message::Close(Some(CloseFrame {
        code: 1008,
        reason: Utf8Bytes::from(r),
    }))
}

async fn session(hub: Arc<Hub>, user: User, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    // The writing half: acks, whispers, leases; a close ends it.
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(Outbound::Msg(m)) => {
                        let text = String::from_utf8(encode(&m)).unwrap_or_default();
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Outbound::Close(reason)) => {
                        let m = HubMsg::Close { reason: reason.clone() };
                        let text = String::from_utf8(encode(&m)).unwrap_or_default();
                        let _ = sink.send(Message::Text(text.into())).await;
                        let _ = sink.send(close_frame(&reason)).await;
                        break;
                    }
                    None => break,
                },
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let refuse = |reason: String| {
        let _ = tx.send(Outbound::Close(reason));
    };

    // Hello.
    let first = tokio::time::timeout(HELLO_TIMEOUT, stream.next()).await;
    let hello = match first {
        Ok(Some(Ok(Message::Text(t)))) => decode_agent(t.as_bytes()),
        Ok(Some(Ok(_))) => Err(ProtoError::Invalid {
            field: "hello",
            problem: "the first message must be a text `hello`".into(),
        }),
        _ => {
            refuse("no hello within 10 s".into());
            let _ = writer.await;
            return;
        }
    };
    match hello {
        Ok(m) => match &m.body {
            Body::Hello { agent, .. } if *agent == user.name => {}
            Body::Hello { agent, .. } => {
                Counters::bump(&hub.counters.forbidden);
                refuse(format!(
                    "this token is agent {}'s; it cannot publish as {agent}",
                    user.name
                ));
                let _ = writer.await;
                return;
            }
            _ => {
                Counters::bump(&hub.counters.malformed);
                refuse("the first message must be `hello`".into());
                let _ = writer.await;
                return;
            }
        },
        Err(e) => {
            count_error(&hub, &e);
            refuse(format!("hello refused: {e}"));
            let _ = writer.await;
            return;
        }
    }
    let agent = user.name.clone();
    let team = user.teams.first().copied();
    let (last, team_name) = {
        let a = agent.clone();
        match hub
            .db(move |s| {
                let last = s.last_seq(&a)?;
                let name = match team {
                    Some(t) => s.team_name(t)?,
                    None => None,
                };
                Ok((last, name))
            })
            .await
        {
            Ok(x) => x,
            Err(e) => {
                refuse(format!("the hub's database failed ({e}); try again"));
                let _ = writer.await;
                return;
            }
        }
    };
    Counters::bump(&hub.counters.agent_connections);
    let conn = hub
        .next_conn
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (audio, _) = broadcast::channel(64);
    let old = hub.agents().insert(
        agent.clone(),
        AgentLink {
            conn,
            team,
            tx: tx.clone(),
            audio,
            listeners: Default::default(),
        },
    );
    if let Some(old) = old {
        let _ = old
            .tx
            .send(Outbound::Close("replaced by a newer connection".into()));
    }
    let _ = tx.send(Outbound::Msg(HubMsg::Ack { seq: last }));
    hub.fanout.connected(&agent, team, team_name);

    let mut check = SeqCheck::new(last);
    let mut shutdown = hub.shutdown.clone();
    loop {
        let next = tokio::select! {
            m = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => m,
            _ = shutdown.changed() => {
                refuse("the hub is shutting down; reconnect later (your spool keeps everything)".into());
                break;
            }
        };
        let msg = match next {
            Err(_) => {
                refuse("nothing heard for 30 s".into());
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                // Too large a frame or a broken socket.
                let text = e.to_string().to_lowercase();
                if ["size", "too long", "limit"]
                    .iter()
                    .any(|w| text.contains(w))
                {
                    Counters::bump(&hub.counters.oversized);
                    refuse(format!("message over {MAX_MESSAGE_BYTES} bytes"));
                }
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Text(t) => {
                let m = match decode_agent(t.as_bytes()) {
                    Ok(m) => m,
                    Err(e) => {
                        count_error(&hub, &e);
                        refuse(format!("refused: {e}"));
                        break;
                    }
                };
                if matches!(m.body, Body::Hello { .. }) {
                    Counters::bump(&hub.counters.malformed);
                    refuse("a second hello".into());
                    break;
                }
                match check.judge(m.seq) {
                    Verdict::New | Verdict::Duplicate => {}
                    Verdict::Gap { expected } => {
                        Counters::bump(&hub.counters.out_of_order);
                        refuse(format!(
                            "out of order: expected message {expected}, got {}",
                            m.seq
                        ));
                        break;
                    }
                }
                let job = WriteJob {
                    agent: agent.clone(),
                    team,
                    msg: m,
                    reply: tx.clone(),
                };
                if hub.writer.send(job).await.is_err() {
                    refuse("the hub is shutting down".into());
                    break;
                }
            }
            Message::Binary(b) => {
                Counters::bump(&hub.counters.audio_frames);
                if let Some(l) = hub.agents().get(&agent).filter(|l| l.conn == conn) {
                    if !l.listeners.is_empty() {
                        let _ = l.audio.send(b);
                    }
                }
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    let current = {
        let mut agents = hub.agents();
        let current = agents.get(&agent).is_some_and(|l| l.conn == conn);
        if current {
            agents.remove(&agent);
        }
        current
    };
    if current {
        hub.fanout.disconnected(&agent);
    }
    drop(tx);
    let _ = writer.await;
}

fn count_error(hub: &Hub, e: &ProtoError) {
    match e {
        ProtoError::TooLarge { .. } => Counters::bump(&hub.counters.oversized),
        _ => Counters::bump(&hub.counters.malformed),
    }
}
