//! Nothing lost, nothing doubled: across a hub restart, with an agent resending from its
//! spool; bad messages close only their connection; listen-in follows its lease; meters are
//! thinned for screens.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use callcoach_coach::{Party, RuleId, Severity, TranscriptSegment, Warning, WarningState};
use callcoach_proto::spool::Spool;
use callcoach_proto::wire::{encode, Body, HubMsg, MeterSample};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn body(i: u64) -> Body {
    match i % 3 {
        0 => Body::Warning {
            call: "c-1".into(),
            warning: Box::new(Warning {
                id: format!("dead_air#{i}"),
                rule: RuleId::DeadAir,
                severity: Severity::Warning,
                party: Party::Agent,
                state: WarningState::Raised,
                t_ms: i * 100,
                start_ms: i * 100,
                message_zh: "冷场".into(),
                message_en: String::new(),
                evidence: Default::default(),
                line: String::new(),
                hidden: None,
            }),
        },
        1 => Body::Transcript {
            call: "c-1".into(),
            segment: TranscriptSegment {
                party: Party::Caller,
                start_ms: i * 100,
                end_ms: i * 100 + 90,
                text: format!("第{i}句"),
            },
        },
        _ => Body::Meters(MeterSample::default()),
    }
}

/// Sends everything the spool holds after `after`; reads acks into the spool.
async fn pump(ws: &mut Ws, spool: &mut Spool, after: u64) {
    let pending: Vec<_> = spool.pending().filter(|m| m.seq > after).cloned().collect();
    for m in pending {
        let _ = ws
            .send(Message::Text(String::from_utf8(encode(&m)).unwrap().into()))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restart_mid_call_loses_and_doubles_nothing() {
    let mut f = Fixture::start().await;
    let spool_dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(spool_dir.path(), 1 << 24).unwrap();
    let (mut ws, last) = agent(f.addr, &f.tokens["a1"], "a1").await;
    assert_eq!(last, 0);
    spool
        .push(1, Body::CallStarted { call: "c-1".into() })
        .unwrap();
    for i in 0..300 {
        spool.push(i, body(i)).unwrap();
    }
    pump(&mut ws, &mut spool, 0).await;
    // Some acks arrive, then the hub goes away mid-stream.
    for _ in 0..20 {
        if let Some(HubMsg::Ack { seq }) = next_hub(&mut ws).await {
            spool.ack(seq).unwrap();
        }
    }
    f.restart().await;
    // While it was down the agent went on (spooled).
    for i in 300..600 {
        spool.push(i, body(i)).unwrap();
    }
    spool
        .push(
            9,
            Body::CallEnded {
                call: "c-1".into(),
                summary: serde_json::json!({"score": 90}),
            },
        )
        .unwrap();
    let total = spool.pending().last().unwrap().seq;
    // Reconnect: the hub says what it has; the agent resends the rest (some twice).
    let (mut ws, last) = agent(f.addr, &f.tokens["a1"], "a1").await;
    assert!(last >= 1 && last <= total, "{last}");
    spool.ack(last).unwrap();
    // Resend from a little before what the hub has, as a flaky link would (duplicates).
    pump(&mut ws, &mut spool, 0).await;
    while spool.acked() < total {
        match next_hub(&mut ws).await {
            Some(HubMsg::Ack { seq }) => spool.ack(seq).unwrap(),
            Some(_) => {}
            None => panic!("the hub closed the link at {}", spool.acked()),
        }
    }
    let db = f.db();
    let warnings = (0..600).filter(|i| i % 3 == 0).count() as u64;
    let transcripts = (0..600).filter(|i| i % 3 == 1).count() as u64;
    assert_eq!(db.count_events(Some("a1"), "warning").unwrap(), warnings);
    assert_eq!(
        db.count_events(Some("a1"), "transcript").unwrap(),
        transcripts
    );
    assert_eq!(db.count_events(Some("a1"), "call_ended").unwrap(), 1);
    assert_eq!(db.last_seq("a1").unwrap(), total);
    // The call is searchable by what was said, with its score.
    let q = callcoach_hub::store::SearchQuery {
        q: Some("第598句".into()),
        ..Default::default()
    };
    let rows = db.search(&q, None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].score, Some(90.0));
    assert_eq!(rows[0].rules_broken, ["dead_air"]);
}

async fn closed_with(ws: &mut Ws) -> String {
    loop {
        match next_hub(ws).await {
            Some(HubMsg::Close { reason }) => return reason,
            Some(_) => {}
            None => return "(closed without a reason)".into(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_close_their_connection_with_a_reason_and_are_counted() {
    let f = Fixture::start().await;
    let (mut ws, _) = agent(f.addr, &f.tokens["a1"], "a1").await;
    ws.send(Message::Text("{\"seq\":1,".into())).await.unwrap();
    let r = closed_with(&mut ws).await;
    assert!(r.contains("malformed"), "{r}");

    let (mut ws, _) = agent(f.addr, &f.tokens["a1"], "a1").await;
    let big = format!(
        r#"{{"seq":1,"at_ms":1,"body":{{"type":"help_request","call":null,"text":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    let _ = ws.send(Message::Text(big.into())).await;
    let r = closed_with(&mut ws).await;
    assert!(r.contains("bytes") || r.contains("closed"), "{r}");

    let (mut ws, last) = agent(f.addr, &f.tokens["a1"], "a1").await;
    send(&mut ws, last + 5, Body::CallStarted { call: "c".into() }).await;
    let r = closed_with(&mut ws).await;
    assert!(r.contains("out of order"), "{r}");

    // The hub is fine and counted each.
    let (mut ws, last) = agent(f.addr, &f.tokens["a1"], "a1").await;
    send(&mut ws, last + 1, Body::CallStarted { call: "c".into() }).await;
    until_hub(&mut ws, |m| matches!(m, HubMsg::Ack { .. })).await;
    let c = &f.hub.as_ref().unwrap().hub.counters;
    use std::sync::atomic::Ordering::Relaxed;
    assert!(c.malformed.load(Relaxed) >= 1);
    assert!(c.oversized.load(Relaxed) >= 1);
    assert_eq!(c.out_of_order.load(Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_in_audio_flows_only_while_the_lease_lasts() {
    let f = Fixture::start().await;
    let (mut a1, _) = agent(f.addr, &f.tokens["a1"], "a1").await;
    let lead = login(f.addr, "lead_east").await;
    // Before anyone listens, the agent's frames go nowhere.
    let frame = |n: u8| {
        let mut b = b"CCA1".to_vec();
        b.extend_from_slice(&16000u32.to_le_bytes());
        b.extend(std::iter::repeat_n(n, 3200));
        Message::Binary(b.into())
    };
    a1.send(frame(1)).await.unwrap();
    let mut listen = browser(f.addr, "/ws/listen/a1", &lead).await.unwrap();
    let lease = match until_hub(&mut a1, |m| matches!(m, HubMsg::ListenStart { .. })).await {
        HubMsg::ListenStart { lease } => lease,
        _ => unreachable!(),
    };
    for n in 2..6 {
        a1.send(frame(n)).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 4 {
        match tokio::time::timeout(Duration::from_secs(5), listen.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => got.push(b[8]),
            Ok(Some(Ok(_))) => {}
            other => panic!("listen socket: {other:?}"),
        }
    }
    assert_eq!(
        got,
        [2, 3, 4, 5],
        "in order, and nothing from before the lease"
    );
    // The page goes away: the agent is told to stop, and both ends are on record.
    drop(listen);
    match until_hub(&mut a1, |m| matches!(m, HubMsg::ListenStop { .. })).await {
        HubMsg::ListenStop { lease: l } => assert_eq!(l, lease),
        _ => unreachable!(),
    }
    let log = f.db().audit_log(100).unwrap();
    let start = log.iter().find(|r| r.action == "listen_start").unwrap();
    let stop = log.iter().find(|r| r.action == "listen_stop").unwrap();
    assert_eq!(start.actor, "lead_east");
    assert_eq!(start.target.as_deref(), Some("a1"));
    assert!(stop.detail.as_deref().unwrap().starts_with(&lease));
    assert!(stop.id > start.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_left_open_by_a_dead_hub_is_closed_on_record_at_start() {
    let f = Fixture::start().await;
    let mut db = f.db();
    db.audit("lead_east", "listen_start", Some("a1"), Some("lease-x"))
        .unwrap();
    drop(db);
    let mut f = f;
    f.restart().await;
    let log = f.db().audit_log(10).unwrap();
    let stop = log.iter().find(|r| r.action == "listen_stop").unwrap();
    assert!(stop
        .detail
        .as_deref()
        .unwrap()
        .contains("lease-x (hub restarted)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_reach_screens_at_most_about_twice_a_second() {
    let f = Fixture::start().await;
    let (mut a1, _) = agent(f.addr, &f.tokens["a1"], "a1").await;
    let lead = login(f.addr, "lead_east").await;
    let mut ui = browser(f.addr, "/ws/ui", &lead).await.unwrap();
    let _ = next_json(&mut ui, Duration::from_secs(5)).await;
    // Three seconds of meters at 10 Hz.
    let reader = tokio::spawn(async move {
        let mut tiles = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(3300);
        while let Ok(Some(m)) =
            tokio::time::timeout_at(deadline, next_json(&mut ui, Duration::from_secs(4))).await
        {
            if m["type"] == "tile" {
                tiles += 1;
            }
        }
        tiles
    });
    for i in 1..=30 {
        let meters = MeterSample {
            call_ms: Some(i * 100),
            ..Default::default()
        };
        send(&mut a1, i, Body::Meters(meters)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tiles = reader.await.unwrap();
    assert!(
        (4..=8).contains(&tiles),
        "{tiles} tile updates for 30 meter messages in 3 s"
    );
}
