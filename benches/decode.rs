//! Decode time per utterance with sotto's settings (audio_ctx from the length,
//! with a floor) against whisper.cpp's full 30 s window on the same audio, in one
//! process; WER of each; and 1 against 2 decode threads.
//!
//! `cargo bench --bench decode` — needs models/ggml-tiny.en.bin and
//! ../shared/testdata (speech/ and noisy/ clips, whole).

use std::path::Path;
use std::time::Instant;

use sotto::transcribe::{
    audio_ctx_for, judge, DecodeOptions, Decoder, AUDIO_CTX_FLOOR, FULL_AUDIO_CTX,
};
use sotto_testkit::{normalize, word_errors};

#[path = "common/clips.rs"]
mod clips;
#[path = "common/report.rs"]
mod report;
use clips::{clips, text};
use report::{row, smoke, write_part};

/// Best of `n` decodes (ms) and the text.
fn timed(decoder: &mut Decoder, samples: &[f32], audio_ctx: i32, n: usize) -> (f64, String) {
    let mut best = f64::MAX;
    let mut out = String::new();
    for _ in 0..n {
        let t = Instant::now();
        let heard = decoder
            .decode(samples, DecodeOptions::with_ctx(audio_ctx))
            .expect("decode");
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        out = text(judge(&heard));
    }
    (best, out)
}

fn bucket(seconds: f64) -> usize {
    match seconds {
        s if s <= 2.0 => 0,
        s if s <= 5.0 => 1,
        s if s <= 10.0 => 2,
        _ => 3,
    }
}
const BUCKETS: [&str; 4] = ["≤ 2 s", "2–5 s", "5–10 s", "> 10 s"];

fn main() {
    if let Err(e) = sotto::transcribe::threads::bounded_spin() {
        eprintln!("decode bench: cannot restart with GOMP_SPINCOUNT ({e})");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/ggml-tiny.en.bin");
    let mut clips = clips(&root.join("../shared/testdata"), &["speech", "noisy"]);
    let smoke = smoke();
    let floors: Vec<i32> = if smoke {
        clips.truncate(3);
        vec![AUDIO_CTX_FLOOR]
    } else {
        vec![256, AUDIO_CTX_FLOOR, 512]
    };
    let repeats = if smoke { 1 } else { 2 };
    let threads = sotto::config::default_threads();
    let mut decoder =
        Decoder::load(&model, "en", threads).expect("load the default model (make model)");
    let _ = timed(&mut decoder, &vec![0.0; 16_000], AUDIO_CTX_FLOOR, 1);

    // Per configuration: per bucket (sum ms, sum full ms, errors, words, n).
    let mut full_ms = vec![0.0; clips.len()];
    let mut full_err = (0, 0);
    let mut rows = Vec::new();
    for (i, clip) in clips.iter().enumerate() {
        let (ms, hyp) = timed(&mut decoder, &clip.samples, FULL_AUDIO_CTX, repeats);
        full_ms[i] = ms;
        let (e, n) = word_errors(&normalize(&clip.reference), &normalize(&hyp));
        full_err = (full_err.0 + e, full_err.1 + n);
    }
    for &floor in &floors {
        let mut per_bucket = [(0.0f64, 0.0f64, 0usize, 0usize, 0usize); 4];
        let mut all = (0usize, 0usize);
        for (i, clip) in clips.iter().enumerate() {
            let ctx = audio_ctx_for(clip.samples.len(), floor);
            let (ms, hyp) = timed(&mut decoder, &clip.samples, ctx, repeats);
            let (e, n) = word_errors(&normalize(&clip.reference), &normalize(&hyp));
            let b = &mut per_bucket[bucket(clip.samples.len() as f64 / 16_000.0)];
            *b = (b.0 + ms, b.1 + full_ms[i], b.2 + e, b.3 + n, b.4 + 1);
            all = (all.0 + e, all.1 + n);
            if e * 2 > n {
                eprintln!("floor {floor}: {} → {hyp:?}", clip.name);
            }
        }
        rows.push((floor, per_bucket, all));
    }
    println!("model tiny.en, {threads} threads, {} clips (speech + noisy, whole), best of 2 decodes each", clips.len());
    println!();
    println!("| audio_ctx floor | bucket | clips | decode ms (mean) | full window ms (mean) | ratio | WER | full-window WER |");
    println!("|---|---|---|---|---|---|---|---|");
    for (floor, per_bucket, all) in &rows {
        for (b, (ms, full, e, n, count)) in per_bucket.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            println!(
                "| {floor} | {} | {count} | {:.0} | {:.0} | {:.2} | {:.1} % | |",
                BUCKETS[b],
                ms / *count as f64,
                full / *count as f64,
                ms / full,
                100.0 * *e as f64 / *n as f64
            );
        }
        println!(
            "| {floor} | all | {} | | | | {:.2} % | {:.2} % |",
            clips.len(),
            100.0 * all.0 as f64 / all.1 as f64,
            100.0 * full_err.0 as f64 / full_err.1 as f64
        );
    }

    report_rows(&rows, full_err, clips.len(), threads);
    if smoke {
        return;
    }

    // Threads: the default floor, 1 against 2.
    println!();
    println!("| threads | total decode ms (default floor, all clips) |");
    println!("|---|---|");
    for n in [1, 2] {
        let mut d = Decoder::load(&model, "en", n).expect("model");
        let total: f64 = clips
            .iter()
            .map(|c| {
                timed(
                    &mut d,
                    &c.samples,
                    audio_ctx_for(c.samples.len(), AUDIO_CTX_FLOOR),
                    2,
                )
                .0
            })
            .sum();
        println!("| {n} | {total:.0} |");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(hwm) = status.lines().find(|l| l.starts_with("VmHWM")) {
        println!();
        println!(
            "peak RSS of this process (two models loaded at most): {}",
            hwm.trim_start_matches("VmHWM:").trim()
        );
    }
}

type BucketSums = [(f64, f64, usize, usize, usize); 4];

/// The default floor's rows for the report.
fn report_rows(
    rows: &[(i32, BucketSums, (usize, usize))],
    full_err: (usize, usize),
    n_clips: usize,
    threads: usize,
) {
    let Some((_, per_bucket, all)) = rows.iter().find(|(f, _, _)| *f == AUDIO_CTX_FLOOR) else {
        return;
    };
    let wer = 100.0 * all.0 as f64 / all.1.max(1) as f64;
    let full_wer = 100.0 * full_err.0 as f64 / full_err.1.max(1) as f64;
    let mut out = Vec::new();
    let mut data = Vec::new();
    for (b, (ms, full, e, n, count)) in per_bucket.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        let ratio = ms / full;
        let (target, met) = if b == 1 {
            ("≤ 0.30", Some(ratio <= 0.30))
        } else {
            ("", None)
        };
        out.push(row(
            format!(
                "decode time vs full-window whisper.cpp, {} utterances ({count})",
                BUCKETS[b]
            ),
            format!(
                "{ratio:.2} ({:.0} ms vs {:.0} ms)",
                ms / *count as f64,
                full / *count as f64
            ),
            target,
            met,
        ));
        data.push(serde_json::json!({
            "bucket": BUCKETS[b], "clips": count, "mean_ms": ms / *count as f64,
            "full_window_mean_ms": full / *count as f64, "ratio": ratio,
            "wer": 100.0 * *e as f64 / (*n).max(1) as f64,
        }));
    }
    out.push(row(
        format!("WER, sotto's decode vs full window ({n_clips} clips, speech + noisy)"),
        format!("{wer:.2} % vs {full_wer:.2} %"),
        "within 0.5 points",
        Some(wer <= full_wer + 0.5),
    ));
    write_part(
        "decode",
        &out,
        serde_json::json!({
            "audio_ctx_floor": AUDIO_CTX_FLOOR, "threads": threads, "buckets": data,
            "wer": wer, "full_window_wer": full_wer,
        }),
    );
}
