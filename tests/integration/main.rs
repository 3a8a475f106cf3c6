//! Integration tests: the real binary, real whisper model, real PulseAudio and
//! real speech (espeak-ng, and ../shared/testdata where the test says so).

mod bad_input;
mod dbus;
mod endpoint;
mod engine;
mod examples;
mod files;
mod gate;
mod interaction;
mod languages;
mod live_mic;
mod load;
mod models;
mod newcomer;
mod privacy;
mod resilience;
mod service;
mod soak;
mod transcription;
mod vad;
mod workers;
