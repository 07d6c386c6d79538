#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! The coach end to end: rule-book commands, transcripts, and rules firing (or not) on
//! two-channel calls synthesized with espeak-ng and placed on a timeline, checked against
//! golden JSON in tests/golden/ (`UPDATE_GOLDEN=1` rewrites them after a deliberate change).
mod common;
use common::*;
use std::path::Path;

use serde_json::Value;

fn json_of(args: &[&str], dir: &Path) -> Value {
    let out = dir.join("report.json");
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--json", p(&out)]);
    let o = callcoach(&a);
    assert!(
        o.status.success(),
        "{a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out).expect("report")).expect("json")
}

/// The raised warnings of a report as (rule, severity, message head, time s).
fn raised(report: &Value) -> Vec<(String, String, String, f64)> {
    report["coach"]["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| w["state"] == "raised")
        .map(|w| {
            let msg = w["message_zh"].as_str().unwrap_or("");
            // Measured numbers after the colon vary with the synthesizer's version.
            let head = msg.split('：').next().unwrap_or(msg).to_string();
            (
                w["rule"].as_str().unwrap_or("").into(),
                w["severity"].as_str().unwrap_or("").into(),
                head,
                w["t_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            )
        })
        .collect()
}

fn golden(name: &str, report: &Value) {
    let got = raised(report);
    let path = fixture(&format!("../golden/{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let v: Vec<Value> = got.iter().map(|(r, s, m, t)| serde_json::json!({"rule": r, "severity": s, "message": m, "t_s": (t * 10.0).round() / 10.0})).collect();
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
        return;
    }
    let want: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: got {got:#?}, golden {want:#?}"
    );
    for ((r, s, m, t), w) in got.iter().zip(&want) {
        assert_eq!(r, w["rule"].as_str().unwrap(), "{name}");
        assert_eq!(s, w["severity"].as_str().unwrap(), "{name}");
        assert_eq!(m, w["message"].as_str().unwrap(), "{name}");
        let wt = w["t_s"].as_f64().unwrap();
        assert!(
            (t - wt).abs() <= 0.5,
            "{name}: {r} at {t:.2} s, golden {wt} s"
        );
    }
}

fn line(dir: &Path, name: &str, pinyin: &str, speed: u32) -> Vec<f32> {
    trimmed_speech(dir, name, pinyin, speed, 0.4)
}

/// Places lines on a two-channel timeline: (party 0 = agent / 1 = caller, start s, samples).
fn call(path: &Path, parts: &[(usize, f64, &[f32])], end_s: f64) {
    let len = (end_s * 16000.0) as usize;
    let mut ch = [vec![0.0f32; len], vec![0.0f32; len]];
    for &(party, at, samples) in parts {
        let start = (at * 16000.0) as usize;
        for (i, x) in samples.iter().enumerate() {
            if let Some(slot) = ch[party].get_mut(start + i) {
                *slot += x;
            }
        }
    }
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..len {
        for c in &ch {
            w.write_sample((c[i].clamp(-1.0, 1.0) * 32767.0) as i16)
                .unwrap();
        }
    }
    w.finalize().unwrap();
}

fn secs(x: &[f32]) -> f64 {
    x.len() as f64 / 16000.0
}

const GREETING: &str = "nin2 hao3 shi4 li4 gong1 si1 qing3 wen4 you3 shen2 me5 ke3 yi3 bang1 nin2";
const QUESTION: &str = "wo3 xiang3 cha2 yi2 xia4 wo3 de5 zhang4 dan1 wei4 shen2 me5 zhe4 me5 gao1";

#[test]
fn rule_book_commands() {
    let dir = tmpdir();
    let out = callcoach(&["rules", "--print-default"]);
    assert!(out.status.success());
    let book = dir.path().join("rules.toml");
    std::fs::write(&book, &out.stdout).unwrap();
    let ok = callcoach(&["rules", "--check", p(&book)]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let bad_text = text
        .replace("max_cpm = 150", "max_cpm = \"fast\"")
        .replace("min_overlap_s = 0.5", "min_overlap_s = 50")
        .replace("[rules.dead_air]", "[rules.deadair]");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, &bad_text).unwrap();
    let o = callcoach(&["rules", "--check", p(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    let report = String::from_utf8_lossy(&o.stdout);
    let line_of = |needle: &str| bad_text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        report.contains(&format!("bad.toml:{}:", line_of("max_cpm = \"fast\""))),
        "{report}"
    );
    assert!(
        report.contains("rules.rate.max_cpm: expected a number"),
        "{report}"
    );
    assert!(
        report.contains(&format!("bad.toml:{}:", line_of("min_overlap_s = 50"))),
        "{report}"
    );
    assert!(
        report.contains("rules.interrupt.min_overlap_s: 50 is out of range"),
        "{report}"
    );
    assert!(report.contains("rules.deadair: unknown rule"), "{report}");
    // analyze refuses a bad rule book, naming it.
    let o = callcoach(&["analyze", p(&fixture("demo-call.wav")), "--rules", p(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.toml"));
    let garbage = dir.path().join("garbage.toml");
    std::fs::write(&garbage, "[settings\ncompany = 1").unwrap();
    let o = callcoach(&["rules", "--check", p(&garbage)]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("garbage.toml:1:"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn demo_call_with_transcript() {
    let dir = tmpdir();
    let r = json_of(
        &[
            "analyze",
            p(&fixture("demo-call.wav")),
            "--transcript",
            p(&fixture("demo-call.transcript.jsonl")),
        ],
        dir.path(),
    );
    golden("demo-call-transcript", &r);
    assert_eq!(r["coach"]["transcript"], true);
    let scores = r["coach"]["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 14, "a score per rule");
    assert!(r["agent"]["longest_monologue_s"].as_f64().unwrap() > 3.0);
    // Malformed transcript: file and line named, exit 2.
    let bad = dir.path().join("t.jsonl");
    std::fs::write(&bad, "{\"party\":\"agent\",\"start\":0,\"end\":1,\"text\":\"好\"}\n{\"party\":\"agent\",\"start\":\"x\"}\n").unwrap();
    let o = callcoach(&[
        "analyze",
        p(&fixture("demo-call.wav")),
        "--transcript",
        p(&bad),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("t.jsonl:2:"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn speech_rate_rule_on_synthesized_agents() {
    let dir = tmpdir();
    let d = dir.path();
    let fast = line(d, "fast", &format!("{PINYIN_40} {PINYIN_40}"), 200);
    let q = line(d, "q", QUESTION, 150);
    let path = d.join("fast.wav");
    call(
        &path,
        &[(1, 0.3, &q), (0, 0.5 + secs(&q), &fast)],
        1.0 + secs(&q) + secs(&fast),
    );
    golden("rate-too-fast", &json_of(&["analyze", p(&path)], d));
    let normal = line(d, "normal", &format!("{PINYIN_40} {PINYIN_40}"), 90);
    let path = d.join("normal.wav");
    call(
        &path,
        &[(1, 0.3, &q), (0, 0.5 + secs(&q), &normal)],
        1.0 + secs(&q) + secs(&normal),
    );
    let r = json_of(&["analyze", p(&path)], d);
    assert!(raised(&r).iter().all(|w| w.0 != "rate"), "{:?}", raised(&r));
}

#[test]
fn dead_air_and_interruption_on_synthesized_calls() {
    let dir = tmpdir();
    let d = dir.path();
    let g = line(d, "g", GREETING, 150);
    let q = line(d, "q", QUESTION, 150);
    // Greeting, question, 10 s of nothing, answer.
    let t_q = 0.5 + secs(&g) + 0.5;
    let t_a = t_q + secs(&q) + 10.0;
    let path = d.join("dead.wav");
    call(
        &path,
        &[(0, 0.5, &g), (1, t_q, &q), (0, t_a, &g)],
        t_a + secs(&g) + 0.5,
    );
    golden("dead-air", &json_of(&["analyze", p(&path)], d));
    // The agent starts answering 1.5 s before the caller has finished.
    let t_a = t_q + secs(&q) - 1.5;
    let path = d.join("interrupt.wav");
    call(
        &path,
        &[(0, 0.5, &g), (1, t_q, &q), (0, t_a, &g)],
        t_a + secs(&g) + 0.5,
    );
    let r = json_of(&["analyze", p(&path)], d);
    golden("interrupt", &r);
    // Warned when the overlap is 0.5 s old (the rule's window), not when it ends.
    let at: Vec<f64> = raised(&r)
        .into_iter()
        .filter(|w| w.0 == "interrupt")
        .map(|w| w.3)
        .collect();
    assert_eq!(at.len(), 1, "{at:?}");
    assert!(
        (at[0] - (t_a + 0.5)).abs() <= 0.15,
        "interrupt at {:.2} s; the agent started at {t_a:.2} s",
        at[0]
    );
    // …and waits for the caller: nothing.
    let t_a = t_q + secs(&q) + 0.6;
    let path = d.join("polite.wav");
    call(
        &path,
        &[(0, 0.5, &g), (1, t_q, &q), (0, t_a, &g)],
        t_a + secs(&g) + 0.5,
    );
    let r = json_of(&["analyze", p(&path)], d);
    assert!(raised(&r).is_empty(), "{:?}", raised(&r));
}

#[test]
fn silent_caller_protocol_on_a_synthesized_call() {
    let dir = tmpdir();
    let d = dir.path();
    let g = line(d, "g", GREETING, 150);
    // The agent follows every prompt half a second after it appears.
    let mut parts: Vec<(usize, f64, &[f32])> = vec![(0, 0.5, &g)];
    let mut end = 0.5 + secs(&g);
    for wait in [3.0, 5.0, 5.0] {
        let at = end + wait + 0.5;
        parts.push((0, at, &g));
        end = at + secs(&g);
    }
    let path = d.join("silent.wav");
    call(&path, &parts, end + 6.0);
    let r = json_of(&["analyze", p(&path)], d);
    golden("silent-caller", &r);
    let steps: Vec<String> = r["coach"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["rule"] == "silent_caller" && w["state"] != "cleared")
        .map(|w| w["message_zh"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps.len(), 4, "{steps:?}");
}

fn scaled(x: &[f32], db: f32) -> Vec<f32> {
    let g = 10f32.powf(db / 20.0);
    x.iter().map(|v| v * g).collect()
}

#[test]
fn loudness_rules_on_synthesized_calls() {
    let dir = tmpdir();
    let d = dir.path();
    let g = line(d, "g", GREETING, 150);
    let long = line(d, "long", PINYIN_40, 140);
    let q = line(d, "q", &format!("{QUESTION} {QUESTION}"), 140);
    let t_q = 0.5 + secs(&g) + 0.5;
    let t_a = t_q + secs(&q) + 0.5;
    let end = t_a + secs(&long) + 0.5;
    // Normal levels: nothing.
    let path = d.join("ok.wav");
    call(&path, &[(0, 0.5, &g), (1, t_q, &q), (0, t_a, &long)], end);
    let r = json_of(&["analyze", p(&path)], d);
    let rules: Vec<String> = raised(&r)
        .into_iter()
        .map(|w| w.0)
        .filter(|r| r != "rate")
        .collect();
    assert!(rules.is_empty(), "{rules:?}");
    // A quiet agent (−18 dB) and a weak caller (−26 dB).
    let (quiet, weak) = (scaled(&long, -18.0), scaled(&q, -26.0));
    let path = d.join("quiet.wav");
    call(
        &path,
        &[(0, 0.5, &g), (1, t_q, &weak), (0, t_a, &quiet)],
        end,
    );
    golden(
        "quiet-agent-weak-caller",
        &json_of(&["analyze", p(&path)], d),
    );
    // A caller on a noisy line: white noise at about −32 dBFS under the whole caller channel.
    let mut seed = 1u32;
    let noise: Vec<f32> = (0..(end * 16000.0) as usize)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 * 0.06 - 0.03
        })
        .collect();
    let path = d.join("noisy.wav");
    call(
        &path,
        &[
            (0, 0.5, &g),
            (1, t_q, &q),
            (1, 0.0, &noise),
            (0, t_a, &long),
        ],
        end,
    );
    let r = json_of(&["analyze", p(&path)], d);
    golden("noisy-caller", &r);
}

#[test]
fn text_rules_and_call_events_from_a_transcript() {
    let dir = tmpdir();
    let d = dir.path();
    let g = line(d, "g", GREETING, 150);
    let q = line(d, "q", QUESTION, 150);
    // Audio: greeting, question, a 40 s hold with no word from the agent, answer, closing.
    let t_q = 0.5 + secs(&g) + 0.5;
    let hold = t_q + secs(&q) + 0.5;
    let back = hold + 40.0;
    let t_c = back + secs(&g) + 0.5;
    let end = t_c + secs(&g) + 1.0;
    let path = d.join("call.wav");
    call(
        &path,
        &[(0, 0.5, &g), (1, t_q, &q), (0, back, &g), (0, t_c, &g)],
        end,
    );
    let seg = |party: &str, a: f64, b: f64, text: &str| {
        format!("{{\"party\":\"{party}\",\"start\":{a:.2},\"end\":{b:.2},\"text\":\"{text}\"}}\n")
    };
    let mut t = String::new();
    t += &seg(
        "agent",
        0.5,
        0.5 + secs(&g),
        "您好，示例公司，请问有什么可以帮您？",
    );
    t += &seg(
        "caller",
        t_q,
        t_q + secs(&q),
        "你们这些混蛋，我的账单为什么这么高",
    );
    t += &format!("{{\"event\":\"hold_start\",\"time\":{hold:.2}}}\n{{\"event\":\"hold_end\",\"time\":{back:.2}}}\n");
    t += &seg(
        "agent",
        back,
        back + secs(&g),
        "查到了，我刚才已经说过了，这个我们公司的规定就这样",
    );
    t += &seg("agent", t_c, t_c + secs(&g), "没事了吧，您挂电话吧");
    t += &format!(
        "{{\"event\":\"call_end\",\"time\":{:.2},\"hung_up_by\":\"agent\"}}\n",
        end - 0.5
    );
    let transcript = d.join("call.jsonl");
    std::fs::write(&transcript, t).unwrap();
    let r = json_of(&["analyze", p(&path), "--transcript", p(&transcript)], d);
    golden("text-rules", &r);
    let rules: Vec<String> = raised(&r).into_iter().map(|w| w.0).collect();
    for rule in ["abusive", "hold", "forbidden", "closing"] {
        assert!(rules.iter().any(|r| r == rule), "{rule} fires: {rules:?}");
    }
    assert!(
        !rules.iter().any(|r| r == "greeting"),
        "the greeting was complete: {rules:?}"
    );
}

/// The report's chars/min series is the figure the rate rule judges (one computation for the
/// rule, the live meter and the plot): at every rate warning, the series shows the warning's
/// measured value.
#[test]
fn the_rate_plot_shows_what_the_rate_rule_judged() {
    let dir = tmpdir();
    let rules = dir.path().join("rules.toml");
    let text = callcoach_coach::rulebook::DEFAULT_RULES
        .replace("min_speech_s = 5 ", "min_speech_s = 3 ")
        .replace("max_cpm = 150", "max_cpm = 100")
        .replace("sustain_s = 5  ", "sustain_s = 1  ");
    std::fs::write(&rules, text).unwrap();
    let r = json_of(
        &[
            "analyze",
            p(&fixture("demo-call.wav")),
            "--transcript",
            p(&fixture("demo-call.transcript.jsonl")),
            "--rules",
            p(&rules),
        ],
        dir.path(),
    );
    let series = r["series"]["agent"]["chars_per_minute"].as_array().unwrap();
    let warnings: Vec<&Value> = r["coach"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["rule"] == "rate" && w["state"] != "cleared")
        .collect();
    assert!(!warnings.is_empty(), "the narrow band is broken: {r}");
    for w in warnings {
        let t = w["t_ms"].as_u64().unwrap() as usize;
        let measured = w["evidence"]["measured"].as_f64().unwrap();
        let plotted = series[t / 100].as_f64().expect("a figure at the warning");
        assert!(
            (plotted.round() - measured).abs() <= 0.5,
            "at {t} ms the plot shows {plotted:.1}, the warning {measured}"
        );
    }
}
