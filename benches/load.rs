//! Latency on a busy machine, measured on the real daemon with a paced session
//! of spoken commands (espeak-ng, six commands 2 s apart):
//!
//! - `load`: two CPU-bound processes (`while :; do :; done`, nice 0) beside
//!   sottod with `--threads 1`, `2` and `auto`, each repeated 5 times, and the
//!   same session quiet: latency p50 / p95 and drops per run;
//! - `flood`: one client calling `GetStats` as fast as it is answered, then ten,
//!   during the session: sottod's own CPU, latency p50 and drops against the
//!   quiet run, and what the flooders got; then fifty clients subscribed to
//!   `Transcript` (each must hear every command).
//!
//! Latency is the daemon's (`latency_ms` in `--json`: end of speech →
//! signal sent); the delivery to clients is `bus_latency`'s business. Every
//! figure is against a quiet run in the same process. `BENCH_SMOKE=1`: one
//! short run of each.

#[path = "common/report.rs"]
mod report;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use report::{percentile, row, smoke, write_part, Row};
use sotto_testkit::*;

/// One paced run: latencies (ms, sorted), drops, sottod's CPU in % of a core
/// over the run, and what `during` returned (it runs beside the session).
struct Outcome<T> {
    latencies: Vec<f64>,
    drops: usize,
    cpu_percent: f64,
    during: T,
}

fn run<T: Send + 'static>(
    wav: &std::path::Path,
    args: &[&str],
    during: impl FnOnce(&str) -> T + Send + 'static,
) -> Outcome<T> {
    let bus = PrivateBus::start();
    let child = sottod(&bus)
        .args(["--input-file", wav.to_str().unwrap(), "--json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sottod");
    bus.wait_for_name();
    let pid = child.id();
    let (ticks0, t0) = (cpu_ticks(pid), Instant::now());
    let address = bus.address.clone();
    let side = std::thread::spawn(move || during(&address));
    let pid_ticks = last_cpu_ticks(pid);
    let out = wait_output(child, Duration::from_secs(180));
    let took = t0.elapsed().as_secs_f64();
    let ticks = pid_ticks.join().unwrap().saturating_sub(ticks0);
    let during = side.join().expect("side load");
    assert!(out.status.success(), "{}", out.stderr);
    let events = out.events();
    let mut latencies: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "transcript")
        .map(|e| e["latency_ms"].as_f64().unwrap())
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let drops = events.iter().filter(|e| e["event"] == "dropped").count();
    let tick = ticks_per_second();
    Outcome {
        latencies,
        drops,
        cpu_percent: 100.0 * ticks as f64 / tick / took,
        during,
    }
}

fn p(v: &[f64], q: f64) -> f64 {
    percentile(v, q)
}

fn load_step(wav: &std::path::Path) -> (Vec<Row>, Value) {
    let repeats = if smoke() { 1 } else { 5 };
    let quiet = run(wav, &[], |_| ());
    let mut rows = vec![row(
        "quiet, --threads auto: latency p50 / p95, drops",
        format!(
            "{:.0} / {:.0} ms, {}",
            p(&quiet.latencies, 50.0),
            p(&quiet.latencies, 95.0),
            quiet.drops
        ),
        "",
        None,
    )];
    let mut data = json!({"quiet": {"latencies_ms": quiet.latencies, "drops": quiet.drops}});
    let configs: &[&str] = if smoke() {
        &["auto"]
    } else {
        &["1", "2", "auto"]
    };
    for threads in configs {
        let mut runs = Vec::new();
        for _ in 0..repeats {
            let busy = BusyProcesses::start(2);
            let o = run(wav, &["--threads", threads], |_| ());
            busy.stop();
            runs.push(o);
        }
        let per_run: Vec<String> = runs
            .iter()
            .map(|o| {
                format!(
                    "{:.0}/{:.0}{}",
                    p(&o.latencies, 50.0),
                    p(&o.latencies, 95.0),
                    if o.drops > 0 {
                        format!(" ({} dropped)", o.drops)
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        let worst_p50 = runs
            .iter()
            .map(|o| p(&o.latencies, 50.0))
            .fold(0.0, f64::max);
        let drops: usize = runs.iter().map(|o| o.drops).sum();
        let auto = *threads == "auto";
        rows.push(row(
            format!(
                "two busy processes, --threads {threads}: latency p50/p95 ms per run ({repeats} runs)"
            ),
            per_run.join(", "),
            if auto {
                "p50 ≤ 1000 ms and no drop, every run"
            } else {
                ""
            },
            auto.then_some(worst_p50 <= 1000.0 && drops == 0),
        ));
        data[format!("threads_{threads}")] = json!(runs
            .iter()
            .map(|o| json!({"latencies_ms": o.latencies, "drops": o.drops}))
            .collect::<Vec<_>>());
    }
    (rows, data)
}

fn flood_step(wav: &std::path::Path) -> (Vec<Row>, Value) {
    let quiet = run(wav, &[], |_| ());
    let length = if smoke() { 2 } else { 8 };
    let flooded = |clients: usize| {
        run(wav, &[], move |address: &str| {
            // The session starts speaking 1.5 s in; flood through it.
            flood(address, clients, Duration::from_secs(length * 2))
        })
    };
    let one = flooded(1);
    let ten = flooded(10);
    let base_p50 = p(&quiet.latencies, 50.0);
    let mut rows = vec![row(
        "quiet: sottod CPU, latency p50, drops",
        format!(
            "{:.1} % of a core, {:.0} ms, {}",
            quiet.cpu_percent, base_p50, quiet.drops
        ),
        "",
        None,
    )];
    let mut data = json!({"quiet": {"cpu_percent": quiet.cpu_percent, "latencies_ms": quiet.latencies, "drops": quiet.drops}});
    for (name, o) in [("one client", &one), ("ten clients", &ten)] {
        let counts = total(&o.during);
        let rise = o.cpu_percent - quiet.cpu_percent;
        let p50 = p(&o.latencies, 50.0);
        let refused = o.during.iter().all(|c| c.limited > 0);
        rows.push(row(
            format!("flood, {name} calling GetStats: sottod CPU (rise), latency p50, drops; calls answered / refused"),
            format!(
                "{:.1} % ({rise:+.1}), {p50:.0} ms ({:+.0}), {}; {} / {}",
                o.cpu_percent,
                p50 - base_p50,
                o.drops,
                counts.answered,
                counts.limited
            ),
            "rise ≤ 10 % of a core, p50 ≤ quiet + 100 ms, no drop, every flooder refused",
            Some(rise <= 10.0 && p50 <= base_p50 + 100.0 && o.drops == 0 && refused),
        ));
        data[name.replace(' ', "_")] = json!({
            "cpu_percent": o.cpu_percent, "latencies_ms": o.latencies, "drops": o.drops,
            "answered": counts.answered, "limited": counts.limited, "failed": counts.failed,
        });
    }
    // As many as `main` put in the session.
    let commands = if smoke() { 2 } else { COMMANDS.len() };
    let subscribed = run(wav, &[], |address: &str| Subscribers::start(address, 50));
    let heard = subscribed.during.finish();
    let everyone = heard.iter().all(|texts| {
        texts.iter().map(|t| normalize(t)).collect::<Vec<_>>() == COMMANDS[..commands]
    });
    let rise = subscribed.cpu_percent - quiet.cpu_percent;
    let p50 = p(&subscribed.latencies, 50.0);
    rows.push(row(
        "50 subscribers to Transcript: sottod CPU (rise), latency p50, drops; every subscriber heard every command",
        format!(
            "{:.1} % ({rise:+.1}), {p50:.0} ms ({:+.0}), {}; {}",
            subscribed.cpu_percent,
            p50 - base_p50,
            subscribed.drops,
            if everyone { "yes" } else { "no" }
        ),
        "rise ≤ 10 % of a core, p50 ≤ quiet + 100 ms, no drop, everyone heard all",
        Some(rise <= 10.0 && p50 <= base_p50 + 100.0 && subscribed.drops == 0 && everyone),
    ));
    data["subscribers_50"] = json!({
        "cpu_percent": subscribed.cpu_percent, "latencies_ms": subscribed.latencies,
        "drops": subscribed.drops, "everyone_heard_all": everyone,
    });
    (rows, data)
}

fn main() {
    model_path();
    let dir = scratch();
    let wav = commands_wav(dir.path(), 1.5, if smoke() { 2 } else { COMMANDS.len() });
    let (mut rows, load) = load_step(&wav);
    let (flood_rows, flood) = flood_step(&wav);
    rows.extend(flood_rows);
    write_part("load", &rows, json!({"load": load, "flood": flood}));
}
