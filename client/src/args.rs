//! The `sotto` client's flags (the man page and completions are made from
//! them too).

use clap::{Parser, Subcommand};

/// Talk to a running sottod over D-Bus (org.sotto.Sotto1).
#[derive(Debug, Parser)]
#[command(name = "sotto", version, max_term_width = 100)]
pub struct ClientArgs {
    /// Use the system bus instead of the session bus
    #[arg(long, global = true)]
    pub system: bool,
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// The `sotto` client's commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Print each transcript as a line as it arrives, and a [dropped: REASON]
    /// line for speech that was not transcribed (--json: every signal as JSON)
    Listen {
        /// Every signal (speech started and ended, woken, transcript,
        /// dropped, error) as one JSON object per line
        #[arg(long)]
        json: bool,
        /// When sottod stops (a restart), wait for it to return instead of
        /// exiting
        #[arg(long)]
        wait: bool,
    },
    /// Wait for the next utterance that starts, print its transcript and exit
    /// (exits 1 when nobody speaks in time or the utterance is dropped)
    Once {
        /// How long to wait for speech to start, in milliseconds
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        timeout_ms: u32,
    },
    /// Push-to-talk: start an utterance, end it when Enter is pressed (or
    /// on Ctrl-C or the end of input), then print its transcript
    Hold,
    /// Push-to-talk: open the microphone and start an utterance (StartUtterance)
    Start,
    /// Push-to-talk: end the utterance and close the microphone (EndUtterance)
    Stop,
    /// Show state, device, model and statistics (each command starts sottod
    /// through D-Bus activation where the bus can)
    Status,
    /// Stop listening and release the microphone
    Pause,
    /// Start listening again
    Resume,
}
