//! The model table: for each model file — tiny.en and base in f16 and the
//! q8_0 and q5_0 files `sotto-convert --quantize` makes from each — its size,
//! load time, sottod's peak RSS with it, decode time p50 of the 2–5 s speech
//! clips, the median and longest decode per length bucket (no decode may run
//! away: longest ≤ 3 × median) and WER over the shared speech clips. Every
//! figure is set against the same model's f16, measured in the same run.
//!
//! `cargo bench --bench models` — needs models/ggml-tiny.en.bin, ggml-base.bin and
//! ../shared/testdata. `BENCH_SMOKE=1`: three clips, one decode each.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use sotto::model::quantize::{quantize_file, Quant};
use sotto::transcribe::{audio_ctx_for, judge, DecodeOptions, Decoder, AUDIO_CTX_FLOOR};
use sotto_testkit::{bin, manifest, normalize, word_errors};

#[path = "common/clips.rs"]
mod clips;
#[path = "common/report.rs"]
mod report;
use clips::{clips, Clip};
use report::{bench_dir, percentile, row, smoke, write_part, Row};

/// What one model measured.
struct Measured {
    bytes: u64,
    load_ms: f64,
    rss_kib: u64,
    p50_ms: f64,
    wer: f64,
    /// Per length bucket (≤ 2, 2–5, 5–10, > 10 s): decodes' median and
    /// longest, ms.
    buckets: Vec<(&'static str, f64, f64, usize)>,
}

const BUCKETS: [(&str, f64, f64); 4] = [
    ("≤ 2 s", 0.0, 2.0),
    ("2–5 s", 2.0, 5.0),
    ("5–10 s", 5.0, 10.0),
    ("> 10 s", 10.0, f64::MAX),
];

/// Median of three loads.
fn load_ms(model: &Path, threads: usize) -> f64 {
    let mut times: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let d = Decoder::load(model, "en", threads).expect("load");
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            drop(d);
            ms
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[1]
}

/// sottod's peak RSS (VmHWM) transcribing a speech clip with `model`.
fn sottod_rss_kib(model: &Path, clip: &Path) -> u64 {
    let mut child = std::process::Command::new(bin("sottod"))
        .args(["--bus", "none", "--no-pace", "--model"])
        .arg(model)
        .arg("--input-file")
        .arg(clip)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sottod");
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kib) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
            {
                peak = kib;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    peak
}

fn measure(model: &Path, clips: &[Clip], clip_file: &Path, repeats: usize) -> Measured {
    let threads = sotto::config::default_threads();
    let load_ms = load_ms(model, threads);
    let mut decoder = Decoder::load(model, "en", threads).expect("load");
    let _ = decoder.decode(&vec![0.0; 16_000], DecodeOptions::with_ctx(AUDIO_CTX_FLOOR));
    let (mut errors, mut words) = (0, 0);
    let mut bucket = Vec::new();
    let mut by_length: Vec<Vec<f64>> = vec![Vec::new(); BUCKETS.len()];
    for clip in clips {
        let ctx = audio_ctx_for(clip.samples.len(), AUDIO_CTX_FLOOR);
        let mut best = f64::MAX;
        let mut text = String::new();
        for _ in 0..repeats {
            let t = Instant::now();
            let heard = decoder
                .decode(&clip.samples, DecodeOptions::with_ctx(ctx))
                .expect("decode");
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
            text = clips::text(judge(&heard));
        }
        let seconds = clip.samples.len() as f64 / 16_000.0;
        if (2.0..=5.0).contains(&seconds) {
            bucket.push(best);
        }
        if let Some(b) = BUCKETS
            .iter()
            .position(|(_, lo, hi)| seconds > *lo && seconds <= *hi)
        {
            by_length[b].push(best);
        }
        let (e, n) = word_errors(&normalize(&clip.reference), &normalize(&text));
        errors += e;
        words += n;
    }
    bucket.sort_by(f64::total_cmp);
    Measured {
        bytes: std::fs::metadata(model).map(|m| m.len()).unwrap_or(0),
        load_ms,
        rss_kib: sottod_rss_kib(model, clip_file),
        p50_ms: percentile(&bucket, 50.0),
        wer: 100.0 * errors as f64 / words.max(1) as f64,
        buckets: BUCKETS
            .iter()
            .zip(by_length.iter_mut())
            .filter(|(_, times)| !times.is_empty())
            .map(|((name, ..), times)| {
                times.sort_by(f64::total_cmp);
                let max = *times.last().unwrap();
                (*name, percentile(times, 50.0), max, times.len())
            })
            .collect(),
    }
}

fn main() {
    if let Err(e) = sotto::transcribe::threads::bounded_spin() {
        eprintln!("models bench: cannot restart with GOMP_SPINCOUNT ({e})");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let testdata = root.join("../shared/testdata");
    let mut clips = clips(&testdata, &["speech"]);
    let repeats = if smoke() {
        clips.truncate(3);
        1
    } else {
        2
    };
    let clip_file = testdata.join(
        manifest()
            .into_iter()
            .find(|c| c.category.starts_with("speech"))
            .expect("a speech clip")
            .file,
    );
    let dir = bench_dir().join("models");
    std::fs::create_dir_all(&dir).expect("target/bench/models");
    let mut rows: Vec<Row> = Vec::new();
    let mut data = serde_json::Map::new();
    // The speech clips are English: base decodes them with --language en.
    for family in ["tiny.en", "base"] {
        let f16 = root.join(format!("models/ggml-{family}.bin"));
        assert!(
            f16.is_file(),
            "{} is missing: run `models/fetch.sh {family}` (make bench does)",
            f16.display()
        );
        let mut files: Vec<(String, PathBuf)> = vec![("f16".into(), f16.clone())];
        for quant in [Quant::Q8_0, Quant::Q5_0] {
            let out = dir.join(format!("ggml-{family}-{}.bin", quant.name()));
            quantize_file(&f16, &out, quant).expect("quantise the default model");
            files.push((quant.name().into(), out));
        }
        let measured: Vec<(String, Measured)> = files
            .iter()
            .map(|(name, path)| (name.clone(), measure(path, &clips, &clip_file, repeats)))
            .collect();
        let base = &measured[0].1;
        for (name, m) in &measured {
            let is_base = name == "f16";
            let (target, met) = if is_base {
                ("", None)
            } else {
                ("WER ≤ f16 + 0.5 points", Some(m.wer <= base.wer + 0.5))
            };
            let vs = |v: f64, b: f64| {
                if is_base {
                    String::new()
                } else {
                    format!(" ({:.2}×)", v / b)
                }
            };
            rows.push(row(
                format!(
                    "model {family} {name}: file, load, sottod peak RSS, decode p50 (2–5 s clips), speech WER ({} clips)",
                    clips.len()
                ),
                format!(
                    "{:.1} MB{}, {:.0} ms{}, {:.0} MB{}, {:.0} ms{}, {:.2} %",
                    m.bytes as f64 / 1e6,
                    vs(m.bytes as f64, base.bytes as f64),
                    m.load_ms,
                    vs(m.load_ms, base.load_ms),
                    m.rss_kib as f64 / 1024.0,
                    vs(m.rss_kib as f64, base.rss_kib as f64),
                    m.p50_ms,
                    vs(m.p50_ms, base.p50_ms),
                    m.wer
                ),
                target,
                met,
            ));
            // Bounded decodes: no decode runs away from its length's median.
            let worst = m
                .buckets
                .iter()
                .map(|(_, median, max, _)| max / median)
                .fold(0.0, f64::max);
            rows.push(row(
                format!("model {family} {name}: decode median / longest per length bucket"),
                m.buckets
                    .iter()
                    .map(|(b, median, max, n)| format!("{b} ({n}): {median:.0} / {max:.0} ms"))
                    .collect::<Vec<_>>()
                    .join("; "),
                "longest ≤ 3 × median",
                Some(worst <= 3.0),
            ));
            data.insert(
                format!("{family} {name}"),
                json!({"bytes": m.bytes, "load_ms": m.load_ms, "rss_kib": m.rss_kib,
                       "decode_p50_ms_2_5_s": m.p50_ms, "wer_percent": m.wer}),
            );
        }
    }
    write_part("models", &rows, serde_json::Value::Object(data));
}
