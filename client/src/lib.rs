//! The client side of sotto's D-Bus interface `org.sotto.Sotto1`: the
//! `sotto` command, its events and their JSON form, without the daemon (no
//! whisper.cpp, no audio). sottod's own crate builds on it.

pub mod args;
pub mod clap_error;
pub mod client;
pub mod event;
pub mod proxy;

/// The bus name sottod owns.
pub const NAME: &str = "org.sotto.Sotto1";
/// The object sottod serves.
pub const PATH: &str = "/org/sotto/Sotto1";

/// Which bus the service and the client use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    /// The user's session bus (desktops).
    Session,
    /// The system bus (appliances; needs the installed policy).
    System,
}

impl BusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BusKind::Session => "session",
            BusKind::System => "system",
        }
    }
}
