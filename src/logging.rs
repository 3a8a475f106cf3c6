//! A minimal stderr logger for the `log` facade. Privacy: transcript text is
//! logged only at debug level, which `-v` turns on; the default shows ids,
//! lengths and timings only.

use log::{Level, LevelFilter, Metadata, Record};

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // Other crates' chatter (whisper.cpp through whisper-rs, the PulseAudio
        // client, which reports every closed stream as an error) only at trace:
        // sottod reports what matters itself, in its own words. Their trace
        // level (zbus's and mio's every message) stays off even then.
        metadata.target().starts_with("sotto")
            || (log::max_level() >= LevelFilter::Trace && metadata.level() <= Level::Debug)
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                Level::Error => "error",
                Level::Warn => "warning",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            eprintln!("sottod: {level}: {}", record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Installs the logger: 0 (`-q`) errors only, 1 (default) warnings and info,
/// 2 (`-v`) debug with transcript text, 3 (`-vv`) sottod's trace and the
/// debug messages of the libraries it uses.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => LevelFilter::Error,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
