//! Reading and checking whisper.cpp's ggml model files before whisper.cpp sees
//! them: whisper.cpp aborts the process on some malformed files, so every
//! length, count and tensor size is checked here first.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

/// `ggml` in ASCII, as a little-endian u32.
pub const GGML_MAGIC: u32 = 0x6767_6d6c;

/// Vocabulary size of English-only Whisper models; multilingual ones have more.
pub const N_VOCAB_ENGLISH: i32 = 51_864;

/// The hyper-parameters in a ggml Whisper header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

impl Hparams {
    /// English-only models know one language.
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab > N_VOCAB_ENGLISH
    }

    /// A name for the model size from its layer count and width.
    pub fn size_name(&self) -> &'static str {
        match (self.n_audio_layer, self.n_audio_state) {
            (4, 384) => "tiny",
            (6, 512) => "base",
            (12, 768) => "small",
            (24, 1024) => "medium",
            (32, 1280) => "large",
            _ => "unknown",
        }
    }
}

/// What is wrong with a model file. The message says how to get a good one.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {path} not found; fetch the default model with `make model` (or models/fetch.sh), or pass --model PATH")]
    Missing { path: PathBuf },
    #[error("cannot read model {path}: {reason}; check its permissions, or pass another --model")]
    Unreadable { path: PathBuf, reason: String },
    #[error("model {path} is empty; delete it and fetch it again with `make model`")]
    Empty { path: PathBuf },
    #[error("{path} is not a whisper.cpp ggml model ({reason}); fetch the default model with `make model`, or convert yours with `sotto-convert`")]
    NotGgml { path: PathBuf, reason: String },
    #[error("model {path} is truncated or corrupt ({reason}); delete it and fetch it again with `make model`")]
    Corrupt { path: PathBuf, reason: String },
    #[error("model {path} is English-only but --language is {language:?}; use --language en, or a multilingual model (e.g. --model base)")]
    EnglishOnly { path: PathBuf, language: String },
    #[error("model {path} is English-only, so it cannot translate; use a multilingual model (e.g. --model base), or leave --translate out")]
    NoTranslation { path: PathBuf },
    #[error("--language {language:?} is not a language Whisper knows; use an ISO 639-1 code such as en, de, fr")]
    UnknownLanguage { language: String },
}

/// Bytes per block and elements per block of each ggml tensor type whisper.cpp loads.
fn type_block(ty: i32) -> Option<(u64, u64)> {
    Some(match ty {
        0 => (4, 1),      // f32
        1 => (2, 1),      // f16
        2 => (18, 32),    // q4_0
        3 => (20, 32),    // q4_1
        6 => (22, 32),    // q5_0
        7 => (24, 32),    // q5_1
        8 => (34, 32),    // q8_0
        9 => (36, 32),    // q8_1
        10 => (84, 256),  // q2_K
        11 => (110, 256), // q3_K
        12 => (144, 256), // q4_K
        13 => (176, 256), // q5_K
        14 => (210, 256), // q6_K
        15 => (292, 256), // q8_K
        30 => (2, 1),     // bf16
        _ => return None,
    })
}

struct Reader {
    inner: BufReader<File>,
    len: u64,
}

impl Reader {
    fn i32(&mut self) -> std::io::Result<i32> {
        let mut b = [0u8; 4];
        self.inner.read_exact(&mut b)?;
        Ok(i32::from_le_bytes(b))
    }
    fn pos(&mut self) -> u64 {
        self.inner.stream_position().unwrap_or(0)
    }
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        if self.pos() + n > self.len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.inner.seek_relative(n as i64)
    }
}

/// Summary of a checked model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub hparams: Hparams,
}

/// Checks a ggml Whisper model from its header to its last tensor.
pub fn check_model(path: &Path) -> Result<ModelInfo, ModelError> {
    let p = || path.to_path_buf();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModelError::Missing { path: p() })
        }
        Err(e) => {
            return Err(ModelError::Unreadable {
                path: p(),
                reason: e.to_string(),
            })
        }
    };
    let meta = file.metadata().map_err(|e| ModelError::Unreadable {
        path: p(),
        reason: e.to_string(),
    })?;
    if meta.is_dir() {
        return Err(ModelError::Unreadable {
            path: p(),
            reason: "it is a directory".into(),
        });
    }
    if meta.len() == 0 {
        return Err(ModelError::Empty { path: p() });
    }
    let mut r = Reader {
        inner: BufReader::new(file),
        len: meta.len(),
    };
    let corrupt = |reason: String| ModelError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let eof = |what: &str| ModelError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("file ends inside the {what}"),
    };

    let magic = r.i32().map_err(|_| ModelError::NotGgml {
        path: p(),
        reason: "shorter than a header".into(),
    })? as u32;
    if magic != GGML_MAGIC {
        return Err(ModelError::NotGgml {
            path: p(),
            reason: format!("magic {magic:#010x}, expected {GGML_MAGIC:#010x}"),
        });
    }
    let mut h = [0i32; 11];
    for v in &mut h {
        *v = r.i32().map_err(|_| eof("header"))?;
    }
    let hp = Hparams {
        n_vocab: h[0],
        n_audio_ctx: h[1],
        n_audio_state: h[2],
        n_audio_head: h[3],
        n_audio_layer: h[4],
        n_text_ctx: h[5],
        n_text_state: h[6],
        n_text_head: h[7],
        n_text_layer: h[8],
        n_mels: h[9],
        ftype: h[10],
    };
    let plausible = (50_000..=60_000).contains(&hp.n_vocab)
        && (1..=4096).contains(&hp.n_audio_ctx)
        && (64..=4096).contains(&hp.n_audio_state)
        && (1..=64).contains(&hp.n_audio_head)
        && (1..=64).contains(&hp.n_audio_layer)
        && (1..=4096).contains(&hp.n_text_ctx)
        && (64..=4096).contains(&hp.n_text_state)
        && (1..=64).contains(&hp.n_text_head)
        && (1..=64).contains(&hp.n_text_layer)
        && (hp.n_mels == 80 || hp.n_mels == 128)
        && (0..=2000).contains(&(hp.ftype % 1000));
    if !plausible {
        return Err(ModelError::NotGgml {
            path: p(),
            reason: format!("header values are not a Whisper model's: {hp:?}"),
        });
    }

    // Mel filters.
    let n_mel = r.i32().map_err(|_| eof("mel filters"))?;
    let n_fft = r.i32().map_err(|_| eof("mel filters"))?;
    if n_mel != hp.n_mels || !(1..=1024).contains(&n_fft) {
        return Err(corrupt(format!("mel filter table is {n_mel}×{n_fft}")));
    }
    r.skip(n_mel as u64 * n_fft as u64 * 4)
        .map_err(|_| eof("mel filters"))?;

    // Vocabulary.
    let n_tokens = r.i32().map_err(|_| eof("vocabulary"))?;
    if !(0..=hp.n_vocab).contains(&n_tokens) {
        return Err(corrupt(format!(
            "vocabulary has {n_tokens} tokens, more than n_vocab {}",
            hp.n_vocab
        )));
    }
    for _ in 0..n_tokens {
        let len = r.i32().map_err(|_| eof("vocabulary"))?;
        if !(0..=1024).contains(&len) {
            return Err(corrupt(format!("a vocabulary token is {len} bytes long")));
        }
        r.skip(len as u64).map_err(|_| eof("vocabulary"))?;
    }

    // Tensors, to the end of the file.
    let mut n_tensors = 0usize;
    let mut seen_encoder = false;
    let mut seen_decoder = false;
    while r.pos() < r.len {
        let n_dims = r.i32().map_err(|_| eof("tensor list"))?;
        let name_len = r.i32().map_err(|_| eof("tensor list"))?;
        let ty = r.i32().map_err(|_| eof("tensor list"))?;
        if !(1..=4).contains(&n_dims) || !(1..=256).contains(&name_len) {
            return Err(corrupt(format!(
                "tensor {n_tensors} has {n_dims} dimensions and a {name_len}-byte name"
            )));
        }
        let mut n_elements: u64 = 1;
        for _ in 0..n_dims {
            let d = r.i32().map_err(|_| eof("tensor list"))?;
            if d <= 0 {
                return Err(corrupt(format!("tensor {n_tensors} has dimension {d}")));
            }
            n_elements = n_elements.saturating_mul(d as u64);
        }
        let mut name = vec![0u8; name_len as usize];
        r.inner
            .read_exact(&mut name)
            .map_err(|_| eof("tensor list"))?;
        let name = String::from_utf8_lossy(&name).into_owned();
        let Some((block_bytes, block_elems)) = type_block(ty) else {
            return Err(corrupt(format!("tensor {name} has unknown type {ty}")));
        };
        if n_elements % block_elems != 0 {
            return Err(corrupt(format!(
                "tensor {name} does not fill whole blocks of its type"
            )));
        }
        let bytes = n_elements / block_elems * block_bytes;
        r.skip(bytes)
            .map_err(|_| eof(&format!("data of tensor {name}")))?;
        seen_encoder |= name.starts_with("encoder.");
        seen_decoder |= name.starts_with("decoder.");
        n_tensors += 1;
    }
    if !(seen_encoder && seen_decoder) {
        return Err(corrupt(format!(
            "{n_tensors} tensors, but no encoder and decoder"
        )));
    }
    Ok(ModelInfo { hparams: hp })
}

/// Checks `--translate` against the model: English-only models cannot.
pub fn check_translate(path: &Path, hparams: &Hparams, translate: bool) -> Result<(), ModelError> {
    if translate && !hparams.is_multilingual() {
        return Err(ModelError::NoTranslation {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Checks `--language` against the model: English-only models take only `en`.
pub fn check_language(path: &Path, hparams: &Hparams, language: &str) -> Result<(), ModelError> {
    if !hparams.is_multilingual() && language != "en" {
        return Err(ModelError::EnglishOnly {
            path: path.to_path_buf(),
            language: language.to_string(),
        });
    }
    if language != "auto" && whisper_rs::get_lang_id(language).is_none() {
        return Err(ModelError::UnknownLanguage {
            language: language.to_string(),
        });
    }
    Ok(())
}
