//! A client that floods sottod with method calls: each of `clients`
//! connections makes one [`Call`] (`GetStats` unless told) back to back for a
//! while, over the real bus, and counts how each call ended.

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

/// A call to sottod's object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    GetStats,
    /// `org.freedesktop.DBus.Properties.Get` of `State`.
    GetState,
    /// `org.freedesktop.DBus.Properties.GetAll`.
    GetAll,
    /// `org.freedesktop.DBus.Introspectable.Introspect`.
    Introspect,
    /// `org.freedesktop.DBus.Peer.Ping`.
    Ping,
    /// `Introspect` of the root object, above sottod's.
    IntrospectRoot,
}

impl Call {
    pub const ALL: [Call; 6] = [
        Call::GetStats,
        Call::GetState,
        Call::GetAll,
        Call::Introspect,
        Call::Ping,
        Call::IntrospectRoot,
    ];

    async fn make(self, connection: &zbus::Connection) -> zbus::Result<zbus::Message> {
        let (name, path) = ("org.sotto.Sotto1", "/org/sotto/Sotto1");
        let properties = Some("org.freedesktop.DBus.Properties");
        match self {
            Call::GetStats => {
                connection
                    .call_method(Some(name), path, Some(name), "GetStats", &())
                    .await
            }
            Call::GetState => {
                connection
                    .call_method(Some(name), path, properties, "Get", &(name, "State"))
                    .await
            }
            Call::GetAll => {
                connection
                    .call_method(Some(name), path, properties, "GetAll", &(name,))
                    .await
            }
            Call::Introspect | Call::IntrospectRoot => {
                let path = if self == Call::Introspect { path } else { "/" };
                let iface = Some("org.freedesktop.DBus.Introspectable");
                connection
                    .call_method(Some(name), path, iface, "Introspect", &())
                    .await
            }
            Call::Ping => {
                let iface = Some("org.freedesktop.DBus.Peer");
                connection
                    .call_method(Some(name), path, iface, "Ping", &())
                    .await
            }
        }
    }
}

/// `clients` connections to the bus at `address`, each on its own thread,
/// calling `GetStats` as fast as answers come for `length`. Returns the counts
/// per client, in order.
pub fn flood(address: &str, clients: usize, length: Duration) -> Vec<FloodCounts> {
    flood_with(address, clients, length, Call::GetStats)
}

/// [`flood`] with another call.
pub fn flood_with(address: &str, clients: usize, length: Duration, call: Call) -> Vec<FloodCounts> {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let address = address.to_string();
            std::thread::spawn(move || flood_one(&address, length, call))
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

fn flood_one(address: &str, length: Duration, call: Call) -> FloodCounts {
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
            let reply = call.make(&connection).await;
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
