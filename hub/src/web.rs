//! The supervisors' side over HTTP: login and sessions, the JSON API the pages use, and the
//! checks every handler makes (a session, a role, the agent's team). Each handler is a
//! function of the shared [`Hub`] and the request, testable with `tower::ServiceExt::oneshot`
//! without a network.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use callcoach_proto::wire::{HubMsg, MAX_TEXT_CHARS};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Role;
use crate::fanout::Scope;
use crate::state::{Counters, DbError, Hub, Outbound};
use crate::store::{now_ms, SearchQuery, User};

/// The session cookie's name.
pub const COOKIE: &str = "cc_session";
/// How long a session lasts.
pub const SESSION_TTL_MS: u64 = 12 * 3600 * 1000;

/// An error as the pages read it: `{"error": "..."}` with a status.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

pub type ApiResult = Result<Response, ApiError>;

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A request from another site (its `Origin` names another host than `Host`): refused for
/// anything that changes state and for sockets (cross-site WebSocket hijacking).
pub fn cross_site(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    origin_host != host
}

/// The signed-in supervisor or admin (an agent's browser login is refused at login).
pub async fn user(hub: &Arc<Hub>, headers: &HeaderMap) -> Result<User, ApiError> {
    let Some(c) = cookie(headers, COOKIE).map(str::to_string) else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "not signed in: log in at /login".into(),
        ));
    };
    match hub.db(move |s| s.session_user(&c)).await? {
        Some(u) if u.role != Role::Agent => Ok(u),
        Some(_) => Err(ApiError(
            StatusCode::FORBIDDEN,
            "agents have no supervisor pages".into(),
        )),
        None => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "session expired: log in again at /login".into(),
        )),
    }
}

/// What `u`'s screens may see.
pub fn scope(u: &User) -> Scope {
    match u.role {
        Role::Admin => Scope::All,
        _ => Scope::Teams(u.teams.clone()),
    }
}

/// Refuses (and counts) unless `u` oversees agent `agent`'s team. Unknown agents are
/// refused the same way, so the answer does not tell which agents exist.
pub async fn check_oversees(
    hub: &Arc<Hub>,
    u: &User,
    agent: &str,
) -> Result<Option<i64>, ApiError> {
    let a = agent.to_string();
    let team = hub
        .db(move |s| {
            Ok(s.user_by_name(&a)?
                .filter(|u| u.role == Role::Agent)
                .map(|u| u.teams.first().copied()))
        })
        .await?;
    match team {
        Some(t) if u.oversees(t) => Ok(t),
        _ => {
            Counters::bump(&hub.counters.forbidden);
            Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("{agent} is not in your teams"),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub name: String,
    pub password: String,
}

pub async fn login(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(f): Json<LoginForm>,
) -> ApiResult {
    if cross_site(&headers) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "cross-site login refused".into(),
        ));
    }
    let name: String = f.name.chars().take(64).collect();
    let now = now_ms();
    let limited =
        hub.limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(&name, addr.ip(), now);
    if let Err(wait) = limited {
        let (n, ip) = (name.clone(), addr.ip().to_string());
        hub.db(move |s| s.audit(&n, "login_rate_limited", None, Some(&ip)))
            .await?;
        let mut r = ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed logins: try again in {wait} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let (n, pw, ip) = (name.clone(), f.password, addr.ip().to_string());
    // Verification, the audit record and the session in one blocking call: the login is on
    // record before the session exists.
    let outcome = hub
        .db(move |s| {
            let u = s.check_password(&n, &pw)?;
            match &u {
                Some(u) if u.role != Role::Agent => {
                    s.audit(&n, "login", None, Some(&ip))?;
                    let token = s.new_session(u.id, SESSION_TTL_MS)?;
                    Ok(Ok((u.clone(), token)))
                }
                Some(_) => {
                    s.audit(&n, "login_refused_agent", None, Some(&ip))?;
                    Ok(Err(true))
                }
                None => {
                    s.audit(&n, "login_failed", None, Some(&ip))?;
                    Ok(Err(false))
                }
            }
        })
        .await?;
    let mut limiter = hub.limiter.lock().unwrap_or_else(|p| p.into_inner());
    match outcome {
        Ok((u, token)) => {
            limiter.succeeded(&name);
            let secure = if hub.tls { "; Secure" } else { "" };
            let c = format!(
                "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
                SESSION_TTL_MS / 1000
            );
            let mut r = Json(json!({"name": u.name, "role": u.role})).into_response();
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(r)
        }
        Err(agent) => {
            limiter.failed(&name, addr.ip(), now);
            Err(if agent {
                ApiError(
                    StatusCode::FORBIDDEN,
                    "agent accounts have no supervisor pages".into(),
                )
            } else {
                ApiError(StatusCode::UNAUTHORIZED, "wrong name or password".into())
            })
        }
    }
}

pub async fn logout(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> ApiResult {
    if let Some(c) = cookie(&headers, COOKIE).map(str::to_string) {
        hub.db(move |s| s.end_session(&c)).await?;
    }
    let mut r = Json(json!({"ok": true})).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cc_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(r)
}

pub async fn me(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> ApiResult {
    let u = user(&hub, &headers).await?;
    let ids = u.teams.clone();
    let names = hub
        .db(move |s| {
            ids.iter()
                .map(|t| s.team_name(*t))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let agents = hub.fanout.agents(&scope(&u));
    Ok(Json(json!({
        "name": u.name, "role": u.role,
        "teams": names.into_iter().flatten().collect::<Vec<_>>(),
        "agents": agents,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct WhisperForm {
    pub agent: String,
    pub text: String,
}

/// A typed whisper: on record first, then to that agent's overlay only.
pub async fn whisper(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Json(f): Json<WhisperForm>,
) -> ApiResult {
    if cross_site(&headers) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "cross-site request refused".into(),
        ));
    }
    let u = user(&hub, &headers).await?;
    check_oversees(&hub, &u, &f.agent).await?;
    let text = f.text.trim().to_string();
    if text.is_empty() || text.chars().count() > 500 || text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "a whisper is 1 to 500 characters".into(),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "no control characters in a whisper".into(),
        ));
    }
    if !hub.agents().contains_key(&f.agent) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("{} is offline: the whisper was not sent", f.agent),
        ));
    }
    let (who, whom, t) = (u.name.clone(), f.agent.clone(), text.clone());
    hub.db(move |s| s.audit(&who, "whisper", Some(&whom), Some(&t)))
        .await?;
    let sent = hub.send_to_agent(
        &f.agent,
        Outbound::Msg(HubMsg::Whisper {
            from: u.name.clone(),
            text,
        }),
    );
    if !sent {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("{} went offline: the whisper was not sent", f.agent),
        ));
    }
    Counters::bump(&hub.counters.whispers);
    Ok(Json(json!({"sent": true})).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AgentForm {
    pub agent: String,
}

pub async fn accept_help(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Json(f): Json<AgentForm>,
) -> ApiResult {
    if cross_site(&headers) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "cross-site request refused".into(),
        ));
    }
    let u = user(&hub, &headers).await?;
    check_oversees(&hub, &u, &f.agent).await?;
    let (who, whom) = (u.name.clone(), f.agent.clone());
    hub.db(move |s| s.audit(&who, "help_accepted", Some(&whom), None))
        .await?;
    let accepted = hub.fanout.accept_help(&f.agent);
    if accepted {
        hub.send_to_agent(
            &f.agent,
            Outbound::Msg(HubMsg::Whisper {
                from: u.name.clone(),
                text: format!("{} 已接受求助,马上联系你 (help accepted)", u.name),
            }),
        );
    }
    Ok(Json(json!({"accepted": accepted})).into_response())
}

pub async fn search(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> ApiResult {
    let u = user(&hub, &headers).await?;
    let teams = match u.role {
        Role::Admin => None,
        _ => Some(u.teams.clone()),
    };
    let rows = hub.db(move |s| s.search(&q, teams.as_deref())).await?;
    Ok(Json(json!({ "calls": rows })).into_response())
}

pub async fn call(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path((agent, call)): Path<(String, String)>,
) -> ApiResult {
    let u = user(&hub, &headers).await?;
    check_oversees(&hub, &u, &agent).await?;
    let (a, c) = (agent.clone(), call.clone());
    let found = hub.db(move |s| s.call(&a, &c)).await?;
    let Some((row, _team, events)) = found else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no call {call} of {agent}"),
        ));
    };
    let live = hub.fanout.tile(&agent).map(|(_, t)| t);
    Ok(Json(json!({"call": row, "events": events, "tile": live})).into_response())
}

pub async fn tile(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Path(agent): Path<String>,
) -> ApiResult {
    let u = user(&hub, &headers).await?;
    check_oversees(&hub, &u, &agent).await?;
    let t = hub.fanout.tile(&agent).map(|(_, t)| t);
    Ok(Json(json!({ "tile": t })).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AlertQuery {
    pub limit: Option<u32>,
}

pub async fn alerts(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(q): Query<AlertQuery>,
) -> ApiResult {
    let u = user(&hub, &headers).await?;
    let teams = match u.role {
        Role::Admin => None,
        _ => Some(u.teams.clone()),
    };
    let limit = q.limit.unwrap_or(200).min(2000);
    let rows = hub
        .db(move |s| s.recent_alerts(teams.as_deref(), limit))
        .await?;
    let alerts: Vec<_> = rows
        .into_iter()
        .map(|(agent, e)| json!({"agent": agent, "at_ms": e.at_ms, "body": e.body}))
        .collect();
    Ok(Json(json!({ "alerts": alerts })).into_response())
}

pub async fn audit(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> ApiResult {
    let u = user(&hub, &headers).await?;
    if u.role != Role::Admin {
        Counters::bump(&hub.counters.forbidden);
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "the audit log is for admins".into(),
        ));
    }
    let rows = hub.db(|s| s.audit_log(1000)).await?;
    Ok(Json(json!({ "audit": rows })).into_response())
}

pub async fn stats(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> ApiResult {
    let u = user(&hub, &headers).await?;
    if u.role != Role::Admin {
        Counters::bump(&hub.counters.forbidden);
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "stats are for admins".into(),
        ));
    }
    Ok(Json(json!({
        "counters": &hub.counters,
        "agents_online": hub.agents().len(),
        "screens": hub.fanout.screens(),
        "dropped_for_slow_screens": hub.fanout.dropped_for_slow_screens.load(std::sync::atomic::Ordering::Relaxed),
    }))
    .into_response())
}
