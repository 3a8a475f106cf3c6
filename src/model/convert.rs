//! CTranslate2 Whisper models (as faster-whisper uses them) to whisper.cpp's
//! ggml format, in pure Rust. The facts this follows — the CTranslate2 layout,
//! the name mapping, the ggml header, the tensor types whisper.cpp insists on —
//! are in the module's tests and in `models/README.md`.

use std::collections::HashMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::ggml::{GGML_MAGIC, N_VOCAB_ENGLISH};
use crate::pipeline::WHISPER_RATE;

/// The ggml file type sotto writes: tensors in f16.
const GGML_FTYPE_F16: i32 = 1;
/// Whisper's STFT: 400-sample windows (25 ms at 16 kHz)…
const N_FFT: usize = 400;
/// …so 201 frequency bins per mel filter.
const N_FFT_BINS: usize = N_FFT / 2 + 1;
use super::mel::mel_filters;

/// Why a conversion failed. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(
        "cannot read {path}: {reason} (give the folder that holds model.bin and vocabulary.txt or vocabulary.json)"
    )]
    Read { path: PathBuf, reason: String },
    #[error("{path} is not a CTranslate2 Whisper model: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: {reason}; convert a float16 or float32 CTranslate2 model instead")]
    Unsupported { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// CTranslate2 variable data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Dtype {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Dtype::F32,
            1 => Dtype::I8,
            2 => Dtype::I16,
            3 => Dtype::I32,
            4 => Dtype::F16,
            5 => Dtype::Bf16,
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            Dtype::I8 => 1,
            Dtype::I16 | Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::F32 | Dtype::I32 => 4,
        }
    }
}

/// One variable of a CTranslate2 model.
#[derive(Debug, Clone)]
pub struct Variable {
    dims: Vec<usize>,
    dtype: Dtype,
    data: Vec<u8>,
}

impl Variable {
    /// The shape, outermost dimension first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The values as f32, whatever float type they are stored in.
    fn to_f32(&self) -> Option<Vec<f32>> {
        Some(match self.dtype {
            Dtype::F32 => self
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => self
                .data
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::Bf16 => self
                .data
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            _ => return None,
        })
    }

    fn scalar_int(&self) -> Option<i64> {
        Some(match (self.dtype, self.data.as_slice()) {
            (Dtype::I8, [a, ..]) => i64::from(*a as i8),
            (Dtype::I16, [a, b, ..]) => i64::from(i16::from_le_bytes([*a, *b])),
            (Dtype::I32, [a, b, c, d, ..]) => i64::from(i32::from_le_bytes([*a, *b, *c, *d])),
            _ => return None,
        })
    }
}

/// IEEE half to single precision.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise.
            let shift = m.leading_zeros() - 21;
            let m = (m << shift) & 0x3ff;
            sign | ((113 - shift) << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Single to half precision, rounding to nearest even.
pub fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xff) as i32;
    let mant = x & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut r = m >> shift;
        if rest > half || (rest == half && r & 1 == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (mant >> 13);
    let rest = mant & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && r & 1 == 1) {
        r += 1;
    }
    sign | r as u16
}

/// A parsed CTranslate2 `model.bin`.
pub struct Ct2Model {
    pub spec: String,
    pub variables: HashMap<String, Variable>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u16()? as usize;
        let bytes = self.take(n)?;
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// Parses a CTranslate2 model file. Every length is checked against the data:
/// malformed input is an error, never a panic.
pub fn parse_ct2(data: &[u8], path: &Path) -> Result<Ct2Model, ConvertError> {
    let bad = |reason: &str| ConvertError::Format {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut c = Cursor { data, pos: 0 };
    let version = c.u32().ok_or_else(|| bad("file too short"))?;
    if !(5..=6).contains(&version) {
        return Err(bad(&format!("binary version {version}, expected 5 or 6")));
    }
    let spec = c.string().ok_or_else(|| bad("no spec name"))?;
    let _revision = c.u32().ok_or_else(|| bad("no spec revision"))?;
    let n_vars = c.u32().ok_or_else(|| bad("no variable count"))? as usize;
    if n_vars > 100_000 {
        return Err(bad(&format!("{n_vars} variables")));
    }
    let mut variables = HashMap::with_capacity(n_vars);
    for _ in 0..n_vars {
        let name = c.string().ok_or_else(|| bad("variable list ends early"))?;
        let rank = c.u8().ok_or_else(|| bad("variable list ends early"))? as usize;
        if rank > 8 {
            return Err(bad(&format!("variable {name} has rank {rank}")));
        }
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            dims.push(c.u32().ok_or_else(|| bad("variable list ends early"))? as usize);
        }
        let dtype_code = c.u8().ok_or_else(|| bad("variable list ends early"))?;
        let dtype = Dtype::from_code(dtype_code)
            .ok_or_else(|| bad(&format!("variable {name} has unknown type {dtype_code}")))?;
        let n_bytes = c.u32().ok_or_else(|| bad("variable list ends early"))? as usize;
        let n_elements = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad("dimensions overflow"))?;
        if n_elements.checked_mul(dtype.size()) != Some(n_bytes) {
            return Err(bad(&format!(
                "variable {name}: {n_bytes} bytes do not match its shape {dims:?}"
            )));
        }
        let bytes = c
            .take(n_bytes)
            .ok_or_else(|| bad(&format!("file ends inside variable {name}")))?;
        variables.insert(
            name,
            Variable {
                dims,
                dtype,
                data: bytes.to_vec(),
            },
        );
    }
    // Aliases (the tied output projection) carry no data; nothing else follows.
    Ok(Ct2Model { spec, variables })
}

/// A tensor to write: name, PyTorch-order shape, values, and whether it is f16.
struct Tensor {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
    f16: bool,
}

/// GPT-2's byte-level alphabet, reversed: the character each byte was mapped to,
/// back to the byte.
fn gpt2_unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~')).collect();
    printable.extend(u32::from('¡')..=u32::from('¬'));
    printable.extend(u32::from('®')..=u32::from('ÿ'));
    let mut map = HashMap::with_capacity(256);
    let mut extra = 0u32;
    for b in 0u32..256 {
        let ch = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        map.insert(char::from_u32(ch).expect("valid code point"), b as u8);
    }
    map
}

/// Decodes one GPT-2 byte-level token to its raw bytes; special tokens such as
/// `<|endoftext|>` are written as their text.
pub fn token_bytes(token: &str, table: &HashMap<char, u8>) -> Vec<u8> {
    if token.starts_with("<|") && token.ends_with("|>") {
        return token.as_bytes().to_vec();
    }
    token
        .chars()
        .map(|c| table.get(&c).copied().ok_or(c))
        .collect::<Result<Vec<u8>, char>>()
        .unwrap_or_else(|_| token.as_bytes().to_vec())
}

/// What a conversion produced.
#[derive(Debug, Clone)]
pub struct Converted {
    pub n_vocab: usize,
    pub n_audio_layer: usize,
    pub n_text_layer: usize,
    pub n_state: usize,
    pub n_mels: usize,
    pub n_tensors: usize,
    pub multilingual: bool,
    pub bytes: u64,
}

fn count_layers(vars: &HashMap<String, Variable>, prefix: &str) -> usize {
    // `layer_norm` also starts with `layer_`: count only `layer_<digits>/`.
    let mut max = None;
    for name in vars.keys() {
        if let Some(rest) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("layer_"))
        {
            if let Some((digits, _)) = rest.split_once('/') {
                if let Ok(n) = digits.parse::<usize>() {
                    max = Some(max.map_or(n, |m: usize| m.max(n)));
                }
            }
        }
    }
    max.map_or(0, |m| m + 1)
}

/// Converts the CTranslate2 Whisper model in `dir` (model.bin, and
/// vocabulary.txt or vocabulary.json) to a ggml file at `out`, written to a
/// temporary file first and renamed, so an interrupted conversion leaves
/// nothing half-written.
pub fn convert_dir(dir: &Path, out: &Path) -> Result<Converted, ConvertError> {
    let model_path = dir.join("model.bin");
    let read = |p: &Path| {
        fs::read(p).map_err(|e| ConvertError::Read {
            path: p.to_path_buf(),
            reason: e.to_string(),
        })
    };
    let model_bytes = read(&model_path)?;
    let vocabulary = read_vocabulary(dir)?;
    let vocabulary: Vec<&str> = vocabulary.iter().map(String::as_str).collect();
    let model = parse_ct2(&model_bytes, &model_path)?;
    drop(model_bytes);
    let bytes = to_ggml(&model, &vocabulary, &model_path, out)?;
    Ok(bytes)
}

/// The tokens in id order: `vocabulary.txt` (one per line, as faster-whisper's
/// conversions ship it) or else `vocabulary.json` (a JSON array of strings,
/// as newer CTranslate2 conversions ship it).
fn read_vocabulary(dir: &Path) -> Result<Vec<String>, ConvertError> {
    let txt = dir.join("vocabulary.txt");
    let json = dir.join("vocabulary.json");
    let (path, is_json) = if !txt.exists() && json.exists() {
        (json, true)
    } else {
        (txt, false)
    };
    let bytes = fs::read(&path).map_err(|e| ConvertError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let format = |reason: &str| ConvertError::Format {
        path: path.clone(),
        reason: reason.into(),
    };
    let text = String::from_utf8(bytes).map_err(|_| format("it is not UTF-8"))?;
    if !is_json {
        return Ok(text.lines().map(str::to_owned).collect());
    }
    serde_json::from_str::<Vec<String>>(&text)
        .map_err(|e| format(&format!("it is not a JSON array of token strings ({e})")))
}

/// Writes a parsed model and its vocabulary as ggml.
pub fn to_ggml(
    model: &Ct2Model,
    vocabulary: &[&str],
    model_path: &Path,
    out: &Path,
) -> Result<Converted, ConvertError> {
    let fmt = |reason: String| ConvertError::Format {
        path: model_path.to_path_buf(),
        reason,
    };
    if model.spec != "WhisperSpec" {
        return Err(fmt(format!(
            "its spec is {:?}, not WhisperSpec",
            model.spec
        )));
    }
    let vars = &model.variables;
    let get = |name: &str| {
        vars.get(name)
            .ok_or_else(|| fmt(format!("variable {name} is missing")))
    };
    let floats = |name: &str| -> Result<Vec<f32>, ConvertError> {
        let v = get(name)?;
        v.to_f32().ok_or_else(|| ConvertError::Unsupported {
            path: model_path.to_path_buf(),
            reason: format!("variable {name} is quantised ({:?})", v.dtype),
        })
    };

    let embeddings = get("decoder/embeddings/weight")?;
    let [n_vocab, n_state] = embeddings.dims[..] else {
        return Err(fmt("decoder/embeddings/weight is not 2-D".into()));
    };
    let enc_pos = get("encoder/position_encodings/encodings")?;
    let dec_pos = get("decoder/position_encodings/encodings")?;
    let conv1 = get("encoder/conv1/weight")?;
    let first_dim = |v: &Variable, name: &str| {
        v.dims
            .first()
            .copied()
            .ok_or_else(|| fmt(format!("{name} has no dimensions")))
    };
    let n_audio_ctx = first_dim(enc_pos, "encoder/position_encodings/encodings")?;
    let n_text_ctx = first_dim(dec_pos, "decoder/position_encodings/encodings")?;
    let n_mels = *conv1
        .dims
        .get(1)
        .ok_or_else(|| fmt("encoder/conv1/weight is not 3-D".into()))?;
    let n_audio_head = get("encoder/num_heads")?.scalar_int().unwrap_or(0) as usize;
    let n_text_head = get("decoder/num_heads")?.scalar_int().unwrap_or(0) as usize;
    let n_audio_layer = count_layers(vars, "encoder/");
    let n_text_layer = count_layers(vars, "decoder/");
    if n_audio_head == 0 || n_text_head == 0 || n_audio_layer == 0 || n_text_layer == 0 {
        return Err(fmt("no attention heads or layers".into()));
    }
    if vocabulary.len() != n_vocab {
        return Err(fmt(format!(
            "the vocabulary has {} tokens but the embeddings have {n_vocab} rows",
            vocabulary.len()
        )));
    }
    let eot = vocabulary
        .iter()
        .position(|t| *t == "<|endoftext|>")
        .ok_or_else(|| fmt("the vocabulary has no <|endoftext|>".into()))?;

    // Tensors in OpenAI's state-dict order.
    let mut tensors: Vec<Tensor> = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, values: Vec<f32>, f16: bool| {
        tensors.push(Tensor {
            name,
            shape,
            values,
            f16,
        });
    };
    let shape_of = |name: &str| -> Result<Vec<usize>, ConvertError> { Ok(get(name)?.dims.clone()) };

    push(
        "encoder.positional_embedding".into(),
        shape_of("encoder/position_encodings/encodings")?,
        floats("encoder/position_encodings/encodings")?,
        false,
    );
    for conv in ["conv1", "conv2"] {
        let w = format!("encoder/{conv}/weight");
        push(
            format!("encoder.{conv}.weight"),
            shape_of(&w)?,
            floats(&w)?,
            true,
        );
        let b = format!("encoder/{conv}/bias");
        let bias = floats(&b)?;
        push(
            format!("encoder.{conv}.bias"),
            vec![bias.len(), 1],
            bias,
            false,
        );
    }
    let linear = |ct2: &str,
                  out: &str,
                  push: &mut dyn FnMut(String, Vec<usize>, Vec<f32>, bool)|
     -> Result<(), ConvertError> {
        let w = format!("{ct2}/weight");
        push(format!("{out}.weight"), shape_of(&w)?, floats(&w)?, true);
        let b = format!("{ct2}/bias");
        push(format!("{out}.bias"), shape_of(&b)?, floats(&b)?, false);
        Ok(())
    };
    let norm = |ct2: &str,
                out: &str,
                push: &mut dyn FnMut(String, Vec<usize>, Vec<f32>, bool)|
     -> Result<(), ConvertError> {
        let g = format!("{ct2}/gamma");
        push(format!("{out}.weight"), shape_of(&g)?, floats(&g)?, false);
        let b = format!("{ct2}/beta");
        push(format!("{out}.bias"), shape_of(&b)?, floats(&b)?, false);
        Ok(())
    };
    // Splits a fused projection (rows stacked) into parts; biases of the parts
    // named in `no_bias` must be zero and are dropped.
    let split = |ct2: &str,
                 names: &[&str],
                 push: &mut dyn FnMut(String, Vec<usize>, Vec<f32>, bool)|
     -> Result<(), ConvertError> {
        let w_name = format!("{ct2}/weight");
        let b_name = format!("{ct2}/bias");
        let w = floats(&w_name)?;
        let b = floats(&b_name)?;
        let dims = shape_of(&w_name)?;
        let [rows, cols] = dims[..] else {
            return Err(fmt(format!("{w_name} is not 2-D")));
        };
        let parts = names.len();
        if rows % parts != 0 || b.len() != rows {
            return Err(fmt(format!(
                "{w_name} has {rows} rows, not {parts} equal parts"
            )));
        }
        let part_rows = rows / parts;
        for (i, name) in names.iter().enumerate() {
            let w_part = w[i * part_rows * cols..(i + 1) * part_rows * cols].to_vec();
            push(
                format!("{name}.weight"),
                vec![part_rows, cols],
                w_part,
                true,
            );
            let b_part = b[i * part_rows..(i + 1) * part_rows].to_vec();
            if name.ends_with(".key") {
                if b_part.iter().any(|x| *x != 0.0) {
                    return Err(fmt(format!(
                        "{b_name}: the key bias is not zero, which ggml Whisper cannot hold"
                    )));
                }
            } else {
                push(format!("{name}.bias"), vec![part_rows], b_part, false);
            }
        }
        Ok(())
    };

    // The parts every block has: self-attention (fused q;k;v split into three)
    // and the feed-forward network, each with its layer norm.
    let self_attention = |c: &str,
                          o: &str,
                          push: &mut dyn FnMut(String, Vec<usize>, Vec<f32>, bool)|
     -> Result<(), ConvertError> {
        split(
            &format!("{c}/self_attention/linear_0"),
            &[
                &format!("{o}.attn.query"),
                &format!("{o}.attn.key"),
                &format!("{o}.attn.value"),
            ],
            push,
        )?;
        linear(
            &format!("{c}/self_attention/linear_1"),
            &format!("{o}.attn.out"),
            push,
        )?;
        norm(
            &format!("{c}/self_attention/layer_norm"),
            &format!("{o}.attn_ln"),
            push,
        )
    };
    let ffn = |c: &str,
               o: &str,
               push: &mut dyn FnMut(String, Vec<usize>, Vec<f32>, bool)|
     -> Result<(), ConvertError> {
        linear(&format!("{c}/ffn/linear_0"), &format!("{o}.mlp.0"), push)?;
        linear(&format!("{c}/ffn/linear_1"), &format!("{o}.mlp.2"), push)?;
        norm(&format!("{c}/ffn/layer_norm"), &format!("{o}.mlp_ln"), push)
    };

    for l in 0..n_audio_layer {
        let (c, o) = (format!("encoder/layer_{l}"), format!("encoder.blocks.{l}"));
        self_attention(&c, &o, &mut push)?;
        ffn(&c, &o, &mut push)?;
    }
    norm("encoder/layer_norm", "encoder.ln_post", &mut push)?;

    push(
        "decoder.positional_embedding".into(),
        shape_of("decoder/position_encodings/encodings")?,
        floats("decoder/position_encodings/encodings")?,
        false,
    );
    push(
        "decoder.token_embedding.weight".into(),
        shape_of("decoder/embeddings/weight")?,
        floats("decoder/embeddings/weight")?,
        true,
    );
    for l in 0..n_text_layer {
        let (c, o) = (format!("decoder/layer_{l}"), format!("decoder.blocks.{l}"));
        self_attention(&c, &o, &mut push)?;
        linear(
            &format!("{c}/attention/linear_0"),
            &format!("{o}.cross_attn.query"),
            &mut push,
        )?;
        split(
            &format!("{c}/attention/linear_1"),
            &[
                &format!("{o}.cross_attn.key"),
                &format!("{o}.cross_attn.value"),
            ],
            &mut push,
        )?;
        linear(
            &format!("{c}/attention/linear_2"),
            &format!("{o}.cross_attn.out"),
            &mut push,
        )?;
        norm(
            &format!("{c}/attention/layer_norm"),
            &format!("{o}.cross_attn_ln"),
            &mut push,
        )?;
        ffn(&c, &o, &mut push)?;
    }
    norm("decoder/layer_norm", "decoder.ln", &mut push)?;

    // Write to a temporary file beside the target, then rename.
    let tmp = out.with_extension("bin.partial");
    let werr = |e: std::io::Error| ConvertError::Write {
        path: out.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(werr)?;
    }
    let file = fs::File::create(&tmp).map_err(werr)?;
    let mut w = BufWriter::new(file);
    let i32le = |w: &mut BufWriter<fs::File>, v: i32| w.write_all(&v.to_le_bytes());
    let write_all = |w: &mut BufWriter<fs::File>| -> std::io::Result<()> {
        for v in [
            GGML_MAGIC as i32,
            n_vocab as i32,
            n_audio_ctx as i32,
            n_state as i32,
            n_audio_head as i32,
            n_audio_layer as i32,
            n_text_ctx as i32,
            n_state as i32,
            n_text_head as i32,
            n_text_layer as i32,
            n_mels as i32,
            GGML_FTYPE_F16,
        ] {
            i32le(w, v)?;
        }
        let filters = mel_filters(WHISPER_RATE, N_FFT, n_mels);
        i32le(w, n_mels as i32)?;
        i32le(w, N_FFT_BINS as i32)?;
        for f in &filters {
            w.write_all(&f.to_le_bytes())?;
        }
        let table = gpt2_unicode_to_byte();
        i32le(w, (eot + 1) as i32)?;
        for token in &vocabulary[..=eot] {
            let bytes = token_bytes(token, &table);
            i32le(w, bytes.len() as i32)?;
            w.write_all(&bytes)?;
        }
        for t in &tensors {
            i32le(w, t.shape.len() as i32)?;
            i32le(w, t.name.len() as i32)?;
            i32le(w, if t.f16 { 1 } else { 0 })?;
            for d in t.shape.iter().rev() {
                i32le(w, *d as i32)?;
            }
            w.write_all(t.name.as_bytes())?;
            if t.f16 {
                for v in &t.values {
                    w.write_all(&f32_to_f16(*v).to_le_bytes())?;
                }
            } else {
                for v in &t.values {
                    w.write_all(&v.to_le_bytes())?;
                }
            }
        }
        w.flush()?;
        w.get_ref().sync_all()
    };
    if let Err(e) = write_all(&mut w) {
        let _ = fs::remove_file(&tmp);
        return Err(werr(e));
    }
    drop(w);
    fs::rename(&tmp, out).map_err(werr)?;
    let bytes = fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(Converted {
        n_vocab,
        n_audio_layer,
        n_text_layer,
        n_state,
        n_mels,
        n_tensors: tensors.len(),
        multilingual: n_vocab > N_VOCAB_ENGLISH as usize,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ggml::check_model;

    /// Writes a CTranslate2 `model.bin` with the given variables.
    fn ct2_bytes(vars: &[(String, Vec<usize>, u8, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for (name, dims, dtype, data) in vars {
            string(&mut out, name);
            out.push(dims.len() as u8);
            for d in dims {
                out.extend_from_slice(&(*d as u32).to_le_bytes());
            }
            out.push(*dtype);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&1u32.to_le_bytes());
        string(&mut out, "decoder/projection/weight");
        string(&mut out, "decoder/embeddings/weight");
        out
    }

    /// A small random Whisper in CTranslate2 layout: `layers` layers of width
    /// `d`, with `n_vocab` tokens (51,864 English-only, more multilingual).
    fn tiny_model(d: usize, layers: usize, n_vocab: usize) -> (Vec<u8>, Vec<String>) {
        let mut seed = 1u32;
        let mut f16s = |n: usize| -> Vec<u8> {
            (0..n)
                .flat_map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    f32_to_f16((seed >> 8) as f32 / (1 << 24) as f32 * 0.02 - 0.01).to_le_bytes()
                })
                .collect()
        };
        let mut vars: Vec<(String, Vec<usize>, u8, Vec<u8>)> = Vec::new();
        let mut add =
            |name: String, dims: Vec<usize>, data: Vec<u8>| vars.push((name, dims, 4, data));
        let zeros = |n: usize| vec![0u8; n * 2];
        add("encoder/conv1/weight".into(), vec![d, 80, 3], f16s(d * 240));
        add("encoder/conv1/bias".into(), vec![d], f16s(d));
        add(
            "encoder/conv2/weight".into(),
            vec![d, d, 3],
            f16s(d * d * 3),
        );
        add("encoder/conv2/bias".into(), vec![d], f16s(d));
        add(
            "encoder/position_encodings/encodings".into(),
            vec![1500, d],
            f16s(1500 * d),
        );
        add(
            "decoder/position_encodings/encodings".into(),
            vec![448, d],
            f16s(448 * d),
        );
        add(
            "decoder/embeddings/weight".into(),
            vec![n_vocab, d],
            f16s(n_vocab * d),
        );
        for side in ["encoder", "decoder"] {
            for norm in ["layer_norm/gamma", "layer_norm/beta"] {
                add(format!("{side}/{norm}"), vec![d], f16s(d));
            }
            for l in 0..layers {
                let p = format!("{side}/layer_{l}");
                let mut qkv_bias = f16s(3 * d);
                qkv_bias[2 * d..4 * d].fill(0); // the key bias is zero
                add(
                    format!("{p}/self_attention/linear_0/weight"),
                    vec![3 * d, d],
                    f16s(3 * d * d),
                );
                add(
                    format!("{p}/self_attention/linear_0/bias"),
                    vec![3 * d],
                    qkv_bias,
                );
                add(
                    format!("{p}/self_attention/linear_1/weight"),
                    vec![d, d],
                    f16s(d * d),
                );
                add(
                    format!("{p}/self_attention/linear_1/bias"),
                    vec![d],
                    f16s(d),
                );
                add(
                    format!("{p}/ffn/linear_0/weight"),
                    vec![4 * d, d],
                    f16s(4 * d * d),
                );
                add(format!("{p}/ffn/linear_0/bias"), vec![4 * d], f16s(4 * d));
                add(
                    format!("{p}/ffn/linear_1/weight"),
                    vec![d, 4 * d],
                    f16s(4 * d * d),
                );
                add(format!("{p}/ffn/linear_1/bias"), vec![d], f16s(d));
                let mut norms = vec!["self_attention/layer_norm", "ffn/layer_norm"];
                if side == "decoder" {
                    norms.push("attention/layer_norm");
                    let mut kv_bias = f16s(2 * d);
                    kv_bias[..2 * d].fill(0);
                    add(
                        format!("{p}/attention/linear_0/weight"),
                        vec![d, d],
                        f16s(d * d),
                    );
                    add(format!("{p}/attention/linear_0/bias"), vec![d], f16s(d));
                    add(
                        format!("{p}/attention/linear_1/weight"),
                        vec![2 * d, d],
                        f16s(2 * d * d),
                    );
                    add(format!("{p}/attention/linear_1/bias"), vec![2 * d], kv_bias);
                    add(
                        format!("{p}/attention/linear_2/weight"),
                        vec![d, d],
                        f16s(d * d),
                    );
                    add(format!("{p}/attention/linear_2/bias"), vec![d], zeros(d));
                }
                for n in norms {
                    add(format!("{p}/{n}/gamma"), vec![d], f16s(d));
                    add(format!("{p}/{n}/beta"), vec![d], f16s(d));
                }
            }
        }
        vars.push((
            "encoder/num_heads".into(),
            vec![],
            2,
            2i16.to_le_bytes().to_vec(),
        ));
        vars.push((
            "decoder/num_heads".into(),
            vec![],
            2,
            2i16.to_le_bytes().to_vec(),
        ));
        let n_ordinary = if n_vocab > 51_864 { 50_257 } else { 50_256 };
        let mut vocab: Vec<String> = (0..n_ordinary).map(|i| format!("t{i}")).collect();
        vocab[0] = "Ġhello".into();
        vocab.push("<|endoftext|>".into());
        while vocab.len() < n_vocab {
            vocab.push(format!("<|special{}|>", vocab.len()));
        }
        (ct2_bytes(&vars), vocab)
    }

    fn convert_tiny(n_vocab: usize) -> (tempfile::TempDir, Converted, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab) = tiny_model(64, 2, n_vocab);
        std::fs::write(dir.path().join("model.bin"), model).unwrap();
        std::fs::write(dir.path().join("vocabulary.txt"), vocab.join("\n")).unwrap();
        let out = dir.path().join("out/ggml-test.bin");
        let converted = convert_dir(dir.path(), &out).unwrap();
        (dir, converted, out)
    }

    #[test]
    fn an_english_only_model_converts_to_a_file_whisper_cpp_loads() {
        whisper_rs::install_logging_hooks();
        let (_dir, c, out) = convert_tiny(51_864);
        assert!(!c.multilingual);
        // 5 + 2 encoder.ln_post + 15 per encoder layer; 4 + 2 + 24 per decoder layer.
        assert_eq!(c.n_tensors, 5 + 2 + 2 * 15 + 2 + 2 + 2 * 24);
        let info = check_model(&out).unwrap();
        assert_eq!(info.hparams.n_audio_layer, 2);
        assert_eq!(info.hparams.n_text_state, 64);
        assert_eq!(info.hparams.n_audio_head, 2);
        assert!(!info.hparams.is_multilingual());
        let ctx = whisper_rs::WhisperContext::new_with_params(&out, Default::default());
        assert!(ctx.is_ok(), "whisper.cpp refused the converted file");
    }

    #[test]
    fn a_multilingual_model_converts_too() {
        whisper_rs::install_logging_hooks();
        let (_dir, c, out) = convert_tiny(51_865);
        assert!(c.multilingual);
        let info = check_model(&out).unwrap();
        assert!(info.hparams.is_multilingual());
        let ctx = whisper_rs::WhisperContext::new_with_params(&out, Default::default()).unwrap();
        assert!(ctx.is_multilingual());
    }

    #[test]
    fn a_vocabulary_json_gives_the_same_file_as_vocabulary_txt() {
        let (_dir, _, from_txt) = convert_tiny(51_865);
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab) = tiny_model(64, 2, 51_865);
        std::fs::write(dir.path().join("model.bin"), model).unwrap();
        let json = dir.path().join("vocabulary.json");
        std::fs::write(&json, serde_json::to_string(&vocab).unwrap()).unwrap();
        let out = dir.path().join("from-json.bin");
        convert_dir(dir.path(), &out).unwrap();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&from_txt).unwrap()
        );

        std::fs::write(&json, "{\"not\": \"a list\"}").unwrap();
        let e = convert_dir(dir.path(), &out).unwrap_err().to_string();
        assert!(
            e.contains("vocabulary.json") && e.contains("not a JSON array"),
            "{e}"
        );
        std::fs::remove_file(&json).unwrap();
        let e = convert_dir(dir.path(), &out).unwrap_err().to_string();
        assert!(e.contains("vocabulary.txt or vocabulary.json"), "{e}");
    }

    #[test]
    fn vocabulary_is_decoded_from_gpt2_bytes() {
        let table = gpt2_unicode_to_byte();
        assert_eq!(token_bytes("Ġhello", &table), b" hello");
        assert_eq!(token_bytes("Ċ", &table), b"\n");
        assert_eq!(token_bytes("Ã©", &table), "é".as_bytes());
        assert_eq!(token_bytes("<|endoftext|>", &table), b"<|endoftext|>");
    }

    #[test]
    fn half_precision_round_trips() {
        for v in [
            0.0f32,
            1.0,
            -2.5,
            0.000_061_035_156,
            65504.0,
            1e-7,
            -0.333_251_95,
        ] {
            let back = f16_to_f32(f32_to_f16(v));
            assert!((back - v).abs() <= v.abs() * 1e-3 + 6e-8, "{v} → {back}");
        }
        assert!(f16_to_f32(f32_to_f16(f32::INFINITY)).is_infinite());
    }

    #[test]
    fn malformed_models_are_errors_not_panics() {
        let (model, _) = tiny_model(64, 1, 51_864);
        let path = Path::new("model.bin");
        for len in [0, 3, 10, 30, 100, 1000, model.len() / 2] {
            assert!(parse_ct2(&model[..len], path).is_err(), "length {len}");
        }
        let mut bad = model.clone();
        bad[0] = 99;
        assert!(parse_ct2(&bad, path).is_err());
    }

    #[test]
    fn a_nonzero_key_bias_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (model, vocab) = tiny_model(64, 1, 51_864);
        let mut parsed = parse_ct2(&model, Path::new("m")).unwrap();
        let bias = parsed
            .variables
            .get_mut("encoder/layer_0/self_attention/linear_0/bias")
            .unwrap();
        bias.data[64 * 2] = 0x3c; // a key-bias element becomes non-zero
        let vocab: Vec<&str> = vocab.iter().map(String::as_str).collect();
        let err = to_ggml(&parsed, &vocab, Path::new("m"), &dir.path().join("o.bin")).unwrap_err();
        assert!(err.to_string().contains("key bias is not zero"), "{err}");
    }

    /// A minimal file `check_model` accepts: tiny.en's header, a 80×2 mel
    /// table, three tokens and four small tensors (f32, f16, q8_0, 2-D).
    fn tiny_ggml() -> Vec<u8> {
        let mut b = Vec::new();
        let i32s = |b: &mut Vec<u8>, v: &[i32]| {
            for x in v {
                b.extend_from_slice(&x.to_le_bytes());
            }
        };
        i32s(&mut b, &[0x6767_6d6c_u32 as i32]);
        i32s(&mut b, &[51_864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);
        i32s(&mut b, &[80, 2]);
        b.extend(std::iter::repeat_n(0u8, 80 * 2 * 4));
        i32s(&mut b, &[3]);
        for token in ["!", " the", "<|endoftext|>"] {
            i32s(&mut b, &[token.len() as i32]);
            b.extend_from_slice(token.as_bytes());
        }
        for (name, ty, dims) in [
            ("encoder.conv1.bias", 0, vec![8]),
            ("encoder.blocks.0.mlp.0.weight", 1, vec![4, 2]),
            ("decoder.token_embedding.weight", 8, vec![32]),
            ("decoder.ln.weight", 0, vec![2]),
        ] {
            i32s(&mut b, &[dims.len() as i32, name.len() as i32, ty]);
            i32s(&mut b, &dims);
            b.extend_from_slice(name.as_bytes());
            let n: i32 = dims.iter().product();
            let bytes = match ty {
                0 => n * 4,
                1 => n * 2,
                _ => n / 32 * 34,
            };
            b.extend(std::iter::repeat_n(0u8, bytes as usize));
        }
        b
    }

    /// The fuzz tests' seeds in tests/fuzz-seeds: a tiny CTranslate2 model and a
    /// minimal ggml file, made here so they stay valid inputs. `SOTTO_BLESS=1`
    /// rewrites them; otherwise they must match.
    #[test]
    fn fuzz_seeds_are_the_tiny_models() {
        let dir = tempfile::tempdir().unwrap();
        let (model, _) = tiny_model(4, 1, 16);
        parse_ct2(&model, Path::new("model.bin")).unwrap();
        let ggml = tiny_ggml();
        let out = dir.path().join("tiny.bin");
        fs::write(&out, &ggml).unwrap();
        check_model(&out).unwrap();
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-seeds");
        for (path, bytes) in [
            (seeds.join("ct2/tiny-model.bin"), model),
            (seeds.join("ggml/tiny.bin"), ggml),
        ] {
            if std::env::var_os("SOTTO_BLESS").is_some() {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, &bytes).unwrap();
            }
            let on_disk = fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (SOTTO_BLESS=1 cargo test fuzz_seeds writes it)",
                    path.display()
                )
            });
            assert!(
                on_disk == bytes,
                "{} is stale; SOTTO_BLESS=1 rewrites it",
                path.display()
            );
        }
    }
}
