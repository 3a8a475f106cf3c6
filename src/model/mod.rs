//! Whisper models: checking ggml files, converting CTranslate2 models to ggml,
//! and quantising them.

pub mod convert;
pub mod ggml;
pub mod mel;
pub mod quantize;
