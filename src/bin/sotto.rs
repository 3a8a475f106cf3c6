//! `sotto`: the command-line client of a running sottod.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sotto::bus::client;
use sotto::config::BusKind;

/// Talk to a running sottod over D-Bus (org.sotto.Sotto1).
#[derive(Parser)]
#[command(name = "sotto", version)]
struct Args {
    /// Use the system bus instead of the session bus
    #[arg(long, global = true)]
    system: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => return sotto::cli::exit_for_clap_error(e, "sotto"),
    };
    let bus = if args.system {
        BusKind::System
    } else {
        BusKind::Session
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sotto: error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            Command::Listen { json, wait } => client::listen(bus, json, wait).await,
            Command::Once { timeout_ms } => client::once(bus, timeout_ms)
                .await
                .map(|text| println!("{text}")),
            Command::Hold => client::hold(bus).await.map(|text| println!("{text}")),
            Command::Start => client::utterance(bus, true).await,
            Command::Stop => client::utterance(bus, false).await,
            Command::Status => client::status(bus).await.map(|s| print!("{s}")),
            Command::Pause => client::pause(bus, true).await,
            Command::Resume => client::pause(bus, false).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sotto: error: {e}");
            ExitCode::FAILURE
        }
    }
}
