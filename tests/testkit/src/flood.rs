//! A client that floods sottod with method calls: each of `clients`
//! connections calls `GetStats` back to back for a while, over the real bus,
//! and counts how each call ended.

use std::time::{Duration, Instant};

/// How the calls of one flood ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FloodCounts {
    /// Answered with the statistics.
    pub answered: u64,
    /// Refused with `org.freedesktop.DBus.Error.LimitsExceeded`.
    pub limited: u64,
    /// Any other error (none is expected).
    pub failed: u64,
}

impl FloodCounts {
    pub fn calls(&self) -> u64 {
        self.answered + self.limited + self.failed
    }

    fn add(&mut self, other: FloodCounts) {
        self.answered += other.answered;
        self.limited += other.limited;
        self.failed += other.failed;
    }
}

/// `clients` connections to the bus at `address`, each on its own thread,
/// calling `GetStats` as fast as answers come for `length`. Returns the counts
/// per client, in order.
pub fn flood(address: &str, clients: usize, length: Duration) -> Vec<FloodCounts> {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let address = address.to_string();
            std::thread::spawn(move || flood_one(&address, length))
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("flood client"))
        .collect()
}

/// The sum of the clients' counts.
pub fn total(counts: &[FloodCounts]) -> FloodCounts {
    let mut sum = FloodCounts::default();
    for c in counts {
        sum.add(*c);
    }
    sum
}

fn flood_one(address: &str, length: Duration) -> FloodCounts {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(async {
        let connection = zbus::connection::Builder::address(address)
            .build()
            .await
            .expect("connect to the test bus");
        let mut counts = FloodCounts::default();
        let end = Instant::now() + length;
        while Instant::now() < end {
            let reply = connection
                .call_method(
                    Some("org.sotto.Sotto1"),
                    "/org/sotto/Sotto1",
                    Some("org.sotto.Sotto1"),
                    "GetStats",
                    &(),
                )
                .await;
            match reply {
                Ok(_) => counts.answered += 1,
                Err(e) if is_limits_exceeded(&e) => counts.limited += 1,
                Err(e) => {
                    if counts.failed == 0 {
                        eprintln!("flood: a call failed: {e}");
                    }
                    counts.failed += 1
                }
            }
        }
        counts
    })
}

fn is_limits_exceeded(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::MethodError(name, _, _) => {
            name.as_str() == "org.freedesktop.DBus.Error.LimitsExceeded"
        }
        zbus::Error::FDO(fdo) => matches!(**fdo, zbus::fdo::Error::LimitsExceeded(_)),
        _ => false,
    }
}
