use callcoach_audio::call::{CallAnalyzer, CallConfig, CallOutput, Party};
use callcoach_audio::decode::Decoder;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let mut d = Decoder::open(path.as_ref()).unwrap();
    let mut a = CallAnalyzer::new(CallConfig::default(), Some(d.rate()), None).unwrap();
    let mut frames = Vec::new();
    while let Some(b) = d.next_block().unwrap() { let b = b.to_vec(); a.push(Party::Agent, &b, &mut |o| if let CallOutput::Frame(_, f) = o { frames.push(f) }).unwrap(); }
    a.finish(&mut |o| if let CallOutput::Frame(_, f) = o { frames.push(f) }).unwrap();
    for f in frames.chunks(5) { let s: f32 = f.iter().map(|x| x.vad_score).sum::<f32>()/5.0; let e: f32 = f.iter().map(|x| x.energy_db).fold(-200.0, f32::max); println!("{:.2} {:.2} {:.1} {}{}", f[0].index as f32/100.0, s, e, if f.iter().any(|x| x.speech) {"S"} else {"."}, if f.iter().any(|x| x.nucleus) {"N"} else {""}); }
}
