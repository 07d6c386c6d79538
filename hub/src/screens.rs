//! Supervisors' sockets: `/ws/ui` (the wallboard, the alert feed and the call view's live
//! part, for the teams the user may see) and `/ws/listen/{agent}` (listen-in: the call's audio
//! for as long as the socket is open — the lease).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use callcoach_proto::wire::HubMsg;
use futures_util::{SinkExt, StreamExt};

use crate::auth::random_token;
use crate::state::{Hub, Outbound};
use crate::web::{check_oversees, cross_site, scope, user, ApiError};

pub async fn ui_upgrade(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if cross_site(&headers) {
        return ApiError(StatusCode::FORBIDDEN, "cross-site socket refused".into()).into_response();
    }
    let u = match user(&hub, &headers).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let scope = scope(&u);
    ws.max_message_size(4096)
        .on_upgrade(move |socket| ui_session(hub, scope, socket))
}

async fn ui_session(hub: Arc<Hub>, scope: crate::fanout::Scope, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (id, mut rx, behind) = hub.fanout.subscribe(scope.clone());
    let mut shutdown = hub.shutdown.clone();
    let snap = hub.fanout.snapshot(&scope);
    if sink
        .send(Message::Text(snap.to_string().into()))
        .await
        .is_ok()
    {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(text) => {
                        if sink.send(Message::Text(text.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    // Behind: what was queued is sent; then one fresh snapshot replaces what
                    // was dropped.
                    if behind.load(Ordering::Relaxed) && rx.is_empty() {
                        behind.store(false, Ordering::Relaxed);
                        let snap = hub.fanout.snapshot(&scope);
                        if sink.send(Message::Text(snap.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                }
                m = stream.next() => match m {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {} // the page sends nothing; commands go over the API
                },
                _ = shutdown.changed() => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            }
        }
    }
    hub.fanout.unsubscribe(id);
}

pub async fn listen_upgrade(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(agent): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    if cross_site(&headers) {
        return ApiError(StatusCode::FORBIDDEN, "cross-site socket refused".into()).into_response();
    }
    let u = match user(&hub, &headers).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = check_oversees(&hub, &u, &agent).await {
        return e.into_response();
    }
    if !hub.agents().contains_key(&agent) {
        return ApiError(
            StatusCode::CONFLICT,
            format!("{agent} is offline: nothing to listen to"),
        )
        .into_response();
    }
    let lease = format!("lease-{}", &random_token()[..16]);
    // On record before any audio flows.
    let (who, whom, l) = (u.name.clone(), agent.clone(), lease.clone());
    if let Err(e) = hub
        .db(move |s| s.audit(&who, "listen_start", Some(&whom), Some(&l)))
        .await
    {
        return ApiError::from(e).into_response();
    }
    let name = u.name.clone();
    ws.on_upgrade(move |socket| listen_session(hub, name, agent, lease, socket))
}

async fn listen_session(
    hub: Arc<Hub>,
    supervisor: String,
    agent: String,
    lease: String,
    socket: WebSocket,
) {
    let (mut sink, mut stream) = socket.split();
    // Join the agent's listeners; the first one asks the agent to stream.
    let audio = {
        let mut agents = hub.agents();
        agents.get_mut(&agent).map(|l| {
            let first = l.listeners.is_empty();
            l.listeners.insert(lease.clone(), supervisor.clone());
            if first {
                let _ = l.tx.send(Outbound::Msg(HubMsg::ListenStart {
                    lease: lease.clone(),
                }));
            }
            l.audio.subscribe()
        })
    };
    let why = if let Some(mut audio) = audio {
        let mut shutdown = hub.shutdown.clone();
        let mut ping = tokio::time::interval(Duration::from_secs(5));
        let mut last_heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                a = audio.recv() => match a {
                    Ok(frame) => {
                        if sink.send(Message::Binary(frame)).await.is_err() {
                            break "the page went away";
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break "the agent disconnected",
                },
                m = stream.next() => match m {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "the page went away",
                    Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
                },
                _ = ping.tick() => {
                    // A page that stopped answering pings is gone (a closed laptop).
                    if last_heard.elapsed() > Duration::from_secs(20) {
                        break "the page stopped answering";
                    }
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break "the page went away";
                    }
                }
                _ = shutdown.changed() => break "the hub shut down",
            }
        }
    } else {
        "the agent disconnected"
    };
    // The stop is on record before the agent is told to stop streaming.
    let (who, whom, l) = (
        supervisor.clone(),
        agent.clone(),
        format!("{lease} ({why})"),
    );
    if let Err(e) = hub
        .db(move |s| s.audit(&who, "listen_stop", Some(&whom), Some(&l)))
        .await
    {
        eprintln!("hub: audit of a listen stop failed: {e}");
    }
    {
        let mut agents = hub.agents();
        if let Some(l) = agents.get_mut(&agent) {
            l.listeners.remove(&lease);
            if l.listeners.is_empty() {
                let _ = l.tx.send(Outbound::Msg(HubMsg::ListenStop { lease }));
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}
