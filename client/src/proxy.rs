//! The typed proxy of org.sotto.Sotto1: its methods, properties and the
//! signals clients most often want (`receive_transcript`, `receive_details`,
//! `receive_dropped`;
//! each signal's arguments by name). What the `sotto` command and
//! `examples/listen.rs` use.

use std::collections::HashMap;

use zbus::OwnedVariant;

#[zbus::proxy(
    interface = "org.sotto.Sotto1",
    default_service = "org.sotto.Sotto1",
    default_path = "/org/sotto/Sotto1"
)]
pub trait Sotto1 {
    fn pause(&self) -> zbus::Result<()>;
    fn resume(&self) -> zbus::Result<()>;
    fn get_stats(&self) -> zbus::Result<HashMap<String, OwnedVariant>>;
    fn listen(&self, timeout_ms: u32) -> zbus::Result<(u64, String)>;
    fn start_utterance(&self) -> zbus::Result<()>;
    fn end_utterance(&self) -> zbus::Result<()>;
    #[zbus(property)]
    fn mode(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn device(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn model(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn language(&self) -> zbus::Result<String>;
    /// Sent just before the `Transcript` of the same id: `language`,
    /// `language_probability`, `decode_ms`.
    #[zbus(signal)]
    fn details(&self, id: u64, details: HashMap<String, OwnedVariant>) -> zbus::Result<()>;
    /// A transcript (see the interface XML for each argument).
    #[zbus(signal)]
    fn transcript(
        &self,
        id: u64,
        text: &str,
        start_ms: u64,
        end_ms: u64,
        confidence: f64,
        latency_ms: u32,
    ) -> zbus::Result<()>;
    /// An utterance that gave no transcript, and why.
    #[zbus(signal)]
    fn dropped(&self, id: u64, reason: &str) -> zbus::Result<()>;
}
