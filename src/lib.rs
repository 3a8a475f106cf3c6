//! sotto: an on-device speech-to-text daemon.
//!
//! Audio flows from a cpal callback through a wait-free ring to the dsp thread
//! (resampling, VAD, segmentation), then to the whisper thread, and every event
//! ends in one tokio event loop that publishes it. See ARCHITECTURE.md.

pub mod audio;
pub mod bus;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dsp;
pub mod endpoint;
/// The events and their JSON form live with the client, which decodes them.
pub use sotto_client::event;
pub mod listen;
pub mod logging;
pub mod model;
pub mod notify;
pub mod partial;
pub mod pipeline;
pub mod priority;
pub mod ratelimit;
pub mod stats;
pub mod transcribe;
pub mod wake;
