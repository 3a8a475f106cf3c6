//! The per-utterance invariant over a JSON event stream, and transcripts.

use serde_json::Value;

/// Utterance ids, start and end from a JSON event stream; checks the invariant
/// (ids from 1, started → ended → transcript|dropped, each exactly once).
pub fn utterances(events: &[Value]) -> Vec<(u64, u64, u64)> {
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for e in events {
        let id = e["id"].as_u64();
        match e["event"].as_str().unwrap() {
            "speech_started" => {
                let id = id.unwrap();
                assert_eq!(
                    id,
                    out.len() as u64 + 1,
                    "ids increase by one from 1: {events:?}"
                );
                out.push((id, e["start_ms"].as_u64().unwrap(), 0));
            }
            "woken" => {
                let id = id.unwrap();
                let u = out.iter().find(|u| u.0 == id).expect("woken after started");
                assert!(u.2 > 0, "utterance {id}: woken before it ended: {events:?}");
            }
            "transcript" | "dropped" => {
                let id = id.unwrap();
                let u = out
                    .iter()
                    .find(|u| u.0 == id)
                    .expect("an ending after a start");
                assert!(
                    u.2 > 0,
                    "utterance {id}: ending before speech_ended: {events:?}"
                );
            }
            "speech_ended" => {
                let id = id.unwrap();
                let u = out
                    .iter_mut()
                    .find(|u| u.0 == id)
                    .expect("ended after started");
                assert_eq!(u.2, 0, "ended twice");
                u.2 = e["end_ms"].as_u64().unwrap();
            }
            _ => {}
        }
    }
    for (id, _, end) in &out {
        assert!(*end > 0, "utterance {id} never ended");
        let finals = events
            .iter()
            .filter(|e| e["id"].as_u64() == Some(*id))
            .filter(|e| matches!(e["event"].as_str(), Some("transcript" | "dropped")))
            .count();
        assert_eq!(
            finals, 1,
            "utterance {id} needs exactly one transcript or dropped"
        );
    }
    out
}

pub fn transcripts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "transcript")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

/// The final event (`transcript` or `dropped`) of utterance `id`, if any yet.
pub fn ending_of(events: &[Value], id: u64) -> Option<&Value> {
    events.iter().find(|e| is_ending_of(e, id))
}

pub fn is_ending_of(event: &Value, id: u64) -> bool {
    event["id"].as_u64() == Some(id)
        && matches!(event["event"].as_str(), Some("transcript" | "dropped"))
}
