#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // tests fail loudly
//! CTranslate2 → ggml import (`callcoach_asr::ct2`): byte identity with the reference Python
//! converter on the real faster-whisper base model (needs `CALLCOACH_CT2_BASE_DIR`), and
//! synthetic tiny models written by hand here: int8/int16 dequantization, fused QKV/KV splits,
//! bfloat16, old binary versions, vocabulary formats, and the errors.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use callcoach_asr::ct2::{convert, Ct2Error};
use half::f16;
use sha2::{Digest as _, Sha256};

/// Output of `shared/tools/ct2-to-ggml.py` for Systran/faster-whisper-base (model.bin sha256
/// d01c3014…a0a6a9), see shared/tools/ct2-to-ggml.md.
const BASE_REF_SHA256: &str = "c0db470711f9496ec80feedb59b0916f10a0c301218e7254a61e7d3d1890dc6d";
const BASE_REF_BYTES: u64 = 147_951_465;
const BASE_ENV: &str = "CALLCOACH_CT2_BASE_DIR";

fn sha256_file(path: &Path) -> String {
    let data = fs::read(path).unwrap();
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn base_dir() -> PathBuf {
    match std::env::var_os(BASE_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => panic!(
            "{BASE_ENV} is not set: run .ci/fetch-models or set {BASE_ENV} to a \
             faster-whisper-base CTranslate2 directory (model.bin + vocabulary.txt + \
             tokenizer.json; see shared/tools/fetch-test-whisper.sh)"
        ),
    }
}

#[test]
fn base_model_matches_reference_converter() {
    let dir = base_dir();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ggml-base.bin");
    let t0 = Instant::now();
    let s = convert(&dir, &out).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let sha = sha256_file(&out);
    eprintln!(
        "converted base in {secs:.2} s: {} bytes, sha256 {sha}",
        s.bytes
    );
    assert_eq!(s.bytes, BASE_REF_BYTES);
    assert_eq!(fs::metadata(&out).unwrap().len(), BASE_REF_BYTES);
    assert_eq!(sha, BASE_REF_SHA256);
    assert_eq!(s.spec, "WhisperSpec");
    assert_eq!(s.binary_version, 6);
    assert_eq!(s.weight_types, ["float16"]);
    assert!(!s.dequantized);
    assert_eq!(
        (
            s.n_vocab,
            s.n_audio_layer,
            s.n_text_layer,
            s.n_state,
            s.n_mels
        ),
        (51865, 6, 6, 512, 80)
    );
    assert_eq!(s.tensors, 245);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert!(!tmp.path().join("ggml-base.bin.tmp").exists());
}

#[test]
fn base_model_tokenizer_json_gives_same_output() {
    let dir = base_dir();
    let tmp = tempfile::tempdir().unwrap();
    let ct2 = tmp.path().join("ct2");
    fs::create_dir(&ct2).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.join("model.bin"), ct2.join("model.bin")).unwrap();
    #[cfg(not(unix))]
    fs::copy(dir.join("model.bin"), ct2.join("model.bin")).unwrap();
    fs::copy(dir.join("tokenizer.json"), ct2.join("tokenizer.json")).unwrap();
    let out = tmp.path().join("out.bin");
    convert(&ct2, &out).unwrap();
    assert_eq!(sha256_file(&out), BASE_REF_SHA256);
}

// ---------------------------------------------------------------------------------------------
// a CTranslate2 model.bin writer

#[derive(Clone)]
enum Data {
    F32(Vec<f32>),
    F16(Vec<f32>),
    Bf16(Vec<f32>),
    I8(Vec<i8>),
    I16(Vec<i16>),
}

#[derive(Clone)]
struct Ct2 {
    version: u32,
    spec: String,
    vars: Vec<(String, Vec<u32>, Data)>,
    aliases: Vec<(String, String)>,
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
    b.push(0);
}

impl Ct2 {
    fn var(&mut self, name: &str, shape: &[u32], data: Data) {
        self.vars.push((name.into(), shape.to_vec(), data));
    }

    fn get(&self, name: &str) -> &Data {
        &self.vars.iter().find(|v| v.0 == name).unwrap().2
    }

    fn set(&mut self, name: &str, data: Data) {
        self.vars.iter_mut().find(|v| v.0 == name).unwrap().2 = data;
    }

    fn reshape(&mut self, name: &str, shape: &[u32], data: Data) {
        let v = self.vars.iter_mut().find(|v| v.0 == name).unwrap();
        v.1 = shape.to_vec();
        v.2 = data;
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.version.to_le_bytes());
        if self.version >= 2 {
            put_str(&mut b, &self.spec);
            b.extend_from_slice(&3u32.to_le_bytes());
        }
        b.extend_from_slice(&(self.vars.len() as u32).to_le_bytes());
        for (name, shape, data) in &self.vars {
            put_str(&mut b, name);
            b.push(shape.len() as u8);
            for d in shape {
                b.extend_from_slice(&d.to_le_bytes());
            }
            let (id, item, payload): (u8, u32, Vec<u8>) = match data {
                Data::F32(v) => (0, 4, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                Data::I8(v) => (1, 1, v.iter().map(|&x| x as u8).collect()),
                Data::I16(v) => (2, 2, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                Data::F16(v) => (
                    4,
                    2,
                    v.iter()
                        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
                        .collect(),
                ),
                Data::Bf16(v) => (
                    5,
                    2,
                    v.iter()
                        .flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes())
                        .collect(),
                ),
            };
            if self.version >= 4 {
                b.push(id);
                b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            } else {
                assert!(!matches!(data, Data::F16(_) | Data::Bf16(_)));
                b.push(item as u8);
                b.extend_from_slice(&(payload.len() as u32 / item).to_le_bytes());
            }
            b.extend_from_slice(&payload);
        }
        if self.version >= 3 {
            b.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
            for (a, t) in &self.aliases {
                put_str(&mut b, a);
                put_str(&mut b, t);
            }
        }
        b
    }
}

/// Deterministic small numbers.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n)
            .map(|_| (self.next() % 255) as i32 - 127)
            .map(|v| v as i8)
            .collect()
    }
    fn i16s(&mut self, n: usize) -> Vec<i16> {
        (0..n)
            .map(|_| (self.next() % 20001) as i32 - 10000)
            .map(|v| v as i16)
            .collect()
    }
    fn f32s(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (self.next() % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }
    fn scales(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| 50.0 + (self.next() % 1000) as f32 / 7.0)
            .collect()
    }
}

const D: u32 = 8;
const FF: u32 = 16;
const N_MELS: u32 = 4;
const AUDIO_CTX: u32 = 6;
const TEXT_CTX: u32 = 5;
const N_VOCAB: u32 = 5;
const HEADS: i16 = 2;
const VOCAB_TXT: &str = "!\n\"\n\u{120}a\n<|endoftext|>\n<|startoftranscript|>\n";

/// A tiny Whisper (d=8, one layer each). `mixed`: int8/int16 weights with scales, some
/// float16 and bfloat16; otherwise int8/int16 weights and all floats f32 (representable in
/// binary versions < 4).
fn tiny_whisper(version: u32, mixed: bool) -> Ct2 {
    let mut r = Lcg(42);
    let mut m = Ct2 {
        version,
        spec: "WhisperSpec".into(),
        vars: Vec::new(),
        aliases: Vec::new(),
    };
    let float = |v: Vec<f32>, kind: u8| match (mixed, kind) {
        (true, 1) => Data::F16(v),
        (true, 2) => Data::Bf16(v),
        _ => Data::F32(v),
    };
    m.var("decoder/activation", &[], Data::I8(vec![3]));
    m.var("decoder/num_heads", &[], Data::I16(vec![HEADS]));
    m.var("decoder/scale_embeddings", &[], Data::I8(vec![0]));
    m.var("encoder/num_heads", &[], Data::I16(vec![HEADS]));
    let int8 = |m: &mut Ct2, r: &mut Lcg, name: &str, shape: &[u32]| {
        let n: u32 = shape.iter().product();
        m.var(
            &format!("{name}/weight"),
            shape,
            Data::I8(r.i8s(n as usize)),
        );
        let s = r.scales(shape[0] as usize);
        m.var(&format!("{name}/weight_scale"), &[shape[0]], Data::F32(s));
    };
    let bias =
        |m: &mut Ct2, r: &mut Lcg, name: &str, n: u32, zero: Option<(u32, u32)>, kind: u8| {
            let mut v = r.f32s(n as usize);
            if let Some((a, b)) = zero {
                v[a as usize..b as usize].iter_mut().for_each(|x| *x = 0.0);
            }
            m.var(&format!("{name}/bias"), &[n], float(v, kind));
        };
    let ln = |m: &mut Ct2, r: &mut Lcg, name: &str, kind: u8| {
        m.var(
            &format!("{name}/gamma"),
            &[D],
            float(r.f32s(D as usize), kind),
        );
        m.var(&format!("{name}/beta"), &[D], float(r.f32s(D as usize), 0));
    };
    let int16 = |m: &mut Ct2, r: &mut Lcg, name: &str, shape: &[u32]| {
        let n: u32 = shape.iter().product();
        m.var(
            &format!("{name}/weight"),
            shape,
            Data::I16(r.i16s(n as usize)),
        );
        m.var(
            &format!("{name}/weight_scale"),
            &[],
            Data::F32(vec![2000.0]),
        );
    };

    int8(&mut m, &mut r, "decoder/embeddings", &[N_VOCAB, D]);
    for (prefix, cross) in [("encoder/layer_0", false), ("decoder/layer_0", true)] {
        let sa = format!("{prefix}/self_attention");
        int8(&mut m, &mut r, &format!("{sa}/linear_0"), &[3 * D, D]);
        bias(
            &mut m,
            &mut r,
            &format!("{sa}/linear_0"),
            3 * D,
            Some((D, 2 * D)),
            1,
        );
        int8(&mut m, &mut r, &format!("{sa}/linear_1"), &[D, D]);
        bias(&mut m, &mut r, &format!("{sa}/linear_1"), D, None, 0);
        ln(&mut m, &mut r, &format!("{sa}/layer_norm"), 0);
        if cross {
            let ca = format!("{prefix}/attention");
            int8(&mut m, &mut r, &format!("{ca}/linear_0"), &[D, D]);
            bias(&mut m, &mut r, &format!("{ca}/linear_0"), D, None, 0);
            int8(&mut m, &mut r, &format!("{ca}/linear_1"), &[2 * D, D]);
            bias(
                &mut m,
                &mut r,
                &format!("{ca}/linear_1"),
                2 * D,
                Some((0, D)),
                0,
            );
            int8(&mut m, &mut r, &format!("{ca}/linear_2"), &[D, D]);
            bias(&mut m, &mut r, &format!("{ca}/linear_2"), D, None, 0);
            ln(&mut m, &mut r, &format!("{ca}/layer_norm"), 1);
        }
        int8(&mut m, &mut r, &format!("{prefix}/ffn/linear_0"), &[FF, D]);
        bias(
            &mut m,
            &mut r,
            &format!("{prefix}/ffn/linear_0"),
            FF,
            None,
            0,
        );
        int16(&mut m, &mut r, &format!("{prefix}/ffn/linear_1"), &[D, FF]);
        bias(
            &mut m,
            &mut r,
            &format!("{prefix}/ffn/linear_1"),
            D,
            None,
            0,
        );
        ln(&mut m, &mut r, &format!("{prefix}/ffn/layer_norm"), 0);
    }
    ln(&mut m, &mut r, "decoder/layer_norm", 0);
    m.var(
        "decoder/position_encodings/encodings",
        &[TEXT_CTX, D],
        float(r.f32s((TEXT_CTX * D) as usize), 1),
    );
    int8(&mut m, &mut r, "encoder/conv1", &[D, N_MELS, 3]);
    bias(&mut m, &mut r, "encoder/conv1", D, None, 0);
    let conv2 = r.f32s((D * D * 3) as usize);
    m.var("encoder/conv2/weight", &[D, D, 3], float(conv2, 1));
    bias(&mut m, &mut r, "encoder/conv2", D, None, 1);
    ln(&mut m, &mut r, "encoder/layer_norm", 2);
    m.var(
        "encoder/position_encodings/encodings",
        &[AUDIO_CTX, D],
        float(r.f32s((AUDIO_CTX * D) as usize), 0),
    );
    if version >= 3 {
        m.aliases.push((
            "decoder/projection/weight".into(),
            "decoder/embeddings/weight".into(),
        ));
    }
    m
}

fn write_dir(m: &Ct2, vocab: Option<(&str, &str)>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("model.bin"), m.bytes()).unwrap();
    if let Some((name, text)) = vocab {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn convert_bytes(m: &Ct2) -> Vec<u8> {
    let dir = write_dir(m, Some(("vocabulary.txt", VOCAB_TXT)));
    let out = dir.path().join("out.bin");
    convert(dir.path(), &out).unwrap();
    fs::read(out).unwrap()
}

// ---------------------------------------------------------------------------------------------
// a ggml reader

struct Tensor {
    dims: Vec<usize>, // ggml order (innermost first)
    f16: bool,
    data: Vec<f32>,
}

struct Ggml {
    hparams: Vec<i32>,
    mel: (usize, usize, Vec<f32>),
    vocab: Vec<Vec<u8>>,
    names: Vec<String>,
    tensors: HashMap<String, Tensor>,
}

fn parse_ggml(b: &[u8]) -> Ggml {
    let rd = |p: &mut usize| {
        let v = i32::from_le_bytes(b[*p..*p + 4].try_into().unwrap());
        *p += 4;
        v
    };
    let mut p = 0usize;
    assert_eq!(rd(&mut p), 0x6767_6d6c);
    let hparams: Vec<i32> = (0..11).map(|_| rd(&mut p)).collect();
    let rows = rd(&mut p) as usize;
    let cols = rd(&mut p) as usize;
    let mel: Vec<f32> = (0..rows * cols)
        .map(|k| f32::from_le_bytes(b[p + 4 * k..p + 4 * k + 4].try_into().unwrap()))
        .collect();
    p += 4 * rows * cols;
    let n = rd(&mut p) as usize;
    let mut vocab = Vec::new();
    for _ in 0..n {
        let len = rd(&mut p) as usize;
        vocab.push(b[p..p + len].to_vec());
        p += len;
    }
    let mut names = Vec::new();
    let mut tensors = HashMap::new();
    while p < b.len() {
        let n_dims = rd(&mut p) as usize;
        let name_len = rd(&mut p) as usize;
        let ftype = rd(&mut p);
        let dims: Vec<usize> = (0..n_dims).map(|_| rd(&mut p) as usize).collect();
        let name = String::from_utf8(b[p..p + name_len].to_vec()).unwrap();
        p += name_len;
        let count: usize = dims.iter().product();
        let data: Vec<f32> = match ftype {
            0 => (0..count)
                .map(|k| f32::from_le_bytes(b[p + 4 * k..p + 4 * k + 4].try_into().unwrap()))
                .collect(),
            1 => (0..count)
                .map(|k| {
                    f16::from_le_bytes(b[p + 2 * k..p + 2 * k + 2].try_into().unwrap()).to_f32()
                })
                .collect(),
            t => panic!("ftype {t}"),
        };
        p += count * if ftype == 0 { 4 } else { 2 };
        names.push(name.clone());
        tensors.insert(
            name,
            Tensor {
                dims,
                f16: ftype == 1,
                data,
            },
        );
    }
    assert_eq!(p, b.len());
    Ggml {
        hparams,
        mel: (rows, cols, mel),
        vocab,
        names,
        tensors,
    }
}

fn expected_names() -> Vec<String> {
    let mut n: Vec<String> = [
        "encoder.positional_embedding",
        "encoder.conv1.weight",
        "encoder.conv1.bias",
        "encoder.conv2.weight",
        "encoder.conv2.bias",
    ]
    .map(String::from)
    .to_vec();
    let attn = |p: &str, a: &str| {
        [
            "query.weight",
            "query.bias",
            "key.weight",
            "value.weight",
            "value.bias",
            "out.weight",
            "out.bias",
        ]
        .iter()
        .map(|s| format!("{p}.{a}.{s}"))
        .chain([format!("{p}.{a}_ln.weight"), format!("{p}.{a}_ln.bias")])
        .collect::<Vec<_>>()
    };
    let mlp = |p: &str| {
        [
            "mlp.0.weight",
            "mlp.0.bias",
            "mlp.2.weight",
            "mlp.2.bias",
            "mlp_ln.weight",
            "mlp_ln.bias",
        ]
        .iter()
        .map(|s| format!("{p}.{s}"))
        .collect::<Vec<_>>()
    };
    n.extend(attn("encoder.blocks.0", "attn"));
    n.extend(mlp("encoder.blocks.0"));
    n.extend([
        "encoder.ln_post.weight".into(),
        "encoder.ln_post.bias".into(),
    ]);
    n.extend([
        "decoder.positional_embedding".into(),
        "decoder.token_embedding.weight".into(),
    ]);
    n.extend(attn("decoder.blocks.0", "attn"));
    n.extend(attn("decoder.blocks.0", "cross_attn"));
    n.extend(mlp("decoder.blocks.0"));
    n.extend(["decoder.ln.weight".into(), "decoder.ln.bias".into()]);
    n
}

/// The float32 values the converter must produce for `name` (dequantized, bf16/f16 widened).
fn values(m: &Ct2, name: &str) -> Vec<f32> {
    match m.get(name) {
        Data::F32(v) => v.clone(),
        Data::F16(v) => v.iter().map(|&x| f16::from_f32(x).to_f32()).collect(),
        Data::Bf16(v) => v
            .iter()
            .map(|x| f32::from_bits(x.to_bits() & 0xffff_0000))
            .collect(),
        Data::I8(q) => {
            let Data::F32(s) = m.get(&format!("{name}_scale")) else {
                panic!()
            };
            let row = q.len() / s.len();
            q.iter()
                .enumerate()
                .map(|(k, &x)| x as f32 * (1.0f32 / s[k / row]))
                .collect()
        }
        Data::I16(q) => {
            let Data::F32(s) = m.get(&format!("{name}_scale")) else {
                panic!()
            };
            q.iter().map(|&x| x as f32 * (1.0f32 / s[0])).collect()
        }
    }
}

fn as_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| f16::from_f32(x).to_f32()).collect()
}

#[test]
fn int8_model_is_dequantized_split_and_written() {
    let m = tiny_whisper(6, true);
    let dir = write_dir(&m, Some(("vocabulary.txt", VOCAB_TXT)));
    let out = dir.path().join("out.bin");
    let s = convert(dir.path(), &out).unwrap();
    assert!(!dir.path().join("out.bin.tmp").exists());
    let bytes = fs::read(&out).unwrap();
    assert_eq!(s.bytes, bytes.len() as u64);
    assert_eq!(s.spec, "WhisperSpec");
    assert_eq!(s.binary_version, 6);
    assert!(s.dequantized);
    assert_eq!(s.weight_types, ["float16", "int16", "int8"]);
    assert_eq!(
        (
            s.n_vocab,
            s.n_audio_layer,
            s.n_text_layer,
            s.n_state,
            s.n_mels
        ),
        (N_VOCAB, 1, 1, D, N_MELS)
    );
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);

    let g = parse_ggml(&bytes);
    let (d, h) = (D as i32, i32::from(HEADS));
    assert_eq!(
        g.hparams,
        [
            N_VOCAB as i32,
            AUDIO_CTX as i32,
            d,
            h,
            1,
            TEXT_CTX as i32,
            d,
            h,
            1,
            N_MELS as i32,
            1
        ]
    );
    let (rows, cols, mel) = &g.mel;
    assert_eq!((*rows, *cols), (N_MELS as usize, 201));
    assert!(mel.iter().all(|v| v.is_finite() && *v >= 0.0));
    for r in 0..*rows {
        assert!(
            mel[r * 201..(r + 1) * 201].iter().any(|&v| v > 0.0),
            "mel row {r}"
        );
    }
    assert_eq!(g.vocab, [b"!".to_vec(), b"\"".to_vec(), b" a".to_vec()]);
    assert_eq!(g.names, expected_names());
    assert_eq!(s.tensors, g.names.len());

    let d = D as usize;
    let check = |name: &str, dims: &[usize], f16: bool, want: Vec<f32>| {
        let t = &g.tensors[name];
        assert_eq!(t.dims, dims, "{name} dims");
        assert_eq!(t.f16, f16, "{name} type");
        let want = if f16 { as_f16(&want) } else { want };
        assert_eq!(t.data, want, "{name} values");
    };
    // fused QKV: int8 per-row scales, rows split
    let qkv = values(&m, "encoder/layer_0/self_attention/linear_0/weight");
    check(
        "encoder.blocks.0.attn.query.weight",
        &[d, d],
        true,
        qkv[..d * d].to_vec(),
    );
    check(
        "encoder.blocks.0.attn.key.weight",
        &[d, d],
        true,
        qkv[d * d..2 * d * d].to_vec(),
    );
    check(
        "encoder.blocks.0.attn.value.weight",
        &[d, d],
        true,
        qkv[2 * d * d..].to_vec(),
    );
    let qkv_b = values(&m, "encoder/layer_0/self_attention/linear_0/bias"); // float16
    check(
        "encoder.blocks.0.attn.query.bias",
        &[d],
        false,
        qkv_b[..d].to_vec(),
    );
    check(
        "encoder.blocks.0.attn.value.bias",
        &[d],
        false,
        qkv_b[2 * d..].to_vec(),
    );
    assert!(!g.tensors.contains_key("encoder.blocks.0.attn.key.bias"));
    // fused cross-attention KV
    let kv = values(&m, "decoder/layer_0/attention/linear_1/weight");
    check(
        "decoder.blocks.0.cross_attn.key.weight",
        &[d, d],
        true,
        kv[..d * d].to_vec(),
    );
    check(
        "decoder.blocks.0.cross_attn.value.weight",
        &[d, d],
        true,
        kv[d * d..].to_vec(),
    );
    let kv_b = values(&m, "decoder/layer_0/attention/linear_1/bias");
    check(
        "decoder.blocks.0.cross_attn.value.bias",
        &[d],
        false,
        kv_b[d..].to_vec(),
    );
    // int16 with a scalar scale
    let ff = FF as usize;
    let w = values(&m, "decoder/layer_0/ffn/linear_1/weight");
    assert_eq!(
        w[0],
        match m.get("decoder/layer_0/ffn/linear_1/weight") {
            Data::I16(q) => q[0] as f32 * (1.0f32 / 2000.0),
            _ => unreachable!(),
        }
    );
    check("decoder.blocks.0.mlp.2.weight", &[ff, d], true, w);
    // token embedding (int8), conv weights (int8 and float16), conv bias as (C, 1) f32
    let n_vocab = N_VOCAB as usize;
    check(
        "decoder.token_embedding.weight",
        &[d, n_vocab],
        true,
        values(&m, "decoder/embeddings/weight"),
    );
    check(
        "encoder.conv1.weight",
        &[3, N_MELS as usize, d],
        true,
        values(&m, "encoder/conv1/weight"),
    );
    check(
        "encoder.conv2.weight",
        &[3, d, d],
        true,
        values(&m, "encoder/conv2/weight"),
    );
    check(
        "encoder.conv1.bias",
        &[1, d],
        false,
        values(&m, "encoder/conv1/bias"),
    );
    check(
        "encoder.conv2.bias",
        &[1, d],
        false,
        values(&m, "encoder/conv2/bias"),
    );
    // positional embeddings stay f32 (the decoder's was stored as float16)
    check(
        "decoder.positional_embedding",
        &[d, TEXT_CTX as usize],
        false,
        values(&m, "decoder/position_encodings/encodings"),
    );
    check(
        "encoder.positional_embedding",
        &[d, AUDIO_CTX as usize],
        false,
        values(&m, "encoder/position_encodings/encodings"),
    );
    // bfloat16 layer norm
    check(
        "encoder.ln_post.weight",
        &[d],
        false,
        values(&m, "encoder/layer_norm/gamma"),
    );
    check(
        "encoder.ln_post.bias",
        &[d],
        false,
        values(&m, "encoder/layer_norm/beta"),
    );

    // the per-row scale really differs between rows (so a wrong row mapping would show)
    let Data::F32(sc) = m.get("encoder/layer_0/self_attention/linear_0/weight_scale") else {
        panic!()
    };
    assert!(sc.windows(2).any(|p| p[0] != p[1]));
}

#[test]
fn old_binary_versions_give_the_same_file() {
    let v6 = convert_bytes(&tiny_whisper(6, false));
    for version in [1, 2, 3, 4, 5] {
        assert!(
            convert_bytes(&tiny_whisper(version, false)) == v6,
            "binary version {version}"
        );
    }
}

#[test]
fn vocabulary_formats_agree() {
    let m = tiny_whisper(6, true);
    let reference = convert_bytes(&m);
    let tokens: Vec<&str> = VOCAB_TXT.trim_end_matches('\n').split('\n').collect();
    let json = serde_json::to_string(&tokens).unwrap();
    let vocab: serde_json::Map<String, serde_json::Value> = tokens[..4]
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i.into()))
        .collect();
    let tokenizer = serde_json::json!({
        "model": {"type": "BPE", "vocab": vocab},
        "added_tokens": [{"id": 4, "content": tokens[4], "special": true}],
    })
    .to_string();
    for (file, text) in [
        ("vocabulary.json", json.as_str()),
        ("tokenizer.json", &tokenizer),
    ] {
        let dir = write_dir(&m, Some((file, text)));
        let out = dir.path().join("out.bin");
        convert(dir.path(), &out).unwrap();
        assert!(fs::read(&out).unwrap() == reference, "{file}");
    }
}

#[test]
fn vocabulary_size_mismatch_is_a_warning() {
    let m = tiny_whisper(6, true);
    let dir = write_dir(&m, Some(("vocabulary.txt", "!\n<|endoftext|>\n")));
    let s = convert(dir.path(), &dir.path().join("out.bin")).unwrap();
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("2 tokens"), "{}", s.warnings[0]);
}

// ---------------------------------------------------------------------------------------------
// errors

/// Converts, expects an error, checks nothing was left at `out` or `out.tmp`.
fn convert_err(dir: &Path) -> Ct2Error {
    let out = dir.join("out.bin");
    let err = convert(dir, &out).unwrap_err();
    assert!(!out.exists());
    assert!(!dir.join("out.bin.tmp").exists());
    err
}

#[test]
fn truncated_model_bin_says_so() {
    let m = tiny_whisper(6, true);
    let dir = write_dir(&m, Some(("vocabulary.txt", VOCAB_TXT)));
    let path = dir.path().join("model.bin");
    let full = fs::read(&path).unwrap();
    // in the payload of a late variable
    fs::write(&path, &full[..full.len() - 100]).unwrap();
    let err = convert_err(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, Ct2Error::Truncated { .. }), "{msg}");
    assert!(msg.contains("model.bin is truncated: variable "), "{msg}");
    assert!(
        msg.contains(&format!("the file has {}", full.len() - 100)),
        "{msg}"
    );
    assert!(msg.contains("split parts missing"), "{msg}");
    // in the variable table
    fs::write(&path, &full[..30]).unwrap();
    let err = convert_err(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, Ct2Error::TruncatedTable { .. }), "{msg}");
    assert!(msg.contains("model.bin is truncated"), "{msg}");
}

#[test]
fn missing_vocabulary_is_named() {
    let dir = write_dir(&tiny_whisper(6, true), None);
    let err = convert_err(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, Ct2Error::NoVocabulary { .. }), "{msg}");
    assert!(
        msg.contains("no vocabulary.txt, vocabulary.json or tokenizer.json in"),
        "{msg}"
    );
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
}

#[test]
fn vocabulary_without_endoftext_is_refused() {
    let dir = write_dir(&tiny_whisper(6, true), Some(("vocabulary.txt", "a\nb\n")));
    let err = convert_err(dir.path());
    assert!(matches!(err, Ct2Error::BadVocabulary { .. }), "{err}");
    assert!(err.to_string().contains("<|endoftext|>"), "{err}");
}

#[test]
fn not_whisper_spec_is_refused() {
    let mut m = tiny_whisper(6, true);
    m.spec = "TransformerSpec".into();
    let dir = write_dir(&m, Some(("vocabulary.txt", VOCAB_TXT)));
    let err = convert_err(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, Ct2Error::NotWhisper { .. }), "{msg}");
    assert!(
        msg.contains("not a Whisper model: spec 'TransformerSpec'"),
        "{msg}"
    );
}

#[test]
fn missing_model_bin_keeps_the_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = convert_err(dir.path());
    let msg = err.to_string();
    match &err {
        Ct2Error::Io { path, source, .. } => {
            assert_eq!(path, &dir.path().join("model.bin"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        _ => panic!("{msg}"),
    }
    assert!(std::error::Error::source(&err).is_some());
    assert!(msg.contains("model.bin"), "{msg}");
}

type Edit = dyn Fn(&mut Ct2);

#[test]
fn unsupported_models_are_refused() {
    let base = tiny_whisper(6, true);
    let cases: Vec<(&str, Box<Edit>)> = vec![
        (
            "key bias is not zero",
            Box::new(|m: &mut Ct2| {
                m.set(
                    "encoder/layer_0/self_attention/linear_0/bias",
                    Data::F32(vec![0.5; 24]),
                )
            }),
        ),
        (
            "key bias is not zero",
            Box::new(|m: &mut Ct2| {
                m.set(
                    "decoder/layer_0/attention/linear_1/bias",
                    Data::F32(vec![0.5; 16]),
                )
            }),
        ),
        (
            "activation is not GELU",
            Box::new(|m: &mut Ct2| m.set("decoder/activation", Data::I8(vec![1]))),
        ),
        (
            "decoder/scale_embeddings=1",
            Box::new(|m: &mut Ct2| m.set("decoder/scale_embeddings", Data::I8(vec![1]))),
        ),
        (
            "queries_scale=0.5 is not supported",
            Box::new(|m: &mut Ct2| {
                m.var(
                    "decoder/layer_0/attention/queries_scale",
                    &[],
                    Data::F32(vec![0.5]),
                )
            }),
        ),
        (
            "not tied to the token embedding",
            Box::new(|m: &mut Ct2| {
                m.aliases.clear();
                m.var(
                    "decoder/projection/weight",
                    &[N_VOCAB, D],
                    Data::F32(vec![0.25; 40]),
                );
            }),
        ),
        (
            "non-zero bias",
            Box::new(|m: &mut Ct2| {
                m.var(
                    "decoder/projection/bias",
                    &[N_VOCAB],
                    Data::F32(vec![0.0, 0.0, 1.0, 0.0, 0.0]),
                )
            }),
        ),
        (
            "fused QKV has 16 rows, expected 24",
            Box::new(|m: &mut Ct2| {
                let name = "decoder/layer_0/self_attention/linear_0/weight";
                m.reshape(name, &[16, D], Data::I8(vec![1; 128]));
                m.reshape(&format!("{name}_scale"), &[16], Data::F32(vec![1.0; 16]));
            }),
        ),
    ];
    for (want, edit) in cases {
        let mut m = base.clone();
        edit(&mut m);
        let dir = write_dir(&m, Some(("vocabulary.txt", VOCAB_TXT)));
        let err = convert_err(dir.path());
        let msg = err.to_string();
        assert!(matches!(err, Ct2Error::Unsupported { .. }), "{want}: {msg}");
        assert!(msg.contains(want), "{want}: {msg}");
    }
    // an untied projection equal to the embedding is fine
    let mut m = base.clone();
    m.aliases.clear();
    let emb = m.get("decoder/embeddings/weight").clone();
    let sc = m.get("decoder/embeddings/weight_scale").clone();
    m.var("decoder/projection/weight", &[N_VOCAB, D], emb);
    m.var("decoder/projection/weight_scale", &[N_VOCAB], sc);
    assert!(convert_bytes(&m) == convert_bytes(&base));
}

#[test]
fn non_finite_values_and_missing_scales_are_refused() {
    let mut m = tiny_whisper(6, true);
    let mut v = values(&m, "decoder/position_encodings/encodings");
    v[7] = f32::NAN;
    m.set("decoder/position_encodings/encodings", Data::F32(v));
    let dir = write_dir(&m, Some(("vocabulary.txt", VOCAB_TXT)));
    let err = convert_err(dir.path());
    assert!(matches!(err, Ct2Error::NonFinite { .. }), "{err}");
    assert!(
        err.to_string().contains("decoder.positional_embedding"),
        "{err}"
    );

    let mut m = tiny_whisper(6, true);
    m.vars.retain(|v| v.0 != "encoder/conv1/weight_scale");
    let dir = write_dir(&m, Some(("vocabulary.txt", VOCAB_TXT)));
    let err = convert_err(dir.path());
    assert!(matches!(err, Ct2Error::Malformed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("encoder/conv1/weight is int8 but has no encoder/conv1/weight_scale"),
        "{err}"
    );

    let mut m = tiny_whisper(6, true);
    m.version = 7;
    let dir = write_dir(&m, Some(("vocabulary.txt", VOCAB_TXT)));
    let err = convert_err(dir.path());
    assert!(
        matches!(err, Ct2Error::UnsupportedVersion { version: 7, .. }),
        "{err}"
    );
}
