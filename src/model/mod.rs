//! Whisper models: checking ggml files, and converting CTranslate2 models to ggml.

pub mod convert;
pub mod ggml;
pub mod mel;
