//! The end of speech, fixed against adaptive: sentences with a natural pause
//! after an unfinished word (espeak-ng) and the first eight shared clips, played paced
//! through sottod with `--end-of-speech fixed` at `--silence-ms` 300, 500 and
//! 800, and `adaptive` (its defaults, 300 / 500 / 900). For each: latency
//! p50 / p95 (the daemon's `latency_ms`), split rate (utterances per
//! reference sentence) and
//! how the adaptive rule closed the utterances, and a plot of latency against
//! split rate (`target/bench/endpoint.png`). Then read narration alone (every
//! shared long clip), fixed 500 against adaptive. `BENCH_SMOKE=1`: fixed 500
//! and adaptive on the paused sentences only.

#[path = "common/report.rs"]
mod report;

use std::time::Duration;

use serde_json::{json, Value};

use report::{percentile, row, smoke, write_part};
use sotto_testkit::*;

fn transcripts(wav: &std::path::Path, args: &[&str]) -> Vec<Value> {
    transcript_events(&play_file(wav, args, Duration::from_secs(300)))
}

/// The transcripts' `latency_ms`, in ascending order.
fn sorted_latencies(transcripts: &[Value]) -> Vec<f64> {
    let mut latencies: Vec<f64> = transcripts
        .iter()
        .map(|t| t["latency_ms"].as_f64().unwrap())
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    latencies
}

fn main() {
    model_path();
    let dir = scratch();
    let mut inputs = vec![paused_wav(dir.path())];
    if !smoke() {
        inputs.push(clips_wav(dir.path(), ENDPOINT_CLIPS));
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
    let mut points = Vec::new();
    for (name, args) in &configs {
        let all: Vec<Value> = inputs
            .iter()
            .flat_map(|(wav, _)| transcripts(wav, args))
            .collect();
        let latencies = sorted_latencies(&all);
        let split = all.len() as f64 / sentences as f64;
        let rule = |r: &str| all.iter().filter(|t| t["timing"]["end_rule"] == r).count();
        let (p50, p95) = (percentile(&latencies, 50.0), percentile(&latencies, 95.0));
        if *name == "fixed 500" {
            fixed500_split = split;
        }
        points.push((name.to_string(), split, p50, p95));
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
    if !smoke() {
        // Read narration alone, every shared long clip: its readers pause
        // 320–450 ms at commas, where Whisper writes a period.
        let (narration, clips) = clips_wav(dir.path(), usize::MAX);
        for (name, args) in [
            ("fixed 500", vec!["--end-of-speech", "fixed"]),
            ("adaptive", vec!["--end-of-speech", "adaptive"]),
        ] {
            let all = transcripts(&narration, &args);
            let latencies = sorted_latencies(&all);
            let split = all.len() as f64 / clips as f64;
            let p50 = percentile(&latencies, 50.0);
            rows.push(row(
                format!("narration only ({clips} long clips), {name}: latency p50, split rate"),
                format!("{p50:.0} ms, {split:.2}"),
                "",
                None,
            ));
            data[format!("narration {name}")] =
                json!({ "latencies_ms": latencies, "utterances": all.len(), "clips": clips });
        }
    }
    write_part("endpoint", &rows, data);
    let png = report::bench_dir().join("endpoint.png");
    plot(&points, &png);
    println!("latency against split rate: {}", png.display());
}

/// Each rule as a vertical bar from its p50 (dot) to its p95 latency, at its
/// split rate, with the adaptive target's box.
fn plot(points: &[(String, f64, f64, f64)], path: &std::path::Path) {
    use plotters::prelude::*;
    report::plot_font();
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let max_split = points.iter().map(|p| p.1).fold(1.0, f64::max) + 0.2;
    let max_ms = points.iter().map(|p| p.3).fold(600.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "end of speech: latency against split rate",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.9..max_split, 0.0..max_ms)
        .unwrap();
    chart
        .configure_mesh()
        .x_desc("utterances per reference sentence")
        .y_desc("latency, ms (dot p50, bar to p95)")
        .draw()
        .unwrap();
    // The adaptive target: p50 ≤ 350 ms at a split rate no higher than fixed 500's.
    if let Some(fixed500) = points.iter().find(|p| p.0 == "fixed 500") {
        chart
            .draw_series([Rectangle::new(
                [(0.9, 0.0), (fixed500.1, 350.0)],
                GREEN.mix(0.15).filled(),
            )])
            .unwrap();
    }
    for (name, split, p50, p95) in points {
        let color = if name == "adaptive" { RED } else { BLUE };
        chart
            .draw_series(LineSeries::new(
                [(*split, *p50), (*split, *p95)],
                color.stroke_width(2),
            ))
            .unwrap();
        chart
            .draw_series([Circle::new((*split, *p50), 5, color.filled())])
            .unwrap();
        chart
            .draw_series([Text::new(
                format!("{name}: {p50:.0} / {p95:.0} ms, {split:.2}"),
                // Adaptive's label above its dot, the others' below, so
                // two rules at one split rate stay readable.
                (
                    *split + 0.01,
                    *p50 + if name == "adaptive" { 0.06 } else { -0.02 } * max_ms,
                ),
                ("sans-serif", 14).into_font(),
            )])
            .unwrap();
    }
    root.present().unwrap();
}
