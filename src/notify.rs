//! systemd's notification protocol (`sd_notify`): READY=1 once the model is
//! loaded and the source is open (both units are `Type=notify`), and
//! WATCHDOG=1 from the event loop, so a hung daemon is restarted. A datagram
//! on the unix socket systemd names in `NOTIFY_SOCKET`; nothing without it.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The notification socket, if systemd gave one.
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
    pub fn from_env() -> Option<Self> {
        let path = std::env::var("NOTIFY_SOCKET").ok()?;
        let address = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
            None => SocketAddr::from_pathname(&path).ok()?,
        };
        let socket = UnixDatagram::unbound().ok()?;
        // Never block the event loop on a reader that has stopped reading.
        socket.set_nonblocking(true).ok()?;
        Some(Self { socket, address })
    }

    /// Sends one notification; failures are logged and otherwise ignored.
    pub fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.address) {
            log::warn!("systemd notification {message:?} not sent: {e}");
        }
    }
}

/// How often to send WATCHDOG=1: half of `WATCHDOG_USEC`, when systemd set it
/// for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
