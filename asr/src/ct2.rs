//! CTranslate2 (faster-whisper) Whisper model directory → whisper.cpp ggml `.bin` file.
//!
//! A port of `shared/tools/ct2-to-ggml.py` that writes the same bytes (default f16 mode):
//! the whisper.cpp header (magic, 11 hparams, ftype 1), the mel filter bank computed like
//! librosa's Slaney filters, the GPT-2 byte-level vocabulary as raw bytes for the ids below
//! `<|endoftext|>`, then every tensor with its OpenAI name. Fused self-attention QKV and
//! cross-attention KV matrices are split by rows; the all-zero key biases are checked and
//! dropped; int8 (per-row scale) and int16 (scalar scale) weights are dequantized as
//! `q * (1 / scale)`; bfloat16 is read as float32. 2-D/3-D weights are written as f16;
//! 1-D tensors, the conv biases and the positional embeddings as f32.
//!
//! Input format (CTranslate2 `model_spec.py` `_serialize`, `model.cc` `load`), little-endian:
//! `u32 binary_version, str spec, u32 revision, u32 n_variables`, per variable
//! `str name, u8 rank, u32 dims[rank], u8 dtype, u32 nbytes, payload` (binary_version < 4: an
//! item size and an element count instead), then `u32 n_aliases` and `str alias, str target`
//! pairs (binary_version >= 3). `str` is a u16 length including the NUL, the bytes, the NUL.
//!
//! Payloads are read with seek + read in chunks, so memory stays small whatever the model.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::HalfFloatSliceExt as _;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// ggml file magic (`ggml` as a little-endian i32).
const GGML_MAGIC: i32 = 0x6767_6d6c;
/// Newest CTranslate2 binary version this reader understands.
const MAX_BINARY_VERSION: u32 = 6;
/// Elements per read/convert/write step.
const CHUNK: usize = 1 << 18;
/// Token ids above this in tokenizer.json are refused (real vocabularies have ~50k-250k).
const MAX_TOKEN_ID: i64 = 1 << 24;
/// Tensors kept in f32 although they have 2 dimensions (as convert-pt-to-ggml.py does).
const F32_NAMES: [&str; 4] = [
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];
const EOT: &str = "<|endoftext|>";

/// What the conversion found and wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImportSummary {
    /// CTranslate2 spec name (`WhisperSpec`; empty for binary version 1).
    pub spec: String,
    /// CTranslate2 `model.bin` binary version.
    pub binary_version: u32,
    /// Stored types of the variables whose name ends in `weight`, sorted
    /// (`float16`, `float32`, `int8`, ...).
    pub weight_types: Vec<String>,
    /// Whether some weights were integer and were dequantized with their scales.
    pub dequantized: bool,
    pub n_vocab: u32,
    pub n_audio_layer: u32,
    pub n_text_layer: u32,
    pub n_state: u32,
    pub n_mels: u32,
    /// Tensors written.
    pub tensors: usize,
    /// Size of the written file.
    pub bytes: u64,
    /// Things that did not stop the conversion (trailing bytes after the model data, a
    /// vocabulary whose size differs from the embedding rows).
    pub warnings: Vec<String>,
}

/// Why a conversion failed. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Ct2Error {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is truncated: variable {index}/{count} '{name}' {shape:?} {dtype} needs bytes up to {needed}, the file has {size} — are split parts missing? Join all model.bin.part* files in name order")]
    Truncated {
        path: PathBuf,
        index: u64,
        count: u64,
        name: String,
        shape: Vec<u64>,
        dtype: &'static str,
        needed: u64,
        size: u64,
    },
    #[error("{path} is truncated: it ends ({size} bytes) inside its variable table — are split parts missing? Join all model.bin.part* files in name order")]
    TruncatedTable { path: PathBuf, size: u64 },
    #[error("{path} has CTranslate2 binary version {version}, newer than this reader ({MAX_BINARY_VERSION}); convert the model with an older CTranslate2")]
    UnsupportedVersion { path: PathBuf, version: u32 },
    #[error("{path} is not a valid CTranslate2 model: {detail}; fetch the model again")]
    Malformed { path: PathBuf, detail: String },
    #[error("not a Whisper model: spec '{spec}' in {path} (expected WhisperSpec); pass a faster-whisper (CTranslate2 Whisper) model directory")]
    NotWhisper { path: PathBuf, spec: String },
    #[error("{path} has no variable '{name}'; is it a complete CTranslate2 Whisper model?")]
    MissingVariable { path: PathBuf, name: String },
    #[error(
        "{path}: {detail}; whisper.cpp cannot run this model as it is, so it was not converted"
    )]
    Unsupported { path: PathBuf, detail: String },
    #[error("no vocabulary.txt, vocabulary.json or tokenizer.json in {dir}; put the vocabulary that came with the model beside model.bin")]
    NoVocabulary { dir: PathBuf },
    #[error("{path}: {detail}; use the vocabulary that came with the model")]
    BadVocabulary { path: PathBuf, detail: String },
    #[error("{path}: tensor {tensor} has non-finite values (NaN or infinity); the model is damaged, fetch it again")]
    NonFinite { path: PathBuf, tensor: String },
}

/// Converts CT2 dir (model.bin + vocabulary.txt | vocabulary.json | tokenizer.json) into a
/// ggml file at `out` (written to `out.tmp` then renamed atomically).
pub fn convert(ct2_dir: &Path, out: &Path) -> Result<ImportSummary, Ct2Error> {
    let m = Model::open(&ct2_dir.join("model.bin"))?;
    let mut warnings = Vec::new();
    if m.trailing > 0 {
        warnings.push(format!(
            "{}: {} trailing bytes after the model data",
            m.path.display(),
            m.trailing
        ));
    }
    if !m.spec.is_empty() && m.spec != "WhisperSpec" {
        return Err(Ct2Error::NotWhisper {
            path: m.path.clone(),
            spec: m.spec.clone(),
        });
    }

    let emb = m.var("decoder/embeddings/weight")?;
    let &[n_vocab, d] = emb.shape.as_slice() else {
        return Err(m.malformed(format!(
            "decoder/embeddings/weight has shape {:?}, expected [n_vocab, n_state]",
            emb.shape
        )));
    };
    let conv1 = m.var("encoder/conv1/weight")?;
    let Some(&n_mels) = conv1.shape.get(1) else {
        return Err(m.malformed(format!(
            "encoder/conv1/weight has shape {:?}, expected [n_state, n_mels, 3]",
            conv1.shape
        )));
    };
    let n_audio_ctx = m.rows("encoder/position_encodings/encodings")?;
    let n_text_ctx = m.rows("decoder/position_encodings/encodings")?;
    let n_audio_layer = m.count_layers("encoder");
    let n_text_layer = m.count_layers("decoder");
    let n_audio_head = m.int_scalar("encoder/num_heads")?;
    let n_text_head = m.int_scalar("decoder/num_heads")?;

    m.refuse_unsupported()?;

    let tokens = load_vocabulary(ct2_dir)?;
    if tokens.tokens.len() as u64 != n_vocab {
        warnings.push(format!(
            "vocabulary has {} tokens, embeddings {} rows",
            tokens.tokens.len(),
            n_vocab
        ));
    }
    let vocab = vocab_bytes(&tokens)?;

    let weight_types: BTreeSet<&'static str> = m
        .vars
        .iter()
        .filter(|(name, _)| name.ends_with("weight"))
        .map(|(_, v)| v.dtype.name())
        .collect();
    let dequantized = m
        .vars
        .iter()
        .any(|(name, _)| name.ends_with("weight") && m.has(&format!("{name}_scale")));

    let plans = m.plan(d, n_audio_layer, n_text_layer)?;

    let hparams = [
        n_vocab,
        n_audio_ctx,
        d,
        n_audio_head,
        n_audio_layer,
        n_text_ctx,
        d,
        n_text_head,
        n_text_layer,
        n_mels,
        1,
    ];
    let mut header = Vec::with_capacity(12);
    header.push(GGML_MAGIC);
    for v in hparams {
        header.push(m.to_i32(v, "hyperparameter")?);
    }

    let mut tmp: OsString = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = write_ggml(&m, &tmp, &header, n_mels, &vocab, &plans);
    let bytes = match result {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(source) = fs::rename(&tmp, out) {
        let _ = fs::remove_file(&tmp);
        return Err(Ct2Error::Io {
            action: "renaming the converted model to",
            path: out.to_path_buf(),
            source,
        });
    }

    let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX); // all fit: checked as i32 above
    Ok(ImportSummary {
        spec: m.spec.clone(),
        binary_version: m.binary_version,
        weight_types: weight_types.into_iter().map(String::from).collect(),
        dequantized,
        n_vocab: u32_of(n_vocab),
        n_audio_layer: u32_of(n_audio_layer),
        n_text_layer: u32_of(n_text_layer),
        n_state: u32_of(d),
        n_mels: u32_of(n_mels),
        tensors: plans.len(),
        bytes,
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// model.bin reader

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl DType {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    /// binary_version < 4 stores the item size instead of a type id.
    fn from_item_size(size: u8) -> Option<Self> {
        Some(match size {
            4 => Self::F32,
            2 => Self::I16,
            1 => Self::I8,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::F16 => "float16",
            Self::Bf16 => "bfloat16",
        }
    }

    fn size(self) -> u64 {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    fn is_int(self) -> bool {
        matches!(self, Self::I8 | Self::I16 | Self::I32)
    }
}

#[derive(Debug, Clone)]
struct Var {
    dtype: DType,
    shape: Vec<u64>,
    offset: u64,
}

impl Var {
    /// Element count (validated against the payload size when parsed, so it cannot overflow).
    fn count(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Elements per first-axis row.
    fn row_len(&self) -> u64 {
        self.shape.iter().skip(1).product()
    }
}

/// A single value read from a scalar variable: Python's `.item()`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar {
    Int(i64),
    Float(f64),
}

impl Scalar {
    fn equals(self, v: i64) -> bool {
        match self {
            Self::Int(i) => i == v,
            Self::Float(f) => f == v as f64,
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Dequantization of an integer variable.
#[derive(Debug)]
enum Scale {
    None,
    /// One scale for the whole tensor: `1 / scale`.
    One(f32),
    /// One scale per first-axis row: `1 / scale[row]`.
    Rows {
        inv: Vec<f32>,
        row_len: u64,
    },
}

/// A variable to read as float32.
#[derive(Debug)]
struct Source<'a> {
    var: &'a Var,
    scale: Scale,
}

#[derive(Debug)]
struct Model {
    path: PathBuf,
    file: File,
    binary_version: u32,
    spec: String,
    /// In file order; a repeated name replaces the earlier entry in place.
    vars: Vec<(String, Var)>,
    index: HashMap<String, usize>,
    aliases: HashMap<String, String>,
    trailing: u64,
}

/// Header reader that knows where it is.
struct Table<'a> {
    r: BufReader<File>,
    pos: u64,
    size: u64,
    path: &'a Path,
}

impl Table<'_> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, Ct2Error> {
        let mut b = vec![0u8; n];
        self.r.read_exact(&mut b).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Ct2Error::TruncatedTable {
                    path: self.path.to_path_buf(),
                    size: self.size,
                }
            } else {
                Ct2Error::Io {
                    action: "reading",
                    path: self.path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        self.pos += n as u64;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Ct2Error> {
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&b);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, Ct2Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Ct2Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Ct2Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, Ct2Error> {
        let n = self.u16()? as usize;
        let mut b = self.bytes(n)?;
        b.pop(); // the NUL
        String::from_utf8(b).map_err(|_| Ct2Error::Malformed {
            path: self.path.to_path_buf(),
            detail: format!("a name before byte {} is not UTF-8", self.pos),
        })
    }

    fn skip(&mut self, n: u64) -> Result<(), Ct2Error> {
        let n = i64::try_from(n).map_err(|_| Ct2Error::TruncatedTable {
            path: self.path.to_path_buf(),
            size: self.size,
        })?;
        self.r.seek_relative(n).map_err(|source| Ct2Error::Io {
            action: "seeking in",
            path: self.path.to_path_buf(),
            source,
        })?;
        self.pos += n as u64;
        Ok(())
    }
}

impl Model {
    fn open(path: &Path) -> Result<Self, Ct2Error> {
        let io_err = |action, source| Ct2Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(|e| io_err("opening", e))?;
        let size = file.metadata().map_err(|e| io_err("reading", e))?.len();
        let mut t = Table {
            r: BufReader::with_capacity(64 * 1024, file),
            pos: 0,
            size,
            path,
        };
        let malformed = |detail: String| Ct2Error::Malformed {
            path: path.to_path_buf(),
            detail,
        };

        let binary_version = t.u32()?;
        if binary_version > MAX_BINARY_VERSION {
            return Err(Ct2Error::UnsupportedVersion {
                path: path.to_path_buf(),
                version: binary_version,
            });
        }
        let spec = if binary_version >= 2 {
            let spec = t.string()?;
            let _revision = t.u32()?;
            spec
        } else {
            String::new()
        };
        let n = u64::from(t.u32()?);
        let mut vars: Vec<(String, Var)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for i in 0..n {
            let name = t.string()?;
            let rank = t.u8()?;
            let mut shape = Vec::with_capacity(usize::from(rank));
            for _ in 0..rank {
                shape.push(u64::from(t.u32()?));
            }
            let (dtype, nbytes) = if binary_version >= 4 {
                let id = t.u8()?;
                let dtype = DType::from_id(id)
                    .ok_or_else(|| malformed(format!("variable '{name}' has unknown type {id}")))?;
                (dtype, u64::from(t.u32()?))
            } else {
                let item = t.u8()?;
                let dtype = DType::from_item_size(item).ok_or_else(|| {
                    malformed(format!("variable '{name}' has unknown item size {item}"))
                })?;
                (dtype, u64::from(t.u32()?) * dtype.size())
            };
            let offset = t.pos;
            let expected = shape
                .iter()
                .try_fold(1u64, |a, &b| a.checked_mul(b))
                .and_then(|c| c.checked_mul(dtype.size()));
            if expected != Some(nbytes) {
                return Err(malformed(format!(
                    "variable '{name}': payload {nbytes} bytes != shape {shape:?} x {}",
                    dtype.name()
                )));
            }
            if offset + nbytes > size {
                return Err(Ct2Error::Truncated {
                    path: path.to_path_buf(),
                    index: i + 1,
                    count: n,
                    name,
                    shape,
                    dtype: dtype.name(),
                    needed: offset + nbytes,
                    size,
                });
            }
            let var = Var {
                dtype,
                shape,
                offset,
            };
            match index.get(&name) {
                Some(&k) => vars[k].1 = var,
                None => {
                    index.insert(name.clone(), vars.len());
                    vars.push((name, var));
                }
            }
            t.skip(nbytes)?;
        }
        let mut aliases = HashMap::new();
        if binary_version >= 3 {
            for _ in 0..t.u32()? {
                let alias = t.string()?;
                let target = t.string()?;
                aliases.insert(alias, target);
            }
        }
        let trailing = size.saturating_sub(t.pos);
        Ok(Self {
            path: path.to_path_buf(),
            file: t.r.into_inner(),
            binary_version,
            spec,
            vars,
            index,
            aliases,
            trailing,
        })
    }

    fn malformed(&self, detail: String) -> Ct2Error {
        Ct2Error::Malformed {
            path: self.path.clone(),
            detail,
        }
    }

    fn unsupported(&self, detail: String) -> Ct2Error {
        Ct2Error::Unsupported {
            path: self.path.clone(),
            detail,
        }
    }

    fn io(&self, action: &'static str, source: io::Error) -> Ct2Error {
        Ct2Error::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }

    fn resolve<'a>(&'a self, mut name: &'a str) -> &'a str {
        let mut seen = 0;
        while !self.index.contains_key(name) && seen < 16 {
            match self.aliases.get(name) {
                Some(target) => name = target,
                None => break,
            }
            seen += 1;
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<&Var> {
        let k = *self.index.get(self.resolve(name))?;
        self.vars.get(k).map(|(_, v)| v)
    }

    fn has(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    fn var(&self, name: &str) -> Result<&Var, Ct2Error> {
        self.lookup(name).ok_or_else(|| Ct2Error::MissingVariable {
            path: self.path.clone(),
            name: name.to_owned(),
        })
    }

    /// First dimension of a variable.
    fn rows(&self, name: &str) -> Result<u64, Ct2Error> {
        let v = self.var(name)?;
        v.shape
            .first()
            .copied()
            .ok_or_else(|| self.malformed(format!("'{name}' is a scalar, expected a tensor")))
    }

    fn count_layers(&self, prefix: &str) -> u64 {
        let mut n = 0;
        while self.has(&format!("{prefix}/layer_{n}/ffn/linear_0/weight")) {
            n += 1;
        }
        n
    }

    fn to_i32(&self, v: u64, what: &str) -> Result<i32, Ct2Error> {
        i32::try_from(v)
            .map_err(|_| self.malformed(format!("{what} {v} does not fit a ggml int32")))
    }

    /// The single value of a variable as stored (no dequantization), or None if absent.
    fn scalar(&self, name: &str) -> Result<Option<Scalar>, Ct2Error> {
        let Some(var) = self.lookup(name) else {
            return Ok(None);
        };
        if var.count() != 1 {
            return Err(self.malformed(format!(
                "'{name}' should be a single value, it has shape {:?}",
                var.shape
            )));
        }
        let size = var.dtype.size() as usize;
        let mut b = [0u8; 4];
        let mut file = &self.file;
        file.seek(SeekFrom::Start(var.offset))
            .and_then(|_| file.read_exact(&mut b[..size]))
            .map_err(|e| self.io("reading", e))?;
        let [b0, b1, ..] = b;
        Ok(Some(match var.dtype {
            DType::I8 => Scalar::Int(i64::from(b0 as i8)),
            DType::I16 => Scalar::Int(i64::from(i16::from_le_bytes([b0, b1]))),
            DType::I32 => Scalar::Int(i64::from(i32::from_le_bytes(b))),
            DType::F32 => Scalar::Float(f64::from(f32::from_le_bytes(b))),
            DType::F16 => Scalar::Float(f64::from(f16::from_le_bytes([b0, b1]))),
            DType::Bf16 => Scalar::Float(f64::from(f32::from_bits(
                u32::from(u16::from_le_bytes([b0, b1])) << 16,
            ))),
        }))
    }

    /// `int(m.scalar(name))`.
    fn int_scalar(&self, name: &str) -> Result<u64, Ct2Error> {
        let v = self
            .scalar(name)?
            .ok_or_else(|| Ct2Error::MissingVariable {
                path: self.path.clone(),
                name: name.to_owned(),
            })?;
        let i = match v {
            Scalar::Int(i) => i,
            Scalar::Float(f) if f.is_finite() => f.trunc() as i64,
            Scalar::Float(f) => return Err(self.malformed(format!("'{name}' is {f}"))),
        };
        // Python packs it as int32, which also takes negatives; none make sense here.
        u64::try_from(i).map_err(|_| self.malformed(format!("'{name}' is {i}")))
    }

    /// What whisper.cpp cannot express: refuse rather than write a wrong model.
    fn refuse_unsupported(&self) -> Result<(), Ct2Error> {
        if !self
            .scalar("decoder/activation")?
            .unwrap_or(Scalar::Int(3))
            .equals(3)
        {
            return Err(self.unsupported("the decoder activation is not GELU".into()));
        }
        if self.has("decoder/scale_embeddings") {
            // int8 flag: 1 means "multiply by sqrt(d)"; a float is the factor itself
            if let Some(se) = self.scalar("decoder/scale_embeddings")? {
                let scaled = match se {
                    Scalar::Int(i) => i != 0,
                    Scalar::Float(f) => f != 1.0,
                };
                if scaled {
                    return Err(self.unsupported(format!(
                        "decoder/scale_embeddings={se} (whisper.cpp does not scale the embeddings)"
                    )));
                }
            }
        }
        for (name, _) in &self.vars {
            if name.ends_with("queries_scale") || name.ends_with("scale_outputs") {
                if let Some(v) = self.scalar(name)? {
                    if !v.equals(1) {
                        return Err(self.unsupported(format!("{name}={v} is not supported")));
                    }
                }
            }
        }
        let proj = "decoder/projection/weight";
        let emb = "decoder/embeddings/weight";
        if self.has(proj)
            && self.resolve(proj) != self.resolve(emb)
            && !self.same_values(proj, emb)?
        {
            return Err(
                self.unsupported("the output projection is not tied to the token embedding".into())
            );
        }
        let bias = "decoder/projection/bias";
        if self.has(bias) {
            let src = self.source(bias)?;
            let n = src.var.count();
            let mut nonzero = false;
            self.read(&src, 0, n, |vals| {
                nonzero |= vals.iter().any(|&v| v != 0.0);
                Ok(())
            })?;
            if nonzero {
                return Err(self.unsupported("the output projection has a non-zero bias".into()));
            }
        }
        Ok(())
    }

    /// `np.array_equal(m.float32(a), m.float32(b))`, streamed.
    fn same_values(&self, a: &str, b: &str) -> Result<bool, Ct2Error> {
        let (sa, sb) = (self.source(a)?, self.source(b)?);
        if sa.var.shape != sb.var.shape {
            return Ok(false);
        }
        let n = sa.var.count();
        let mut start = 0;
        while start < n {
            let end = n.min(start + CHUNK as u64);
            let mut va = Vec::new();
            self.read(&sa, start, end, |v| {
                va.extend_from_slice(v);
                Ok(())
            })?;
            let mut equal = true;
            let mut k = 0;
            self.read(&sb, start, end, |v| {
                equal &= va.get(k..k + v.len()).is_some_and(|a| a == v);
                k += v.len();
                Ok(())
            })?;
            if !equal {
                return Ok(false);
            }
            start = end;
        }
        Ok(true)
    }

    /// A variable to read as float32, dequantized with its `<name>_scale` if it is integer.
    fn source(&self, name: &str) -> Result<Source<'_>, Ct2Error> {
        let var = self.var(name)?;
        if !var.dtype.is_int() {
            return Ok(Source {
                var,
                scale: Scale::None,
            });
        }
        let scale_name = format!("{name}_scale");
        let Some(sv) = self.lookup(&scale_name) else {
            return Err(self.malformed(format!(
                "{name} is {} but has no {scale_name}",
                var.dtype.name()
            )));
        };
        let scale_src = Source {
            var: sv,
            scale: Scale::None,
        };
        let mut scales = Vec::new();
        self.read(&scale_src, 0, sv.count(), |v| {
            scales.extend_from_slice(v);
            Ok(())
        })?;
        if let [s] = scales.as_slice() {
            // CT2: x * (1.f / scale)
            return Ok(Source {
                var,
                scale: Scale::One(1.0f32 / s),
            });
        }
        let rows = var.shape.first().copied();
        if sv.shape.len() != 1 || rows != sv.shape.first().copied() {
            return Err(self.malformed(format!(
                "{name}: {scale_name} has shape {:?} for a weight of shape {:?} (expected one scale per row)",
                sv.shape, var.shape
            )));
        }
        Ok(Source {
            var,
            scale: Scale::Rows {
                inv: scales.iter().map(|s| 1.0f32 / s).collect(),
                row_len: var.row_len(),
            },
        })
    }

    /// Calls `f` with consecutive chunks of float32 values of elements `start..end`.
    fn read(
        &self,
        src: &Source<'_>,
        start: u64,
        end: u64,
        mut f: impl FnMut(&[f32]) -> Result<(), Ct2Error>,
    ) -> Result<(), Ct2Error> {
        if start >= end {
            return Ok(());
        }
        let dtype = src.var.dtype;
        let size = dtype.size() as usize;
        let mut file = &self.file;
        file.seek(SeekFrom::Start(src.var.offset + start * size as u64))
            .map_err(|e| self.io("seeking in", e))?;
        let mut bytes = Vec::new();
        let mut vals: Vec<f32> = Vec::new();
        let mut halves: Vec<f16> = Vec::new();
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(CHUNK as u64) as usize;
            bytes.resize(n * size, 0);
            file.read_exact(&mut bytes)
                .map_err(|e| self.io("reading", e))?;
            vals.clear();
            match dtype {
                DType::F32 => vals.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                ),
                DType::F16 => {
                    halves.clear();
                    halves.extend(
                        bytes
                            .chunks_exact(2)
                            .map(|c| f16::from_le_bytes([c[0], c[1]])),
                    );
                    vals.resize(n, 0.0);
                    halves.convert_to_f32_slice(&mut vals);
                }
                DType::Bf16 => vals.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16)),
                ),
                DType::I8 => vals.extend(bytes.iter().map(|&b| f32::from(b as i8))),
                DType::I16 => vals.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]]))),
                ),
                DType::I32 => vals.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32),
                ),
            }
            match &src.scale {
                Scale::None => {}
                Scale::One(inv) => vals.iter_mut().for_each(|v| *v *= inv),
                Scale::Rows { inv, row_len } => {
                    let mut k = 0usize;
                    while k < n {
                        let global = pos + k as u64;
                        let row = global / row_len;
                        let seg_end = n.min(((row + 1) * row_len - pos) as usize);
                        let s = inv.get(row as usize).copied().unwrap_or(f32::NAN);
                        vals[k..seg_end].iter_mut().for_each(|v| *v *= s);
                        k = seg_end;
                    }
                }
            }
            f(&vals)?;
            pos += n as u64;
        }
        Ok(())
    }

    /// Tensors in OpenAI state_dict order, with the checks the layout needs.
    fn plan(&self, d: u64, n_audio_layer: u64, n_text_layer: u64) -> Result<Vec<Plan>, Ct2Error> {
        let mut p = Planner {
            m: self,
            d,
            out: Vec::new(),
        };
        p.add(
            "encoder.positional_embedding",
            "encoder/position_encodings/encodings",
            Layout::Keep,
        );
        p.add("encoder.conv1.weight", "encoder/conv1/weight", Layout::Keep);
        p.add("encoder.conv1.bias", "encoder/conv1/bias", Layout::Column);
        p.add("encoder.conv2.weight", "encoder/conv2/weight", Layout::Keep);
        p.add("encoder.conv2.bias", "encoder/conv2/bias", Layout::Column);
        for i in 0..n_audio_layer {
            let (src, dst) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
            p.self_attn(&dst, &src)?;
            p.ffn(&dst, &src);
        }
        p.ln("encoder.ln_post", "encoder/layer_norm");

        p.add(
            "decoder.positional_embedding",
            "decoder/position_encodings/encodings",
            Layout::Keep,
        );
        p.add(
            "decoder.token_embedding.weight",
            "decoder/embeddings/weight",
            Layout::Keep,
        );
        for i in 0..n_text_layer {
            let (src, dst) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
            p.self_attn(&dst, &src)?;
            let ca = format!("{src}/attention");
            let kv = self.rows(&format!("{ca}/linear_1/weight"))?;
            if kv != 2 * d {
                return Err(
                    self.unsupported(format!("{ca} fused KV has {kv} rows, expected {}", 2 * d))
                );
            }
            p.zero_bias_check(&format!("{ca}/linear_1"), (0, d), &ca)?;
            p.lin(
                &format!("{dst}.cross_attn.query"),
                &format!("{ca}/linear_0"),
                None,
                true,
            );
            p.lin(
                &format!("{dst}.cross_attn.key"),
                &format!("{ca}/linear_1"),
                Some((0, d)),
                false,
            );
            p.lin(
                &format!("{dst}.cross_attn.value"),
                &format!("{ca}/linear_1"),
                Some((d, 2 * d)),
                true,
            );
            p.lin(
                &format!("{dst}.cross_attn.out"),
                &format!("{ca}/linear_2"),
                None,
                true,
            );
            p.ln(&format!("{dst}.cross_attn_ln"), &format!("{ca}/layer_norm"));
            p.ffn(&dst, &src);
        }
        p.ln("decoder.ln", "decoder/layer_norm");
        Ok(p.out)
    }
}

// ---------------------------------------------------------------------------------------------
// tensor plan

#[derive(Debug, Clone, Copy)]
enum Layout {
    Keep,
    /// `a[r0:r1]` along the first axis (clamped like a Python slice).
    Rows(u64, u64),
    /// `a.reshape(-1, 1)`.
    Column,
}

#[derive(Debug)]
struct Plan {
    name: String,
    src: String,
    layout: Layout,
}

impl Layout {
    /// Output shape and the element range of the source.
    fn apply(self, m: &Model, src: &str, var: &Var) -> Result<(Vec<u64>, u64, u64), Ct2Error> {
        Ok(match self {
            Layout::Keep => (var.shape.clone(), 0, var.count()),
            Layout::Column => (vec![var.count(), 1], 0, var.count()),
            Layout::Rows(r0, r1) => {
                let Some(&n) = var.shape.first() else {
                    return Err(m.malformed(format!("'{src}' is a scalar, expected rows to split")));
                };
                let (a, b) = (r0.min(n), r1.min(n).max(r0.min(n)));
                let row_len = var.row_len();
                let mut shape = var.shape.clone();
                shape[0] = b - a;
                (shape, a * row_len, b * row_len)
            }
        })
    }
}

struct Planner<'a> {
    m: &'a Model,
    d: u64,
    out: Vec<Plan>,
}

impl Planner<'_> {
    fn add(&mut self, name: &str, src: &str, layout: Layout) {
        self.out.push(Plan {
            name: name.to_owned(),
            src: src.to_owned(),
            layout,
        });
    }

    fn lin(&mut self, dst: &str, src: &str, rows: Option<(u64, u64)>, bias: bool) {
        let layout = rows.map_or(Layout::Keep, |(a, b)| Layout::Rows(a, b));
        self.add(&format!("{dst}.weight"), &format!("{src}/weight"), layout);
        if bias {
            self.add(&format!("{dst}.bias"), &format!("{src}/bias"), layout);
        }
    }

    fn ln(&mut self, dst: &str, src: &str) {
        self.add(
            &format!("{dst}.weight"),
            &format!("{src}/gamma"),
            Layout::Keep,
        );
        self.add(&format!("{dst}.bias"), &format!("{src}/beta"), Layout::Keep);
    }

    fn zero_bias_check(&self, src: &str, rows: (u64, u64), what: &str) -> Result<(), Ct2Error> {
        let name = format!("{src}/bias");
        if !self.m.has(&name) {
            return Ok(());
        }
        let s = self.m.source(&name)?;
        let (_, start, end) = Layout::Rows(rows.0, rows.1).apply(self.m, &name, s.var)?;
        let mut nonzero = false;
        self.m.read(&s, start, end, |v| {
            nonzero |= v.iter().any(|&x| x != 0.0);
            Ok(())
        })?;
        if nonzero {
            return Err(self.m.unsupported(format!(
                "{what}: key bias is not zero (whisper.cpp has no key bias)"
            )));
        }
        Ok(())
    }

    fn self_attn(&mut self, dst: &str, src: &str) -> Result<(), Ct2Error> {
        let d = self.d;
        let sa = format!("{src}/self_attention");
        let fused = self.m.rows(&format!("{sa}/linear_0/weight"))?;
        if fused != 3 * d {
            return Err(self.m.unsupported(format!(
                "{sa} fused QKV has {fused} rows, expected {}",
                3 * d
            )));
        }
        self.zero_bias_check(&format!("{sa}/linear_0"), (d, 2 * d), &sa)?;
        let l0 = format!("{sa}/linear_0");
        self.lin(&format!("{dst}.attn.query"), &l0, Some((0, d)), true);
        self.lin(&format!("{dst}.attn.key"), &l0, Some((d, 2 * d)), false);
        self.lin(
            &format!("{dst}.attn.value"),
            &l0,
            Some((2 * d, 3 * d)),
            true,
        );
        self.lin(
            &format!("{dst}.attn.out"),
            &format!("{sa}/linear_1"),
            None,
            true,
        );
        self.ln(&format!("{dst}.attn_ln"), &format!("{sa}/layer_norm"));
        Ok(())
    }

    fn ffn(&mut self, dst: &str, src: &str) {
        self.lin(
            &format!("{dst}.mlp.0"),
            &format!("{src}/ffn/linear_0"),
            None,
            true,
        );
        self.lin(
            &format!("{dst}.mlp.2"),
            &format!("{src}/ffn/linear_1"),
            None,
            true,
        );
        self.ln(&format!("{dst}.mlp_ln"), &format!("{src}/ffn/layer_norm"));
    }
}

// ---------------------------------------------------------------------------------------------
// output

struct Out {
    w: BufWriter<File>,
    path: PathBuf,
    bytes: u64,
}

impl Out {
    fn put(&mut self, b: &[u8]) -> Result<(), Ct2Error> {
        self.w.write_all(b).map_err(|source| Ct2Error::Io {
            action: "writing",
            path: self.path.clone(),
            source,
        })?;
        self.bytes += b.len() as u64;
        Ok(())
    }

    fn i32(&mut self, v: i32) -> Result<(), Ct2Error> {
        self.put(&v.to_le_bytes())
    }
}

fn write_ggml(
    m: &Model,
    tmp: &Path,
    header: &[i32],
    n_mels: u64,
    vocab: &[Vec<u8>],
    plans: &[Plan],
) -> Result<u64, Ct2Error> {
    let file = File::create(tmp).map_err(|source| Ct2Error::Io {
        action: "creating",
        path: tmp.to_path_buf(),
        source,
    })?;
    let mut out = Out {
        w: BufWriter::with_capacity(1 << 20, file),
        path: tmp.to_path_buf(),
        bytes: 0,
    };
    for &v in header {
        out.i32(v)?;
    }

    // mel filters, n_mels x 201 f32, one row at a time
    out.i32(m.to_i32(n_mels, "n_mels")?)?;
    out.i32(N_FREQ as i32)?;
    let mut row = Vec::with_capacity(N_FREQ * 4);
    let mel = MelPoints::new(n_mels);
    for i in 0..n_mels {
        row.clear();
        for w in mel.row(i) {
            row.extend_from_slice(&w.to_le_bytes());
        }
        out.put(&row)?;
    }

    out.i32(m.to_i32(vocab.len() as u64, "vocabulary size")?)?;
    for tb in vocab {
        out.i32(m.to_i32(tb.len() as u64, "token length")?)?;
        out.put(tb)?;
    }

    let mut bytes = Vec::new();
    let mut halves: Vec<f16> = Vec::new();
    for plan in plans {
        let src = m.source(&plan.src)?;
        let (shape, start, end) = plan.layout.apply(m, &plan.src, src.var)?;
        let use_f32 = shape.len() < 2 || F32_NAMES.contains(&plan.name.as_str());
        let name = plan.name.as_bytes();
        out.i32(m.to_i32(shape.len() as u64, "tensor rank")?)?;
        out.i32(m.to_i32(name.len() as u64, "tensor name length")?)?;
        out.i32(if use_f32 { 0 } else { 1 })?;
        for &dim in shape.iter().rev() {
            out.i32(m.to_i32(dim, "tensor dimension")?)?;
        }
        out.put(name)?;
        m.read(&src, start, end, |vals| {
            if vals.iter().any(|v| !v.is_finite()) {
                return Err(Ct2Error::NonFinite {
                    path: m.path.clone(),
                    tensor: plan.name.clone(),
                });
            }
            bytes.clear();
            if use_f32 {
                bytes.extend(vals.iter().flat_map(|v| v.to_le_bytes()));
            } else {
                halves.clear();
                halves.resize(vals.len(), f16::ZERO);
                halves.convert_from_f32_slice(vals);
                bytes.extend(halves.iter().flat_map(|h| h.to_le_bytes()));
            }
            out.put(&bytes)
        })?;
    }

    let path = out.path.clone();
    let file = out.w.into_inner().map_err(|e| Ct2Error::Io {
        action: "writing",
        path: path.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(|source| Ct2Error::Io {
        action: "writing",
        path,
        source,
    })?;
    Ok(out.bytes)
}

// ---------------------------------------------------------------------------------------------
// mel filters: librosa.filters.mel(sr=16000, n_fft=400, n_mels=N) (Slaney scale and norm), the
// contents of OpenAI's whisper/assets/mel_filters.npz. Same scalar f64 operations as the
// Python converter, then its float32 rounding steps.

const SAMPLE_RATE: u64 = 16_000;
const N_FFT: u64 = 400;
const N_FREQ: usize = 1 + (N_FFT / 2) as usize;

fn mel_consts() -> (f64, f64, f64, f64) {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    (f_sp, min_log_hz, min_log_mel, logstep)
}

fn hz_to_mel(f: f64) -> f64 {
    let (f_sp, min_log_hz, min_log_mel, logstep) = mel_consts();
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let (f_sp, min_log_hz, min_log_mel, logstep) = mel_consts();
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// `np.linspace(0, max_mel, n_mels + 2)` (start + i*step, last = max_mel), in Hz.
struct MelPoints {
    step: f64,
    max_mel: f64,
    last: u64,
}

impl MelPoints {
    fn new(n_mels: u64) -> Self {
        let max_mel = hz_to_mel(SAMPLE_RATE as f64 / 2.0);
        let last = n_mels + 1;
        Self {
            step: max_mel / last as f64,
            max_mel,
            last,
        }
    }

    fn hz(&self, i: u64) -> f64 {
        mel_to_hz(if i == self.last {
            self.max_mel
        } else {
            i as f64 * self.step
        })
    }

    fn row(&self, i: u64) -> impl Iterator<Item = f32> {
        let (f0, f1, f2) = (self.hz(i), self.hz(i + 1), self.hz(i + 2));
        let fd0 = f1 - f0;
        let fd1 = f2 - f1;
        let enorm = 2.0 / (f2 - f0);
        (0..N_FREQ as u64).map(move |j| {
            let fq = (j * SAMPLE_RATE) as f64 / N_FFT as f64;
            let lower = -(f0 - fq) / fd0;
            let upper = (f2 - fq) / fd1;
            // np.maximum(0, np.minimum(lower, upper)), signed zeros included
            let w = if lower < upper { lower } else { upper };
            let w = if 0.0 > w { 0.0 } else { w };
            // librosa builds the weights in float32, then multiplies by enorm
            (f64::from(w as f32) * enorm) as f32
        })
    }
}

// ---------------------------------------------------------------------------------------------
// vocabulary

#[derive(Debug)]
struct Tokens {
    path: PathBuf,
    tokens: Vec<Option<String>>,
}

fn read_file(path: &Path) -> Result<Vec<u8>, Ct2Error> {
    fs::read(path).map_err(|source| Ct2Error::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })
}

/// `tokenizer.json` `model.vocab`: token → id, in file order.
#[derive(Debug)]
struct OrderedVocab(Vec<(String, i64)>);

impl<'de> Deserialize<'de> for OrderedVocab {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedVocab;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from token to id")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = a.next_entry::<String, i64>()? {
                    v.push(entry);
                }
                Ok(OrderedVocab(v))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Deserialize)]
struct TokenizerJson {
    model: TokenizerModel,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
}

#[derive(Debug, Deserialize)]
struct TokenizerModel {
    vocab: OrderedVocab,
}

#[derive(Debug, Deserialize)]
struct AddedToken {
    content: String,
    id: i64,
}

fn load_vocabulary(dir: &Path) -> Result<Tokens, Ct2Error> {
    let txt = dir.join("vocabulary.txt");
    let js = dir.join("vocabulary.json");
    let tok = dir.join("tokenizer.json");
    let bad = |path: &Path, detail: String| Ct2Error::BadVocabulary {
        path: path.to_path_buf(),
        detail,
    };
    if txt.is_file() {
        let data = String::from_utf8(read_file(&txt)?)
            .map_err(|e| bad(&txt, format!("not UTF-8 ({e})")))?;
        let mut tokens: Vec<Option<String>> =
            data.split('\n').map(|s| Some(s.to_owned())).collect();
        if tokens.last().is_some_and(|t| t.as_deref() == Some("")) {
            tokens.pop();
        }
        return Ok(Tokens { path: txt, tokens });
    }
    if js.is_file() {
        let tokens: Vec<Option<String>> = serde_json::from_slice(&read_file(&js)?)
            .map_err(|e| bad(&js, format!("expected a JSON list of token strings ({e})")))?;
        return Ok(Tokens { path: js, tokens });
    }
    if tok.is_file() {
        let t: TokenizerJson = serde_json::from_slice(&read_file(&tok)?)
            .map_err(|e| bad(&tok, format!("not a tokenizer.json with model.vocab ({e})")))?;
        // dict(vocab), then added tokens: a repeated token keeps its place, takes the new id
        let mut entries: Vec<(String, i64)> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        let added = t.added_tokens.into_iter().map(|a| (a.content, a.id));
        for (s, id) in t.model.vocab.0.into_iter().chain(added) {
            match at.get(&s) {
                Some(&k) => {
                    if let Some(e) = entries.get_mut(k) {
                        e.1 = id;
                    }
                }
                None => {
                    at.insert(s.clone(), entries.len());
                    entries.push((s, id));
                }
            }
        }
        let Some(max) = entries.iter().map(|e| e.1).max() else {
            return Err(bad(&tok, "the vocabulary is empty".into()));
        };
        if let Some((s, id)) = entries.iter().find(|e| e.1 < 0 || e.1 > MAX_TOKEN_ID) {
            return Err(bad(&tok, format!("token {s:?} has id {id}")));
        }
        let mut tokens: Vec<Option<String>> = vec![None; max as usize + 1];
        for (s, id) in entries {
            if let Some(slot) = tokens.get_mut(id as usize) {
                *slot = Some(s);
            }
        }
        return Ok(Tokens { path: tok, tokens });
    }
    Err(Ct2Error::NoVocabulary {
        dir: dir.to_path_buf(),
    })
}

/// GPT-2 `bytes_to_unicode`, inverted: code point → byte (code points 0..=323).
fn unicode_to_bytes() -> [Option<u8>; 324] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
    let mut table = [None; 324];
    let mut n = 0usize;
    for b in 0..=255u8 {
        if printable(b) {
            table[usize::from(b)] = Some(b);
        } else {
            table[256 + n] = Some(b);
            n += 1;
        }
    }
    table
}

/// Token byte strings for ids below `<|endoftext|>`, as convert-pt-to-ggml.py writes them.
fn vocab_bytes(t: &Tokens) -> Result<Vec<Vec<u8>>, Ct2Error> {
    let Some(eot) = t.tokens.iter().position(|s| s.as_deref() == Some(EOT)) else {
        return Err(Ct2Error::BadVocabulary {
            path: t.path.clone(),
            detail: format!("no {EOT} token"),
        });
    };
    let dec = unicode_to_bytes();
    t.tokens[..eot]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.as_deref().unwrap_or("");
            s.chars()
                .map(|c| dec.get(c as usize).copied().flatten())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| Ct2Error::BadVocabulary {
                    path: t.path.clone(),
                    detail: format!("token {i} {s:?} is not byte-level BPE text"),
                })
        })
        .collect()
}
