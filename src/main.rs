//! `sottod`: parse flags, run the daemon, map errors to one line and an exit code.

use std::process::ExitCode;

use clap::Parser as _;
use sotto::cli::Cli;
use sotto::config::Config;

fn main() -> ExitCode {
    // Before any thread exists: libgomp reads its spin bound once, at load.
    if let Err(e) = sotto::transcribe::threads::bounded_spin() {
        eprintln!("sottod: warning: cannot restart with GOMP_SPINCOUNT set ({e}); decodes may be slower on a busy machine");
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return sotto::cli::exit_for_clap_error(e, "sottod"),
    };
    if cli.list_devices {
        print_devices(cli.host);
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_cli(&cli) {
        Ok(c) => c,
        Err(e) => return fail(&e.into()),
    };
    if let Err(e) = sotto::transcribe::cpu::check() {
        return fail(&anyhow::anyhow!(e));
    }
    sotto::logging::init(config.verbosity);
    // One worker: the event loop is one task; zbus's own tasks run beside it.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("event-loop")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&anyhow::Error::new(e).context("cannot start the event loop")),
    };
    // The bus is served on the runtime's worker; this future (the event loop,
    // and every pipeline thread it spawns) stays on the main thread at the
    // process's priority.
    runtime.block_on(async {
        match tokio::spawn(async { sotto::priority::lower_this_thread(sotto::priority::BUS_NICE) })
            .await
        {
            Ok(Ok(nice)) => log::debug!("bus thread at nice {nice}"),
            Ok(Err(e)) => log::warn!("bus thread keeps its priority: {e}"),
            Err(e) => log::warn!("bus thread keeps its priority: {e}"),
        }
    });
    // The signal handlers go in before anything can say "ready".
    let shutdown = {
        let _runtime = runtime.enter();
        sotto::daemon::shutdown_signal()
    };
    match runtime.block_on(sotto::daemon::run(config, shutdown)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!(
        "sottod: error: {}",
        sotto::cli::name_env_sources(&format!("{e:#}"))
    );
    ExitCode::FAILURE
}

/// `--list-devices`: a header, one device per line (the default marked with
/// `*`), and the devices that cannot open here in one closing line.
fn print_devices(host: sotto::audio::device::AudioHost) {
    use std::io::Write;
    let devices = sotto::audio::device::list_devices(host);
    let default = sotto::audio::device::default_device_name(host);
    let mut out = std::io::stdout().lock();
    let mut lines = vec!["  NAME\tDEFAULT FORMAT\tDESCRIPTION".to_string()];
    let mut hidden = Vec::new();
    for (info, _) in &devices {
        if !info.usable {
            hidden.push(info.name.clone());
            continue;
        }
        let mark = if default.as_deref() == Some(info.name.as_str()) {
            "*"
        } else {
            " "
        };
        lines.push(format!(
            "{mark} {}\t{}\t{}",
            info.name, info.default_config, info.description
        ));
    }
    if default.is_some() {
        lines.push("(* the default input, used without --device)".into());
    }
    if !hidden.is_empty() {
        lines.push(format!(
            "(not listed, they cannot open here: {})",
            hidden.join(", ")
        ));
    }
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
}
