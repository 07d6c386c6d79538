//! Every role and team boundary, tried over loopback and refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use callcoach_coach::{Party, RuleId, Severity, Warning, WarningState};
use callcoach_proto::wire::{Body, HubMsg};
use common::*;

fn warning(id: &str) -> Box<Warning> {
    Box::new(Warning {
        id: id.into(),
        rule: RuleId::DeadAir,
        severity: Severity::Warning,
        party: Party::Agent,
        state: WarningState::Raised,
        t_ms: 9000,
        start_ms: 1000,
        message_zh: "冷场超过8秒".into(),
        message_en: "dead air".into(),
        evidence: Default::default(),
        line: "请您稍等，我马上为您查询".into(),
        hidden: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_sessions_and_roles() {
    let f = Fixture::start().await;
    let a = f.addr;
    // Nothing without a session.
    for path in [
        "/api/me",
        "/api/calls",
        "/api/alerts",
        "/api/audit",
        "/api/tiles/a1",
    ] {
        let (status, _, _) = http(a, "GET", path, None, &[]).await;
        assert_eq!(status, 401, "{path} without a session");
    }
    assert!(browser(a, "/ws/ui", "cc_session=forged").await.is_err());
    // Wrong password, unknown user: the same answer.
    let bad = r#"{"name":"lead_east","password":"wrong password!"}"#;
    let (s1, c1, _) = http(a, "POST", "/api/login", Some(bad), &[]).await;
    let (s2, _, _) = http(
        a,
        "POST",
        "/api/login",
        Some(r#"{"name":"nobody","password":"whatever12"}"#),
        &[],
    )
    .await;
    assert_eq!((s1, s2), (401, 401));
    assert!(c1.is_none());
    // An agent account has no supervisor pages.
    let body = format!(r#"{{"name":"a1_browser","password":"{PW}"}}"#);
    let (s, _, _) = http(a, "POST", "/api/login", Some(&body), &[]).await;
    assert_eq!(s, 403);
    // A login from another site's page is refused.
    let body = format!(r#"{{"name":"lead_east","password":"{PW}"}}"#);
    let (s, _, _) = http(
        a,
        "POST",
        "/api/login",
        Some(&body),
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert_eq!(s, 403);
    // Supervisors see no audit log; admins do, with every login on it.
    let lead = login(a, "lead_east").await;
    let (s, _, _) = http(a, "GET", "/api/audit", None, &[("Cookie", &lead)]).await;
    assert_eq!(s, 403);
    let admin = login(a, "admin").await;
    let (s, _, text) = http(a, "GET", "/api/audit", None, &[("Cookie", &admin)]).await;
    assert_eq!(s, 200);
    for action in ["login_failed", "login_refused_agent", "\"login\""] {
        assert!(text.contains(action), "audit lacks {action}: {text}");
    }
    // Logging out ends the session.
    let (s, _, _) = http(a, "POST", "/api/logout", Some("{}"), &[("Cookie", &lead)]).await;
    assert_eq!(s, 200);
    let (s, _, _) = http(a, "GET", "/api/me", None, &[("Cookie", &lead)]).await;
    assert_eq!(s, 401);
    // The audit log refuses changes.
    let db = f.db();
    assert!(db.audit_log(1).is_ok());
    let conn = rusqlite_check(&f.dir.path().join("hub.sqlite"));
    assert!(conn.contains("append-only"), "{conn}");
}

/// Tries to rewrite the audit log through a connection of its own.
fn rusqlite_check(db: &std::path::Path) -> String {
    callcoach_hub::store::try_delete_audit(db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited() {
    let f = Fixture::start().await;
    let bad = r#"{"name":"lead_west","password":"not the password"}"#;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(http(f.addr, "POST", "/api/login", Some(bad), &[]).await.0);
    }
    assert_eq!(&statuses[..5], &[401; 5]);
    assert_eq!(&statuses[5..], &[429; 2]);
    // Even the right password waits out the window.
    let body = format!(r#"{{"name":"lead_west","password":"{PW}"}}"#);
    assert_eq!(
        http(f.addr, "POST", "/api/login", Some(&body), &[]).await.0,
        429
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_publish_only_as_themselves() {
    let f = Fixture::start().await;
    // No token, a wrong token.
    let r = tokio_tungstenite::connect_async(format!("ws://{}/agent/ws", f.addr)).await;
    assert!(r.is_err(), "no token");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/agent/ws", f.addr),
    )
    .unwrap();
    req.headers_mut()
        .insert("Authorization", "Bearer 00ff".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(req).await.is_err(),
        "bad token"
    );
    // a1's token saying it is a2.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/agent/ws", f.addr),
    )
    .unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", f.tokens["a1"]).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    send(
        &mut ws,
        0,
        Body::Hello {
            version: callcoach_proto::PROTOCOL_VERSION,
            agent: "a2".into(),
        },
    )
    .await;
    match next_hub(&mut ws).await {
        Some(HubMsg::Close { reason }) => {
            assert!(reason.contains("cannot publish as a2"), "{reason}")
        }
        other => panic!("expected a close, got {other:?}"),
    }
    // A supervisor's cookie is no agent token.
    let lead = login(f.addr, "lead_east").await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/agent/ws", f.addr),
    )
    .unwrap();
    req.headers_mut().insert("Cookie", lead.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_see_listen_to_and_whisper_to_their_teams_only() {
    let f = Fixture::start().await;
    let a = f.addr;
    let (mut a1, _) = agent(a, &f.tokens["a1"], "a1").await;
    let (mut a2, _) = agent(a, &f.tokens["a2"], "a2").await;
    let east = login(a, "lead_east").await;
    let west = login(a, "lead_west").await;
    let mut east_ui = browser(a, "/ws/ui", &east).await.unwrap();
    let mut west_ui = browser(a, "/ws/ui", &west).await.unwrap();
    let snap = next_json(&mut east_ui, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(snap["type"], "snapshot");
    let agents: Vec<&str> = snap["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["a1"], "east sees its own agent only");
    let _ = next_json(&mut west_ui, Duration::from_secs(5))
        .await
        .unwrap();

    // a2 (west) starts a call and raises a warning: west hears of it, east does not.
    send(&mut a2, 1, Body::CallStarted { call: "w-1".into() }).await;
    send(
        &mut a2,
        2,
        Body::Warning {
            call: "w-1".into(),
            warning: warning("dead_air#1"),
        },
    )
    .await;
    until_hub(&mut a2, |m| matches!(m, HubMsg::Ack { seq: 2 })).await;
    let mut west_saw_alert = false;
    while let Some(m) = next_json(&mut west_ui, Duration::from_secs(2)).await {
        assert_ne!(m["tile"]["agent"], "a1");
        if m["type"] == "alert" && m["agent"] == "a2" {
            west_saw_alert = true;
            break;
        }
    }
    assert!(west_saw_alert);
    while let Some(m) = next_json(&mut east_ui, Duration::from_millis(500)).await {
        assert_ne!(m["agent"], "a2", "east must not see a2: {m}");
        assert_ne!(m["tile"]["agent"], "a2", "east must not see a2: {m}");
    }

    // Whispers: to one's own team only, and only that agent receives it.
    let w = |agent: &str| format!(r#"{{"agent":"{agent}","text":"请放慢语速"}}"#);
    let (s, _, text) = http(
        a,
        "POST",
        "/api/whisper",
        Some(&w("a2")),
        &[("Cookie", &east)],
    )
    .await;
    assert_eq!(s, 403, "{text}");
    let (s, _, text) = http(
        a,
        "POST",
        "/api/whisper",
        Some(&w("nobody")),
        &[("Cookie", &east)],
    )
    .await;
    assert_eq!(s, 403, "an unknown agent looks the same: {text}");
    let (s, _, text) = http(
        a,
        "POST",
        "/api/whisper",
        Some(&w("a1")),
        &[("Cookie", &east)],
    )
    .await;
    assert_eq!(s, 200, "{text}");
    match until_hub(&mut a1, |m| matches!(m, HubMsg::Whisper { .. })).await {
        HubMsg::Whisper { from, text } => {
            assert_eq!((from.as_str(), text.as_str()), ("lead_east", "请放慢语速"))
        }
        _ => unreachable!(),
    }
    // a2 got none: the next thing it hears is the ack of its next message.
    send(
        &mut a2,
        3,
        Body::CallEnded {
            call: "w-1".into(),
            summary: serde_json::json!({"score": 80}),
        },
    )
    .await;
    match next_hub(&mut a2).await {
        Some(HubMsg::Ack { seq: 3 }) => {}
        other => panic!("a2 should hear only its ack, got {other:?}"),
    }
    // Listening in: not to another team.
    assert!(browser(a, "/ws/listen/a2", &east).await.is_err());
    // The call and its search: not another team's.
    let (s, _, _) = http(a, "GET", "/api/calls/a2/w-1", None, &[("Cookie", &east)]).await;
    assert_eq!(s, 403);
    let (s, _, text) = http(a, "GET", "/api/calls/a2/w-1", None, &[("Cookie", &west)]).await;
    assert_eq!(s, 200, "{text}");
    let (_, _, text) = http(
        a,
        "GET",
        "/api/calls?rule=dead_air",
        None,
        &[("Cookie", &east)],
    )
    .await;
    assert!(
        !text.contains("w-1"),
        "east's search must not find west's call: {text}"
    );
    let (_, _, text) = http(
        a,
        "GET",
        "/api/calls?rule=dead_air",
        None,
        &[("Cookie", &west)],
    )
    .await;
    assert!(text.contains("w-1"), "{text}");
    let (_, _, text) = http(a, "GET", "/api/alerts", None, &[("Cookie", &east)]).await;
    assert!(!text.contains("a2"), "{text}");
    // Help requests: accepted only within one's teams.
    let (s, _, _) = http(
        a,
        "POST",
        "/api/help/accept",
        Some(r#"{"agent":"a2"}"#),
        &[("Cookie", &east)],
    )
    .await;
    assert_eq!(s, 403);
    // Every refusal was counted; the whisper is on the audit log.
    let admin = login(a, "admin").await;
    let (_, _, text) = http(a, "GET", "/api/stats", None, &[("Cookie", &admin)]).await;
    let stats: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
    assert!(
        stats["counters"]["forbidden"].as_u64().unwrap_or(0) >= 5,
        "{text}"
    );
    let (_, _, text) = http(a, "GET", "/api/audit", None, &[("Cookie", &admin)]).await;
    assert!(
        text.contains("\"whisper\"") && text.contains("请放慢语速"),
        "{text}"
    );
}
