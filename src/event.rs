//! Events that flow from the worker threads to the event loop, which publishes
//! them (D-Bus signals, JSON lines) and keeps the statistics.

use serde_json::json;

/// Why an utterance produced no transcript. The strings are part of the D-Bus
/// contract (`Dropped(id, reason)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Its latency bound could not be met.
    Deadline,
    /// The utterance queue was full.
    Overload,
    /// The model heard no words.
    NoSpeech,
    /// The daemon stopped before it was decoded.
    Shutdown,
}

impl DropReason {
    /// The reason as it appears on the bus and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Deadline => "deadline",
            DropReason::Overload => "overload",
            DropReason::NoSpeech => "no-speech",
            DropReason::Shutdown => "shutdown",
        }
    }
}

/// Listening state, published as the `State` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Capturing, nobody speaking.
    Listening,
    /// Capturing, an utterance is open.
    Hearing,
    /// Paused by a client; the device is released.
    Paused,
    /// No capture device (lost, or not there yet).
    NoDevice,
}

impl State {
    /// The state as it appears on the bus.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Listening => "listening",
            State::Hearing => "hearing",
            State::Paused => "paused",
            State::NoDevice => "no-device",
        }
    }
}

/// A final transcript, before the event loop stamps its latency.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub id: u64,
    pub text: String,
    /// Capture clock (Unix epoch ms) of the first voiced frame.
    pub start_ms: u64,
    /// Capture clock (Unix epoch ms) of the last voiced frame.
    pub end_ms: u64,
    /// 0..1, from the token probabilities.
    pub confidence: f64,
    /// Wall time the decode took.
    pub decode_ms: u64,
    /// Where the time between the end of speech and the transcript went.
    pub timing: Timing,
}

/// Wall-clock moments (Unix epoch ms) in a transcript's life, for the latency
/// breakdown in `--json` output and the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// The segmenter closed the utterance: the end-of-speech silence was confirmed.
    pub closed_ms: u64,
    /// The decode that produced the text started.
    pub decode_started_ms: u64,
    /// The decode ended.
    pub decode_ended_ms: u64,
    /// The transcript was handed to the event loop.
    pub ready_ms: u64,
    /// The decode started during the silence, before the close.
    pub speculative: bool,
}

impl Timing {
    /// The breakdown of a transcript published `latency_ms` after its `end_ms`:
    /// silence wait, queue wait, decode after the close, publish. The four add up
    /// to the latency.
    pub fn breakdown(&self, end_ms: u64, latency_ms: u64) -> serde_json::Value {
        let silence = self.closed_ms.saturating_sub(end_ms);
        let decode = self
            .decode_ended_ms
            .saturating_sub(self.decode_started_ms.max(self.closed_ms));
        let queue = self
            .ready_ms
            .saturating_sub(self.closed_ms)
            .saturating_sub(decode);
        let publish = (end_ms + latency_ms).saturating_sub(self.ready_ms);
        json!({
            "silence_ms": silence,
            "queue_ms": queue,
            "decode_ms": decode,
            "publish_ms": publish,
            "speculative": self.speculative,
        })
    }
}

/// Everything the workers tell the event loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    SpeechStarted {
        id: u64,
        start_ms: u64,
    },
    SpeechEnded {
        id: u64,
        end_ms: u64,
    },
    Transcript(Transcript),
    Dropped {
        id: u64,
        reason: DropReason,
    },
    Error {
        kind: String,
        message: String,
    },
    /// The source's state (listening, paused, no-device): becomes the `State` property.
    State(State),
    /// An utterance is open (true) or closed (false): `State` `hearing` while listening.
    Hearing(bool),
    /// The capture device that was opened (`host:id`): the `Device` property.
    Device(String),
}

impl Event {
    /// The event as one JSON object (the `--json` line), `latency_ms` stamped by the
    /// caller for transcripts. `None` for events that are not printed.
    pub fn to_json(&self, latency_ms: u64) -> Option<serde_json::Value> {
        Some(match self {
            Event::SpeechStarted { id, start_ms } => {
                json!({"event": "speech_started", "id": id, "start_ms": start_ms})
            }
            Event::SpeechEnded { id, end_ms } => {
                json!({"event": "speech_ended", "id": id, "end_ms": end_ms})
            }
            Event::Transcript(t) => json!({
                "event": "transcript",
                "id": t.id,
                "text": t.text,
                "start_ms": t.start_ms,
                "end_ms": t.end_ms,
                "confidence": t.confidence,
                "latency_ms": latency_ms,
                "decode_ms": t.decode_ms,
                "timing": t.timing.breakdown(t.end_ms, latency_ms),
            }),
            Event::Dropped { id, reason } => {
                json!({"event": "dropped", "id": id, "reason": reason.as_str()})
            }
            Event::Error { kind, message } => {
                json!({"event": "error", "kind": kind, "message": message})
            }
            Event::State(_) | Event::Hearing(_) | Event::Device(_) => return None,
        })
    }
}

/// Sender half of the event channel (bounded); the receiver is the event loop.
pub type EventSender = tokio::sync::mpsc::Sender<Event>;

/// Sends from a worker thread; a closed loop (shutting down) is not an error.
pub fn send_blocking(events: &EventSender, event: Event) {
    let _ = events.blocking_send(event);
}
