//! A Rust client of sottod with the proxy of the `sotto-client` crate:
//! prints each transcript as it arrives, and after COUNT of them sottod's
//! statistics (GetStats).
//!
//! ```sh
//! cargo run --release --example listen -- [COUNT] [--system]   # COUNT 0: forever
//! ```
//!
//! In your own crate: `sotto-client = { path = ".../client" }` (it has no
//! whisper.cpp or audio dependencies), `zbus`, `tokio` and `futures-util`.

use futures_util::StreamExt;
use sotto_client::proxy::Sotto1Proxy;
use zbus::Connection;
use zbus::Variant as Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> zbus::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count: usize = match args.first().map(|a| a.parse()) {
        Some(Ok(n)) => n,
        Some(Err(_)) if args[0] == "--system" => 0,
        Some(Err(e)) => {
            eprintln!(
                "listen: error: COUNT {:?}: {e}; give a number (0: forever)",
                args[0]
            );
            std::process::exit(2);
        }
        None => 0,
    };
    let connection = if args.iter().any(|a| a == "--system") {
        Connection::system().await?
    } else {
        Connection::session().await?
    };
    let sotto = Sotto1Proxy::new(&connection).await?;
    // Subscribe before anything else, so no transcript is missed.
    let mut transcripts = sotto.receive_transcript().await?;
    let mut drops = sotto.receive_dropped().await?;
    println!("listening");
    let mut heard = 0;
    while count == 0 || heard < count {
        tokio::select! {
            Some(signal) = transcripts.next() => {
                let t = signal.args()?;
                println!("transcript {}: {} ({} ms)", t.id, t.text, t.latency_ms);
                heard += 1;
            }
            Some(signal) = drops.next() => {
                let d = signal.args()?;
                println!("dropped {}: {}", d.id, d.reason);
            }
            else => break,
        }
    }
    let mut stats: Vec<_> = sotto.get_stats().await?.into_iter().collect();
    stats.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in stats {
        // Counters are u64, the real-time factor f64.
        match &*value {
            Value::U64(n) => println!("stats {name}={n}"),
            Value::F64(x) => println!("stats {name}={x}"),
            other => println!("stats {name}={other}"),
        }
    }
    Ok(())
}
