//! A private dbus-daemon, busctl calls on it, and `sotto listen --json` as a
//! real client whose receipt times are stamped on its own clock.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::*;

/// A private dbus-daemon (session configuration), stopped on drop.
pub struct PrivateBus {
    _dir: tempfile::TempDir,
    pid: i32,
    pub address: String,
}

impl PrivateBus {
    pub fn start() -> Self {
        Self::with_config(&["--session"])
    }

    /// A bus from explicit dbus-daemon arguments (e.g. a config file).
    pub fn with_config(args: &[&str]) -> Self {
        let dir = scratch();
        let mut cmd = Command::new("dbus-daemon");
        cmd.args(args);
        if args == ["--session"] {
            cmd.arg(format!("--address=unix:path={}/bus", dir.path().display()));
        }
        let out = cmd
            .args([
                "--fork",
                "--print-address=1",
                "--print-pid=1",
                "--nopidfile",
            ])
            .output()
            .expect("dbus-daemon must be installed (scripts/install-deps.sh)");
        assert!(
            out.status.success(),
            "dbus-daemon failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let address = lines.next().expect("bus address").trim().to_string();
        let pid = lines.next().expect("bus pid").trim().parse().expect("pid");
        PrivateBus {
            _dir: dir,
            pid,
            address,
        }
    }

    /// A client command (busctl, gdbus, sotto) on this bus.
    pub fn client(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        c
    }

    /// `busctl --user ARGS` on this bus; its trimmed stdout. Fails the test
    /// when busctl fails.
    pub fn busctl(&self, args: &[&str]) -> String {
        busctl_at(&self.address, args)
    }

    /// The process that owns `org.sotto.Sotto1` on this bus (as the bus
    /// daemon knows it: one it started by activation, too).
    pub fn owner_pid(&self) -> i32 {
        let reply = self.busctl(&[
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "GetConnectionUnixProcessID",
            "s",
            "org.sotto.Sotto1",
        ]);
        reply
            .trim()
            .strip_prefix("u ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a pid in {reply:?}"))
    }

    /// Waits until a daemon owns `org.sotto.Sotto1` on this bus.
    pub fn wait_for_name(&self) {
        let start = Instant::now();
        loop {
            let ok = self
                .client("busctl")
                .args(["--user", "status", "org.sotto.Sotto1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "sottod never took its name"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A property of the daemon as busctl prints it (`s "listening"`).
    pub fn property(&self, name: &str) -> String {
        self.busctl(&sotto_member("get-property", name))
    }

    /// The daemon's `State` property (`listening`, `no-device`, …).
    pub fn state(&self) -> String {
        let out = self.property("State");
        out.trim_start_matches("s ").trim_matches('"').to_string()
    }

    /// Polls `State` until it is `want`; fails the test after `limit`.
    pub fn wait_for_state(&self, want: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            let state = self.state();
            if state == want {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "State stayed {state:?}, expected {want:?} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Calls a method of org.sotto.Sotto1 without arguments.
    pub fn call(&self, method: &str) -> String {
        self.busctl(&sotto_member("call", method))
    }

    /// Calls a method that may fail: `Err` holds busctl's error text.
    pub fn try_call(&self, method: &str) -> Result<String, String> {
        let out = self
            .client("busctl")
            .arg("--user")
            .args(sotto_member("call", method))
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

/// `busctl --user ARGS` on the bus at `address` (from any thread); its trimmed
/// stdout. Fails the test when busctl fails.
pub fn busctl_at(address: &str, args: &[&str]) -> String {
    let out = Command::new("busctl")
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .arg("--user")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "busctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// busctl arguments for `verb` (`call`, `get-property`) on a member of the
/// daemon's object.
pub fn sotto_member<'a>(verb: &'a str, member: &'a str) -> [&'a str; 5] {
    [
        verb,
        "org.sotto.Sotto1",
        "/org/sotto/Sotto1",
        "org.sotto.Sotto1",
        member,
    ]
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        kill(self.pid, libc::SIGTERM);
    }
}

/// An event a real client received, stamped with the client's own clock
/// (Unix epoch ms, fractional) when its line arrived.
pub struct Received {
    pub at_ms: f64,
    pub event: Value,
}

/// Wall clock in fractional milliseconds.
pub fn now_ms_f() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// `sotto listen --json` on `bus`, stamping each line as it arrives.
pub fn timed_listener(bus: &PrivateBus) -> (Child, std::sync::mpsc::Receiver<Received>) {
    use std::io::BufRead;
    let mut child = bus
        .client(bin("sotto"))
        .args(["listen", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let at_ms = now_ms_f();
            if let Ok(event) = serde_json::from_str(&line) {
                let _ = tx.send(Received { at_ms, event });
            }
        }
    });
    (child, rx)
}

/// What a D-Bus signal may take from the daemon's send to the client's read
/// on this machine (measured: p99 0.25 ms; this leaves room for a busy one).
pub const DELIVERY_SLACK_MS: f64 = 100.0;

/// Every transcript a client received arrived within `bound_ms` of its speech's
/// end (plus delivery), on the client's clock. Returns the latencies seen.
pub fn assert_received_within(received: &[Received], bound_ms: u64) -> Vec<f64> {
    let mut latencies = Vec::new();
    for r in received.iter().filter(|r| r.event["event"] == "transcript") {
        let end = r.event["end_ms"].as_u64().unwrap() as f64;
        let latency = r.at_ms - end;
        assert!(
            latency <= bound_ms as f64 + DELIVERY_SLACK_MS,
            "a client received a transcript {latency:.0} ms after its speech ended, bound {bound_ms} ms: {}",
            r.event
        );
        latencies.push(latency);
    }
    latencies
}
