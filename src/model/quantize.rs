//! ggml's block quantisation of a whisper.cpp model, in pure Rust: what
//! whisper.cpp's `quantize` tool writes. A model's 2-D weight matrices become
//! blocks of 32 values sharing one f16 scale — 8 bits a value (`q8_0`) or 5
//! (`q5_0`) — and everything else stays as it is: 1-D tensors (biases, norms),
//! the 3-D convolutions, the two positional embeddings (whisper.cpp reads them
//! as f32) and the convolution biases, exactly the tensors whisper.cpp's tool
//! leaves. The header's file type becomes `2 × 1000 + ftype` (ggml's
//! quantisation version 2). The block layouts and rounding follow ggml's
//! reference quantisers (`quantize_row_q8_0_ref`, `quantize_row_q5_0_ref`);
//! a test compares the blocks, byte for byte, with what the ggml that sottod
//! links writes.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::convert::{f16_to_f32, f32_to_f16};
use super::ggml::GGML_MAGIC;

/// Values per block, in both formats.
pub const BLOCK: usize = 32;
/// ggml's quantisation format version, stored in the file type.
const QNT_VERSION: i32 = 2;
const QNT_VERSION_FACTOR: i32 = 1000;
/// 2-D tensors whisper.cpp's quantiser leaves as they are.
const KEPT: [&str; 4] = [
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];

/// A quantisation sotto writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quant {
    /// 8-bit values, one f16 scale per 32: 34 bytes a block.
    Q8_0,
    /// 5-bit values, one f16 scale per 32: 22 bytes a block.
    Q5_0,
}

impl Quant {
    pub fn name(self) -> &'static str {
        match self {
            Quant::Q8_0 => "q8_0",
            Quant::Q5_0 => "q5_0",
        }
    }

    /// ggml's tensor type.
    fn ggml_type(self) -> i32 {
        match self {
            Quant::Q8_0 => 8,
            Quant::Q5_0 => 6,
        }
    }

    /// ggml's file type ("mostly" this type).
    fn ftype(self) -> i32 {
        match self {
            Quant::Q8_0 => 7,
            Quant::Q5_0 => 8,
        }
    }

    /// Appends `values` (a multiple of [`BLOCK`]) as blocks.
    pub fn quantize(self, values: &[f32], out: &mut Vec<u8>) {
        for block in values.chunks_exact(BLOCK) {
            match self {
                Quant::Q8_0 => q8_0_block(block, out),
                Quant::Q5_0 => q5_0_block(block, out),
            }
        }
    }
}

/// `quantize_row_q8_0_ref`: scale `max |x| / 127`, values rounded half away
/// from zero.
fn q8_0_block(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
    out.extend(x.iter().map(|v| (v * id).round() as i8 as u8));
}

/// `quantize_row_q5_0_ref`: scale `-m / 16` where `m` is the value of largest
/// magnitude, values `x / d + 16.5` truncated to 0..=31; the low nibbles of
/// values j and j + 16 share byte j, and their fifth bits fill a u32.
fn q5_0_block(x: &[f32], out: &mut Vec<u8>) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
    let level = |v: f32| ((v * id + 16.5) as i8).min(31) as u8;
    let mut qh = 0u32;
    let mut qs = [0u8; BLOCK / 2];
    for j in 0..BLOCK / 2 {
        let (x0, x1) = (level(x[j]), level(x[j + BLOCK / 2]));
        qs[j] = (x0 & 0x0f) | ((x1 & 0x0f) << 4);
        qh |= u32::from((x0 & 0x10) >> 4) << j;
        qh |= u32::from((x1 & 0x10) >> 4) << (j + BLOCK / 2);
    }
    out.extend_from_slice(&qh.to_le_bytes());
    out.extend_from_slice(&qs);
}

/// Why a quantisation failed. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} is not a whisper.cpp model ({reason}); give a ggml .bin that sottod loads, or a CTranslate2 model folder")]
    NotGgml { path: PathBuf, reason: String },
    #[error(
        "{path} is quantised already (file type {ftype}); quantise the f16 model it came from"
    )]
    Quantised { path: PathBuf, ftype: i32 },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// What a quantisation wrote.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// Tensors quantised, of all.
    pub quantised: usize,
    pub tensors: usize,
    /// The file's size.
    pub bytes: u64,
}

/// Reads a ggml file front to back.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("it ends early, at byte {}", self.data.len()))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn count(&mut self, what: &str) -> Result<usize, String> {
        let v = self.i32()?;
        usize::try_from(v).map_err(|_| format!("{what} is {v}"))
    }
}

/// Quantises the ggml model `input` (f16 or f32 weights) to `out`, written
/// to a temporary file beside it and renamed, so nothing half-written is
/// left.
pub fn quantize_file(input: &Path, out: &Path, quant: Quant) -> Result<Quantized, QuantizeError> {
    let data = fs::read(input).map_err(|e| QuantizeError::Read {
        path: input.to_path_buf(),
        reason: e.to_string(),
    })?;
    let not_ggml = |reason: String| QuantizeError::NotGgml {
        path: input.to_path_buf(),
        reason,
    };
    let mut r = Bytes { data: &data, at: 0 };
    let mut w: Vec<u8> = Vec::with_capacity(data.len() / 2);
    let magic = r.i32().map_err(not_ggml)?;
    if magic as u32 != GGML_MAGIC {
        return Err(not_ggml("no ggml magic at the start".into()));
    }
    w.extend_from_slice(&magic.to_le_bytes());
    // n_vocab … n_mels: copied; the file type: replaced.
    w.extend_from_slice(r.take(10 * 4).map_err(not_ggml)?);
    let ftype = r.i32().map_err(not_ggml)?;
    if ftype % QNT_VERSION_FACTOR > 1 {
        return Err(QuantizeError::Quantised {
            path: input.to_path_buf(),
            ftype,
        });
    }
    w.extend_from_slice(&(QNT_VERSION * QNT_VERSION_FACTOR + quant.ftype()).to_le_bytes());
    // Mel filters and vocabulary: copied.
    let header = (|| -> Result<(), String> {
        let start = r.at;
        let n_mel = r.count("the mel count")?;
        let n_fft = r.count("the FFT size")?;
        r.take(n_mel * n_fft * 4)?;
        let n_vocab = r.count("the vocabulary size")?;
        for _ in 0..n_vocab {
            let len = r.count("a token's length")?;
            r.take(len)?;
        }
        w.extend_from_slice(&data[start..r.at]);
        Ok(())
    })();
    header.map_err(not_ggml)?;
    let (mut tensors, mut quantised) = (0, 0);
    let mut values = Vec::new();
    while r.at < data.len() {
        let tensor = (|| -> Result<bool, String> {
            let n_dims = r.count("a tensor's dimension count")?;
            let name_len = r.count("a tensor's name length")?;
            let ttype = r.i32()?;
            if n_dims == 0 || n_dims > 4 {
                return Err(format!("a tensor has {n_dims} dimensions"));
            }
            let mut ne = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                ne.push(r.count("a tensor's size")?);
            }
            let name_bytes = r.take(name_len)?;
            let name = String::from_utf8_lossy(name_bytes).into_owned();
            let elements: usize = ne.iter().product();
            let element_bytes = match ttype {
                0 => 4,
                1 => 2,
                t => return Err(format!("tensor {name} has type {t}, neither f32 nor f16")),
            };
            let raw = r.take(elements * element_bytes)?;
            let quantise = n_dims == 2 && !KEPT.contains(&name.as_str());
            if quantise && ne[0] % BLOCK != 0 {
                return Err(format!(
                    "tensor {name}'s rows have {} values, not a multiple of {BLOCK}",
                    ne[0]
                ));
            }
            let mut head = |ttype: i32| {
                for v in [n_dims as i32, name_len as i32, ttype] {
                    w.extend_from_slice(&v.to_le_bytes());
                }
                for d in &ne {
                    w.extend_from_slice(&(*d as i32).to_le_bytes());
                }
                w.extend_from_slice(name_bytes);
            };
            if !quantise {
                head(ttype);
                w.extend_from_slice(raw);
                return Ok(false);
            }
            head(quant.ggml_type());
            values.clear();
            if ttype == 1 {
                values.extend(
                    raw.chunks_exact(2)
                        .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))),
                );
            } else {
                values.extend(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            }
            quant.quantize(&values, &mut w);
            Ok(true)
        })();
        quantised += usize::from(tensor.map_err(not_ggml)?);
        tensors += 1;
    }
    drop(data);
    let werr = |e: std::io::Error| QuantizeError::Write {
        path: out.to_path_buf(),
        reason: e.to_string(),
    };
    let tmp = out.with_extension("bin.partial");
    let written = (|| -> std::io::Result<()> {
        let mut f = BufWriter::new(fs::File::create(&tmp)?);
        f.write_all(&w)?;
        f.flush()?;
        f.get_ref().sync_all()
    })();
    if let Err(e) = written.and_then(|_| fs::rename(&tmp, out)) {
        let _ = fs::remove_file(&tmp);
        return Err(werr(e));
    }
    Ok(Quantized {
        quantised,
        tensors,
        bytes: w.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ggml's dequantisation of one block, for checking.
    fn dequantize(quant: Quant, block: &[u8]) -> Vec<f32> {
        let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
        match quant {
            Quant::Q8_0 => block[2..34].iter().map(|&q| q as i8 as f32 * d).collect(),
            Quant::Q5_0 => {
                let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
                let qs = &block[6..22];
                let mut out = vec![0.0; BLOCK];
                for j in 0..BLOCK / 2 {
                    let h0 = ((qh >> j) & 1) << 4;
                    let h1 = ((qh >> (j + 16)) & 1) << 4;
                    let x0 = (u32::from(qs[j] & 0x0f) | h0) as i32 - 16;
                    let x1 = (u32::from(qs[j] >> 4) | h1) as i32 - 16;
                    out[j] = x0 as f32 * d;
                    out[j + 16] = x1 as f32 * d;
                }
                out
            }
        }
    }

    fn ramp() -> Vec<f32> {
        (0..BLOCK).map(|i| (i as f32 - 12.0) * 0.01).collect()
    }

    #[test]
    fn blocks_have_ggml_sizes_and_come_back_within_half_a_step() {
        let x = ramp();
        for (quant, size, steps) in [(Quant::Q8_0, 34, 127.0), (Quant::Q5_0, 22, 16.0)] {
            let mut out = Vec::new();
            quant.quantize(&x, &mut out);
            assert_eq!(out.len(), size, "{quant:?}");
            let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let step = amax / steps;
            for (a, b) in x.iter().zip(dequantize(quant, &out)) {
                assert!((a - b).abs() <= step * 0.5 + 1e-4, "{quant:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn the_bits_are_where_ggml_puts_them() {
        // q8_0: the largest magnitude maps to ±127 and the scale is its 1/127.
        let mut x = vec![0.0f32; BLOCK];
        x[0] = -127.0;
        x[1] = 1.0;
        x[2] = 2.5; // halves round away from zero
        x[3] = -2.5;
        let mut out = Vec::new();
        Quant::Q8_0.quantize(&x, &mut out);
        assert_eq!(f16_to_f32(u16::from_le_bytes([out[0], out[1]])), 1.0);
        assert_eq!(&out[2..6], &[(-127i8) as u8, 1, 3, (-3i8) as u8]);
        // q5_0: the scale is -max/16, so the largest value maps to 0 and its
        // opposite to 31 (clamped from 32); zero maps to 16 (fifth bit set).
        let mut x = vec![0.0f32; BLOCK];
        x[0] = 1.6;
        x[16] = -1.6;
        let mut out = Vec::new();
        Quant::Q5_0.quantize(&x, &mut out);
        let d = f16_to_f32(u16::from_le_bytes([out[0], out[1]]));
        assert_eq!(d, f16_to_f32(f32_to_f16(-0.1)));
        let qh = u32::from_le_bytes([out[2], out[3], out[4], out[5]]);
        // Value 0 → level 0 (bit clear); value 16 → level 31 (bit set);
        // every other value is zero → level 16 (bit set).
        assert_eq!(qh, !1u32);
        assert_eq!(out[6], 0xf0);
        assert!(out[7..22].iter().all(|&b| b == 0x00));
    }

    /// What ggml itself writes (`ggml_quantize_chunk`, linked in from
    /// whisper.cpp's build) for `rows` rows of `x`.
    fn ggml_quantize(quant: Quant, x: &[f32], rows: usize) -> Vec<u8> {
        use whisper_rs::whisper_rs_sys as sys;
        let size = match quant {
            Quant::Q8_0 => 34,
            Quant::Q5_0 => 22,
        };
        let mut out = vec![0u8; x.len() / BLOCK * size];
        // SAFETY: `x` holds `rows` rows of `x.len() / rows` values (a
        // multiple of 32), `out` has room for their blocks, and no
        // importance matrix is needed for these two types.
        let written = unsafe {
            sys::ggml_quantize_init(quant.ggml_type() as sys::ggml_type);
            sys::ggml_quantize_chunk(
                quant.ggml_type() as sys::ggml_type,
                x.as_ptr(),
                out.as_mut_ptr().cast(),
                0,
                rows as i64,
                (x.len() / rows) as i64,
                std::ptr::null(),
            )
        };
        assert_eq!(written, out.len());
        out
    }

    #[test]
    fn the_blocks_are_byte_for_byte_what_ggml_writes() {
        // Weight-like values (a fixed pseudo-random spread, some exact zeros,
        // some halves on the rounding edge, one zero block) in 4 rows of 96.
        let mut seed = 0x2545_f491u32;
        let mut x: Vec<f32> = (0..4 * 96)
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let v = ((seed >> 8) as f32 / (1 << 24) as f32 - 0.5) * 0.2;
                match i % 17 {
                    0 => 0.0,
                    1 => 0.5,
                    _ => v,
                }
            })
            .collect();
        x[96..128].fill(0.0);
        for quant in [Quant::Q8_0, Quant::Q5_0] {
            let mut ours = Vec::new();
            quant.quantize(&x, &mut ours);
            assert!(
                ours == ggml_quantize(quant, &x, 4),
                "{quant:?} differs from ggml"
            );
        }
    }

    #[test]
    fn an_all_zero_block_has_a_zero_scale() {
        for quant in [Quant::Q8_0, Quant::Q5_0] {
            let mut out = Vec::new();
            quant.quantize(&[0.0; BLOCK], &mut out);
            // q5_0's is -0 (0 / -16), as ggml writes it.
            let d = f16_to_f32(u16::from_le_bytes([out[0], out[1]]));
            assert_eq!(d, 0.0, "{quant:?}");
            assert!(dequantize(quant, &out).iter().all(|v| *v == 0.0));
        }
    }
}
