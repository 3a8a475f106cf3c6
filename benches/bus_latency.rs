//! Signal delivery: from the moment a transcript is ready in the event loop to
//! its receipt by a client on the bus (another connection, its own thread), on
//! a private dbus-daemon. p50 / p99 / max over 1,000 signals.
//!
//! `cargo bench --bench bus_latency`

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use sotto::bus::{Served, Service};
use sotto::config::BusKind;
use sotto::event::{Event, Transcript};

#[path = "common/report.rs"]
mod report;
use report::{row, smoke, write_part};

const FULL: usize = 1000;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn main() {
    let n = if smoke() { 50 } else { FULL };
    let dir = std::env::temp_dir().join(format!("sotto-bus-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("dbus-daemon")
        .args([
            "--session",
            "--fork",
            "--print-address=1",
            "--print-pid=1",
            "--nopidfile",
        ])
        .arg(format!("--address=unix:path={}/bus", dir.display()))
        .output()
        .expect("dbus-daemon (scripts/install-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let address = lines.next().unwrap().to_string();
    let pid: i32 = lines.next().unwrap().trim().parse().unwrap();
    // SAFETY: set before any thread that reads the environment starts.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address) };

    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let conn = zbus::Connection::session().await.unwrap();
            let rule = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .interface("org.sotto.Sotto1")
                .member("Transcript")
                .build()
                .unwrap();
            let mut stream =
                zbus::MessageStream::for_match_rule(rule, &conn, std::num::NonZeroUsize::new(2048))
                    .await
                    .unwrap();
            ready_tx.send(()).unwrap();
            let mut delays = Vec::with_capacity(n);
            while delays.len() < n {
                let Some(Ok(msg)) = stream.next().await else {
                    break;
                };
                let (_, _, sent_us, _, _, _): (u64, String, u64, u64, f64, u32) =
                    msg.body().deserialize().unwrap();
                delays.push(now_us().saturating_sub(sent_us));
            }
            delays
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let delays = rt.block_on(async {
        let stats = std::sync::Arc::new(std::sync::Mutex::new(sotto::stats::Stats::new(
            Default::default(),
        )));
        let service = Service::start(
            BusKind::Session,
            Served {
                device: "bench".into(),
                model: "none".into(),
                language: "en".into(),
                mode: sotto::config::Mode::Always,
                hold: Default::default(),
                source: Default::default(),
                stats,
                listeners: Default::default(),
            },
        )
        .await
        .unwrap();
        ready_rx.recv().unwrap();
        for id in 1..=n as u64 {
            let event = Event::Transcript(Transcript {
                id,
                text: "turn on the kitchen lights".into(),
                start_ms: now_us(),
                end_ms: 0,
                confidence: 0.9,
                timing: None,
                language: None,
            });
            service.publish(&event, 500).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::task::spawn_blocking(move || client.join().unwrap())
            .await
            .unwrap()
    });
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut d = delays;
    d.sort_unstable();
    let pct =
        |p: f64| d[((p * d.len() as f64).ceil() as usize).clamp(1, d.len()) - 1] as f64 / 1000.0;
    let max = *d.last().unwrap() as f64 / 1000.0;
    write_part(
        "bus_latency",
        &[row(
            format!(
                "Transcript signal, publish → receipt by a client on a private bus ({} signals), p50 / p99 / max",
                d.len()
            ),
            format!("{:.3} / {:.3} / {max:.3} ms", pct(0.50), pct(0.99)),
            "p99 ≤ 2 ms",
            Some(pct(0.99) <= 2.0),
        )],
        serde_json::json!({"signals": d.len(), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": max}),
    );
}
