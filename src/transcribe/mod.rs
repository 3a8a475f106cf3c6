//! From an utterance's audio to words: [`decoder`] wraps whisper.cpp, [`judge`](mod@judge)
//! decides whether what it wrote is speech, [`worker`] is the whisper thread
//! that turns jobs into transcripts and drops within the latency bound.

pub mod cpu;
pub mod decoder;
pub mod judge;
pub mod threads;
pub mod worker;

pub use decoder::{
    audio_ctx_for, DecodeError, DecodeOptions, Decoder, AUDIO_CTX_FLOOR, FULL_AUDIO_CTX,
};
pub use judge::{judge, Decoded, Heard};
pub use worker::{Engine, Transcriber, TranscriberCounters, TranscriberSetup};
