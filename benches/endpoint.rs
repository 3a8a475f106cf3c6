//! The end of speech, fixed against adaptive: sentences with a natural pause
//! after an unfinished word (espeak-ng) and shared long clips, played paced
//! through sottod with `--end-of-speech fixed` at `--silence-ms` 300, 500 and
//! 800, and `adaptive` (250 / 500 / 900). For each: latency p50 / p95 (the
//! daemon's `latency_ms`), split rate (utterances per reference sentence) and
//! how the adaptive rule closed the utterances. `BENCH_SMOKE=1`: fixed 500 and
//! adaptive on the paused sentences only.

#[path = "common/report.rs"]
mod report;

use std::time::Duration;

use serde_json::{json, Value};

use report::{percentile, row, smoke, write_part};
use sotto_testkit::*;

fn transcripts(wav: &std::path::Path, args: &[&str]) -> Vec<Value> {
    transcript_events(&play_file(wav, args, Duration::from_secs(300)))
}

fn main() {
    model_path();
    let dir = scratch();
    let mut inputs = vec![paused_wav(dir.path())];
    if !smoke() {
        inputs.push(clips_wav(dir.path(), 8));
    }
    let sentences: usize = inputs.iter().map(|(_, n)| n).sum();
    let configs: Vec<(&str, Vec<&str>)> = if smoke() {
        vec![
            ("fixed 500", vec!["--end-of-speech", "fixed"]),
            ("adaptive", vec![]),
        ]
    } else {
        vec![
            (
                "fixed 300",
                vec!["--end-of-speech", "fixed", "--silence-ms", "300"],
            ),
            ("fixed 500", vec!["--end-of-speech", "fixed"]),
            (
                "fixed 800",
                vec!["--end-of-speech", "fixed", "--silence-ms", "800"],
            ),
            ("adaptive", vec!["--end-of-speech", "adaptive"]),
        ]
    };
    let mut rows = Vec::new();
    let mut data = json!({});
    let mut fixed500_split = f64::NAN;
    for (name, args) in &configs {
        let all: Vec<Value> = inputs
            .iter()
            .flat_map(|(wav, _)| transcripts(wav, args))
            .collect();
        let mut latencies: Vec<f64> = all
            .iter()
            .map(|t| t["latency_ms"].as_f64().unwrap())
            .collect();
        latencies.sort_by(|a, b| a.total_cmp(b));
        let split = all.len() as f64 / sentences as f64;
        let rule = |r: &str| all.iter().filter(|t| t["timing"]["end_rule"] == r).count();
        let (p50, p95) = (percentile(&latencies, 50.0), percentile(&latencies, 95.0));
        if *name == "fixed 500" {
            fixed500_split = split;
        }
        let adaptive = *name == "adaptive";
        rows.push(row(
            format!("end of speech {name}: latency p50 / p95, split rate ({sentences} sentences)"),
            format!(
                "{p50:.0} / {p95:.0} ms, {split:.2}{}",
                if adaptive {
                    format!(
                        " (closed: {} complete, {} unfinished, {} silence)",
                        rule("complete"),
                        rule("unfinished"),
                        rule("silence")
                    )
                } else {
                    String::new()
                }
            ),
            if adaptive {
                "p50 ≤ 350 ms, p95 ≤ 550 ms, split rate ≤ fixed 500's"
            } else {
                ""
            },
            adaptive.then_some(p50 <= 350.0 && p95 <= 550.0 && split <= fixed500_split),
        ));
        data[*name] = json!({
            "latencies_ms": latencies, "utterances": all.len(), "sentences": sentences,
            "complete": rule("complete"), "unfinished": rule("unfinished"), "silence": rule("silence"),
        });
    }
    write_part("endpoint", &rows, data);
}
