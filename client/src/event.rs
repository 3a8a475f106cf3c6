//! Events that flow from the worker threads to the event loop, which publishes
//! them (D-Bus signals, JSON lines) and keeps the statistics. [`Event::to_json`]
//! is the one JSON form: `sottod --json` prints it, and `sotto listen --json`
//! decodes each signal back into an [`Event`] and prints the same.

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
    /// The speech engine failed on it (an `Error` of kind `engine` says how).
    Error,
    /// Wake mode: it did not begin with the wake phrase (nor follow it); its
    /// text goes nowhere.
    NotAddressed,
}

impl DropReason {
    /// The reason as it appears on the bus and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Deadline => "deadline",
            DropReason::Overload => "overload",
            DropReason::NoSpeech => "no-speech",
            DropReason::Shutdown => "shutdown",
            DropReason::Error => "error",
            DropReason::NotAddressed => "not-addressed",
        }
    }

    /// The reason named by `as_str`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What it means for the person who spoke, with what to change where
    /// something can be: the line `sotto listen` prints for a drop.
    pub fn explain(self) -> &'static str {
        match self {
            DropReason::Deadline => {
                "not transcribed in time (raise --max-latency-ms, or free the CPU)"
            }
            DropReason::Overload => "too much speech queued at once",
            DropReason::NoSpeech => "the model heard no words",
            DropReason::Shutdown => "sottod stopped before it was transcribed",
            DropReason::Error => "the speech engine failed (see the Error that follows)",
            DropReason::NotAddressed => "it did not begin with the wake phrase",
        }
    }

    /// Every reason, for parsing, tests and documentation.
    pub const ALL: [DropReason; 6] = [
        DropReason::Deadline,
        DropReason::Overload,
        DropReason::NoSpeech,
        DropReason::Shutdown,
        DropReason::Error,
        DropReason::NotAddressed,
    ];
}

/// What an `Error` signal is about. The strings are part of the D-Bus
/// contract (`Error(kind, message)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The capture device went away; sottod retries.
    DeviceLost,
    /// The capture device is back after a loss.
    DeviceRestored,
    /// No capture device at start; sottod waits for one.
    NoDevice,
    /// The input file could not be read to the end.
    InputFile,
    /// The speech engine (whisper.cpp) failed on an utterance.
    Engine,
}

impl ErrorKind {
    /// The kind as it appears on the bus and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::DeviceLost => "device-lost",
            ErrorKind::DeviceRestored => "device-restored",
            ErrorKind::NoDevice => "no-device",
            ErrorKind::InputFile => "input-file",
            ErrorKind::Engine => "engine",
        }
    }

    /// The kind named by `as_str`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Every kind, for tests and documentation.
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::DeviceLost,
        ErrorKind::DeviceRestored,
        ErrorKind::NoDevice,
        ErrorKind::InputFile,
        ErrorKind::Engine,
    ];
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Listening state, published as the `State` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The model is loading; nothing is captured yet.
    Starting,
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
            State::Starting => "starting",
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
    /// Where the time between the end of speech and the transcript went: known
    /// inside the daemon, not carried by the D-Bus signal.
    pub timing: Option<Timing>,
    /// The language it was heard in (the `Details` signal carries it).
    pub language: Option<Spoken>,
}

/// The language of an utterance: the one `--language` names (probability 1),
/// or the one detected (`--language auto`) with its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Spoken {
    /// ISO 639-1 code.
    pub code: String,
    /// 0..1.
    pub probability: f64,
}

impl Transcript {
    /// Wall time the decode took (0 when the timing is not known).
    pub fn decode_ms(&self) -> u64 {
        self.timing.map_or(0, |t| t.decode_ms())
    }
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
    /// Threads the decode ran on (`--threads`, or the automatic choice).
    pub threads: usize,
    /// Which rule closed the utterance (`silence_ms` says after how much).
    pub end_rule: EndRule,
}

impl Timing {
    /// Wall time the decode took.
    pub fn decode_ms(&self) -> u64 {
        self.decode_ended_ms.saturating_sub(self.decode_started_ms)
    }

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
            "threads": self.threads,
            "end_rule": self.end_rule.as_str(),
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
    /// `--partials`: an interim decode of an open utterance; its first
    /// `stable` characters no later Partial of it changes.
    Partial {
        id: u64,
        text: String,
        stable: u32,
    },
    /// Wake mode: the utterance began with the wake phrase (sent before its
    /// transcript).
    Woken {
        id: u64,
    },
    Transcript(Transcript),
    Dropped {
        id: u64,
        reason: DropReason,
    },
    Error {
        kind: ErrorKind,
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
    /// `latency_ms`: `None` when the input is not paced (`--no-pace`), where
    /// the capture clock runs ahead of the wall clock and no latency means
    /// anything; then `latency_ms` and `timing` are left out.
    pub fn to_json(&self, latency_ms: Option<u64>) -> Option<serde_json::Value> {
        Some(match self {
            Event::SpeechStarted { id, start_ms } => {
                json!({"event": "speech_started", "id": id, "start_ms": start_ms})
            }
            Event::SpeechEnded { id, end_ms } => {
                json!({"event": "speech_ended", "id": id, "end_ms": end_ms})
            }
            Event::Transcript(t) => {
                let mut value = json!({
                    "event": "transcript",
                    "id": t.id,
                    "text": t.text,
                    "start_ms": t.start_ms,
                    "end_ms": t.end_ms,
                    "confidence": t.confidence,
                });
                if let Some(latency_ms) = latency_ms {
                    value["latency_ms"] = latency_ms.into();
                }
                if let Some(spoken) = &t.language {
                    value["language"] = spoken.code.clone().into();
                    value["language_probability"] = spoken.probability.into();
                }
                if let Some(timing) = &t.timing {
                    value["decode_ms"] = timing.decode_ms().into();
                    if let Some(latency_ms) = latency_ms {
                        value["timing"] = timing.breakdown(t.end_ms, latency_ms);
                    }
                }
                value
            }
            Event::Partial { id, text, stable } => {
                json!({"event": "partial", "id": id, "text": text, "stable": stable})
            }
            Event::Woken { id } => json!({"event": "woken", "id": id}),
            Event::Dropped { id, reason } => {
                json!({"event": "dropped", "id": id, "reason": reason.as_str()})
            }
            Event::Error { kind, message } => {
                json!({"event": "error", "kind": kind.as_str(), "message": message})
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

/// Which rule closed an utterance, as `timing.end_rule` in `--json` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndRule {
    /// `--silence-ms` (the fixed rule, or adaptive when unsure).
    #[default]
    Silence,
    /// `--min-silence-ms`: the speculative decode was complete.
    Complete,
    /// `--max-silence-ms`: the speculative decode was unfinished.
    Unfinished,
    /// The input ended, or the utterance reached --max-utterance-ms.
    Cut,
    /// Push-to-talk: the client ended it (`EndUtterance`).
    Released,
}

impl EndRule {
    pub fn as_str(self) -> &'static str {
        match self {
            EndRule::Silence => "silence",
            EndRule::Complete => "complete",
            EndRule::Unfinished => "unfinished",
            EndRule::Cut => "cut",
            EndRule::Released => "released",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interface description names every reason and kind the code sends.
    #[test]
    fn the_interface_xml_lists_every_reason_kind_and_state() {
        let xml = include_str!("../../src/org.sotto.Sotto1.xml");
        for r in DropReason::ALL {
            assert!(xml.contains(&format!("`{}`", r.as_str())), "{r:?}");
            assert_eq!(DropReason::parse(r.as_str()), Some(r));
        }
        for k in ErrorKind::ALL {
            assert!(xml.contains(&format!("`{k}`")), "{k:?}");
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
        }
        for s in [
            State::Starting,
            State::Listening,
            State::Hearing,
            State::Paused,
            State::NoDevice,
        ] {
            assert!(xml.contains(&format!("`{}`", s.as_str())), "{s:?}");
        }
        assert_eq!(DropReason::parse("late"), None);
        assert_eq!(ErrorKind::parse(""), None);
    }

    /// The JSON both sottod and sotto print: the daemon adds the timing it
    /// alone knows, nothing else differs.
    #[test]
    fn a_transcript_has_one_json_form() {
        let timing = Timing {
            closed_ms: 1_500,
            decode_started_ms: 1_200,
            decode_ended_ms: 1_450,
            ready_ms: 1_501,
            speculative: true,
            threads: 2,
            end_rule: EndRule::Complete,
        };
        let mut t = Transcript {
            id: 1,
            text: "Stop.".into(),
            start_ms: 0,
            end_ms: 1_000,
            confidence: 0.5,
            timing: Some(timing),
            language: None,
        };
        let unpaced = Event::Transcript(t.clone()).to_json(None).unwrap();
        assert_eq!(unpaced["decode_ms"], 250, "the decode's own time is right");
        assert!(unpaced.get("latency_ms").is_none() && unpaced.get("timing").is_none());
        let daemon = Event::Transcript(t.clone()).to_json(Some(502)).unwrap();
        let keys: Vec<&String> = daemon.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "event",
                "id",
                "text",
                "start_ms",
                "end_ms",
                "confidence",
                "latency_ms",
                "decode_ms",
                "timing"
            ],
            "the order the README shows"
        );
        assert_eq!(daemon["decode_ms"], 250);
        assert_eq!(daemon["timing"]["silence_ms"], 500);
        assert_eq!(
            daemon["timing"]["decode_ms"], 0,
            "all of it ran during the silence"
        );
        assert_eq!(daemon["timing"]["queue_ms"], 1);
        assert_eq!(daemon["timing"]["publish_ms"], 1);
        assert_eq!(daemon["timing"]["threads"], 2);
        assert_eq!(daemon["timing"]["end_rule"], "complete");
        t.timing = None;
        let client = Event::Transcript(t).to_json(Some(502)).unwrap();
        let mut stripped = daemon.clone();
        stripped.as_object_mut().unwrap().remove("decode_ms");
        stripped.as_object_mut().unwrap().remove("timing");
        assert_eq!(client, stripped);
    }

    #[test]
    fn the_latency_breakdown_adds_up() {
        // Closed 500 ms after the end, decode from 1 600 to 1 800 (after the
        // close), ready at 1 810, published at 1 830.
        let timing = Timing {
            closed_ms: 1_500,
            decode_started_ms: 1_600,
            decode_ended_ms: 1_800,
            ready_ms: 1_810,
            speculative: false,
            threads: 1,
            end_rule: EndRule::Silence,
        };
        let b = timing.breakdown(1_000, 830);
        let part = |k: &str| b[k].as_u64().unwrap();
        assert_eq!(part("silence_ms"), 500);
        assert_eq!(part("decode_ms"), 200);
        assert_eq!(
            part("queue_ms"),
            110,
            "waiting before the decode, and after it"
        );
        assert_eq!(part("publish_ms"), 20);
        assert_eq!(
            part("silence_ms") + part("queue_ms") + part("decode_ms") + part("publish_ms"),
            830
        );
    }
}
