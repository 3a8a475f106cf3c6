//! Helpers for sotto's integration tests and benchmarks, by concern: private
//! D-Bus buses and real clients ([`bus`]), runs of the daemon ([`daemon`]),
//! generated speech and WAV files ([`audio`]), a virtual microphone on a
//! private PulseAudio server ([`mic`]), the event invariant ([`events`]), a
//! client that floods the bus ([`mod@flood`]), many clients that hear it
//! ([`subscribers`]), the
//! shared corpus and its one manifest parser ([`corpus`]), the paced sessions
//! several tests play ([`sessions`]), process
//! measurements ([`measure`]) and transcript scoring ([`score`]). Everything is
//! re-exported at the top, so a test says `use sotto_testkit::*;`.

pub mod audio;
pub mod bus;
pub mod corpus;
pub mod daemon;
pub mod events;
pub mod flood;
pub mod measure;
pub mod mic;
pub mod score;
pub mod sessions;
pub mod subscribers;

pub use audio::*;
pub use bus::*;
pub use corpus::*;
pub use daemon::*;
pub use events::*;
pub use flood::*;
pub use measure::*;
pub use mic::*;
pub use score::{normalize, word_errors};
pub use sessions::*;
pub use subscribers::Subscribers;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// The project's folder (this crate lives in tests/testkit).
pub fn project_root() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root)
}

/// A binary of the project, beside the test or bench executable that runs
/// (`target/<profile>/deps/…`); cargo builds them before its tests and benches.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable");
    let mut dir = exe.parent().expect("its folder").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it with `make` (or `cargo build --release --bins --examples -p sotto -p sotto-client`)",
        path.display()
    );
    path
}

/// The default model; the tests need it and say how to get it.
pub fn model_path() -> PathBuf {
    let p = project_root().join("models/ggml-tiny.en.bin");
    assert!(
        p.is_file(),
        "the default model {} is missing: run `make model` (or models/fetch.sh) first",
        p.display()
    );
    p
}

/// The shared test clips (../shared/testdata); required where a test uses them.
pub fn testdata() -> PathBuf {
    let p = project_root().join("../shared/testdata");
    assert!(
        p.join("manifest.tsv").is_file(),
        "../shared/testdata is missing: these accuracy tests need the shared clips beside the project"
    );
    p
}

/// Wall clock as Unix epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A temporary folder, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sotto-test-")
        .tempdir()
        .expect("temp dir")
}
