//! Shared by the benches: smoke mode, and the rows each bench hands to the
//! report (`target/bench/parts/<bench>.json`, assembled by the `session` bench
//! into `target/bench/report.{md,json}`).

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{json, Value};

/// `BENCH_SMOKE=1`: a few seconds of each measurement, so the script is run in
/// CI and cannot rot. Smoke figures mean nothing.
pub fn smoke() -> bool {
    std::env::var_os("BENCH_SMOKE").is_some_and(|v| v != "0")
}

pub fn bench_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(dir.join("parts")).expect("create target/bench");
    dir
}

/// One row of the report: what was measured, the value, the target and
/// whether it is met (`None` where there is no target).
pub struct Row {
    pub figure: String,
    pub value: String,
    pub target: String,
    pub met: Option<bool>,
}

pub fn row(
    figure: impl Into<String>,
    value: impl Into<String>,
    target: &str,
    met: Option<bool>,
) -> Row {
    Row {
        figure: figure.into(),
        value: value.into(),
        target: target.to_string(),
        met,
    }
}

/// Writes this bench's rows and raw numbers for the report, and prints the rows.
pub fn write_part(bench: &str, rows: &[Row], data: Value) {
    let rows_json: Vec<Value> = rows
        .iter()
        .map(|r| json!({"figure": r.figure, "value": r.value, "target": r.target, "met": r.met}))
        .collect();
    let part = json!({"bench": bench, "smoke": smoke(), "rows": rows_json, "data": data});
    let path = bench_dir().join("parts").join(format!("{bench}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&part).unwrap()).expect("write part");
    for r in rows {
        println!("| {} | {} | {} |", r.figure, r.value, r.target);
    }
}

/// Percentile (0..=100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Registers DejaVu Sans as plotters' "sans-serif" (plotters' bitmap backend
/// has no font of its own).
pub fn plot_font() {
    let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        .expect("DejaVuSans.ttf (package fonts-dejavu-core)");
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    let _ = plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, font);
}
