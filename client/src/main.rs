//! `sotto`: the command-line client of a running sottod.

use std::process::ExitCode;

use clap::Parser;
use sotto_client::args::{ClientArgs, ClientCommand as Command};
use sotto_client::{client, BusKind};

fn main() -> ExitCode {
    let args = match ClientArgs::try_parse() {
        Ok(a) => a,
        Err(e) => return sotto_client::clap_error::exit_for(e, "sotto", str::to_owned),
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
