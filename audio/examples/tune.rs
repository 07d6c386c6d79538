//! Development helper: prints syllable counts and VAD metrics with parameters from env vars.
use callcoach_audio::analyze::{analyze_call, AgentChannel, CallInput};
use callcoach_audio::call::CallConfig;

fn env(name: &str, d: f32) -> f32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn main() {
    let mut cfg = CallConfig::default();
    let f = &mut cfg.features;
    f.vad_threshold = env("THR", f.vad_threshold);
    f.vad_bridge_frames = env("BRIDGE", f.vad_bridge_frames as f32) as usize;
    f.vad_min_speech_frames = env("MINSP", f.vad_min_speech_frames as f32) as usize;
    f.vad_pad_frames = env("PAD", f.vad_pad_frames as f32) as usize;
    f.nucleus_prominence_db = env("PROM", f.nucleus_prominence_db);
    f.nucleus_min_distance = env("DIST", f.nucleus_min_distance as f32) as usize;
    f.nucleus_range_db = env("RANGE", f.nucleus_range_db);
    f.nucleus_adaptive_spacing = env("ADAPT", f.nucleus_adaptive_spacing);
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp/ev".into());
    let refs = [
        ("paddlespeech-zh", 20),
        ("aishell-BAC009S0724W0121", 12),
        ("funasr-asr_example", 18),
        ("funasr-paraformer_example_1", 60),
    ];
    let mut worst: f64 = 0.0;
    let mut sum = 0.0;
    let mut n = 0.0;
    let mut line = String::new();
    for (name, chars) in refs {
        for v in ["", "-tel", "-slow", "-fast"] {
            let path = format!("{dir}/{name}{v}.wav");
            let r = analyze_call(&CallInput { call: path.into(), caller: None, agent_channel: AgentChannel::Left, allow_truncated: false }, &cfg).unwrap();
            let err = r.agent.syllables as f64 / chars as f64 - 1.0;
            worst = worst.max(err.abs());
            sum += err.abs();
            n += 1.0;
            line += &format!("{}{}:{}/{} ", &name[..5], v, r.agent.syllables, chars);
        }
    }
    println!("{line}");
    println!("real: worst {:.1}% mean {:.1}%", worst * 100.0, sum / n * 100.0);
    let mut es = String::new();
    let mut eworst: f64 = 0.0;
    for s in [90, 140, 200] {
        let r = analyze_call(&CallInput { call: format!("{dir}/es{s}.wav").into(), caller: None, agent_channel: AgentChannel::Left, allow_truncated: false }, &cfg).unwrap();
        let err = r.agent.syllables as f64 / 41.0 - 1.0;
        eworst = eworst.max(err.abs());
        es += &format!("es{s}:{} cpm={:.0} ", r.agent.syllables, r.agent.chars_per_minute.unwrap_or(0.0));
    }
    println!("{es} worst {:.1}%", eworst * 100.0);
    // VAD on the 70 s reference file.
    let refseg: [(u64, u64); 12] = [(70,2340),(2620,6200),(6480,23670),(23950,26250),(26780,28990),(29950,31430),(31750,37600),(38210,46900),(47310,49630),(49910,56460),(56740,59540),(59820,70450)];
    let r = analyze_call(&CallInput { call: "/work/shared/audio/funasr-vad_example_70s.wav".into(), caller: None, agent_channel: AgentChannel::Left, allow_truncated: false }, &cfg).unwrap();
    let speech_at = |ms: u64| r.agent.speech_segments.iter().any(|s| (s.start_s * 1000.0) as u64 <= ms && ms < (s.end_s * 1000.0) as u64);
    let (mut hit, mut tot) = (0, 0);
    for &(a, b) in &refseg { let mut t = a; while t < b { tot += 1; if speech_at(t) { hit += 1; } t += 10; } }
    let mut found = 0;
    let mut pauses = String::new();
    for w in refseg.windows(2) {
        let (a, b) = (w[0].1, w[1].0);
        let mut ns = 0; let mut t = a; while t < b { if !speech_at(t) { ns += 1; } t += 10; }
        let frac = ns as f64 * 10.0 / (b - a) as f64;
        if frac >= 0.5 { found += 1; }
        pauses += &format!("{:.2} ", frac);
    }
    if std::env::var("MISSES").is_ok() { let mut run: Option<u64> = None; for &(a, b) in &refseg { let mut t = a; while t < b { let m = !speech_at(t); match (m, run) { (true, None) => run = Some(t), (false, Some(s)) => { println!("miss {s}-{t}"); run = None } _ => {} } t += 10; } if let Some(s) = run.take() { println!("miss {s}-{b}"); } } }
    println!("vad recall {:.1}% pauses found {found}/11 [{pauses}]", hit as f64 / tot as f64 * 100.0);
}
// (miss listing appended below)
