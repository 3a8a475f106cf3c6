//! Malformed input never panics: the WAV reader, the ggml model checker and the
//! CTranslate2 parser, fed mutations of the seeds in tests/fuzz-seeds (bit
//! flips, overwritten bytes, insertions, deletions, truncation), through
//! proptest. Each target runs for `SOTTO_FUZZ_SECONDS` (default 5; the soak
//! script runs 600) and proptest shrinks any failure to a small input.
//!
//! A target passes when every input gives `Ok` or a typed error, never a panic.
//! The seeds themselves must parse, so the mutations start from valid files.
//! A WAV the reader accepts goes on to size the resampler, and a model the
//! parser accepts goes on through the converter's tensor code, as they would
//! in the daemon and in `sotto-convert`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use std::sync::atomic::{AtomicU64, Ordering};

use sotto::audio::wav::WavInput;
use sotto::dsp::resample::Resampler;
use sotto::model::convert::{parse_ct2, to_ggml};
use sotto::model::ggml::check_model;

fn seeds(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-seeds")
        .join(kind);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

fn budget() -> Duration {
    let seconds = std::env::var("SOTTO_FUZZ_SECONDS")
        .ok()
        .map(|s| {
            s.parse::<u64>()
                .expect("SOTTO_FUZZ_SECONDS must be whole seconds")
        })
        .unwrap_or(5);
    Duration::from_secs(seconds)
}

/// One change to a byte string. Positions are fractions of the length, so one
/// strategy fits every seed; half of them land in the first 4 KiB, where the
/// headers are.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: f64,
        head: bool,
        bit: u8,
    },
    SetByte {
        at: f64,
        head: bool,
        value: u8,
    },
    /// Little-endian u32 overwrite: lengths and counts are u32 in all three formats.
    SetWord {
        at: f64,
        head: bool,
        value: u32,
    },
    Insert {
        at: f64,
        head: bool,
        bytes: Vec<u8>,
    },
    Delete {
        at: f64,
        head: bool,
        len: usize,
    },
    Truncate {
        at: f64,
    },
}

fn position(len: usize, at: f64, head: bool) -> usize {
    let span = if head { len.min(4096) } else { len };
    ((span as f64 * at) as usize).min(len.saturating_sub(1))
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        return;
    }
    match m {
        Mutation::FlipBit { at, head, bit } => {
            let i = position(data.len(), *at, *head);
            data[i] ^= 1 << (bit % 8);
        }
        Mutation::SetByte { at, head, value } => {
            let i = position(data.len(), *at, *head);
            data[i] = *value;
        }
        Mutation::SetWord { at, head, value } => {
            let i = position(data.len(), *at, *head);
            for (k, b) in value.to_le_bytes().iter().enumerate() {
                if let Some(slot) = data.get_mut(i + k) {
                    *slot = *b;
                }
            }
        }
        Mutation::Insert { at, head, bytes } => {
            let i = position(data.len(), *at, *head);
            data.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete { at, head, len } => {
            let i = position(data.len(), *at, *head);
            let end = (i + len).min(data.len());
            data.drain(i..end);
        }
        Mutation::Truncate { at } => {
            let n = (data.len() as f64 * at) as usize;
            data.truncate(n);
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    let word = prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        any::<u32>()
    ];
    prop_oneof![
        (at.clone(), any::<bool>(), any::<u8>()).prop_map(|(at, head, bit)| Mutation::FlipBit {
            at,
            head,
            bit
        }),
        (at.clone(), any::<bool>(), any::<u8>()).prop_map(|(at, head, value)| Mutation::SetByte {
            at,
            head,
            value
        }),
        (at.clone(), any::<bool>(), word).prop_map(|(at, head, value)| Mutation::SetWord {
            at,
            head,
            value
        }),
        (
            at.clone(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, head, bytes)| Mutation::Insert { at, head, bytes }),
        (at.clone(), any::<bool>(), 1..64usize).prop_map(|(at, head, len)| Mutation::Delete {
            at,
            head,
            len
        }),
        at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// Runs `target` on mutated seeds until the time budget is spent; returns the
/// number of inputs it actually ran on. A panic inside `target` fails the test
/// with the shrunk input.
fn fuzz(kind: &str, target: impl Fn(&[u8]) + std::panic::RefUnwindSafe) -> u64 {
    let ran = AtomicU64::new(0);
    let target = |data: &[u8]| {
        ran.fetch_add(1, Ordering::Relaxed);
        target(data)
    };
    let seeds = seeds(kind);
    for (name, bytes) in &seeds {
        // The unmutated seeds go through too (and must not panic either).
        let ok = std::panic::catch_unwind(|| target(bytes));
        assert!(ok.is_ok(), "seed {kind}/{name} panicked");
    }
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..6));
    let started = Instant::now();
    let mut round = 0u32;
    while started.elapsed() < budget() {
        let config = Config {
            cases: 2_000,
            failure_persistence: None,
            rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
            ..Config::default()
        };
        // A new seed per round: rounds explore different inputs, and a failure
        // is reproducible from the round number printed with it.
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&round.to_le_bytes());
        seed[4..4 + kind.len().min(28)].copy_from_slice(&kind.as_bytes()[..kind.len().min(28)]);
        let rng = proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &seed,
        );
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&strategy, |(which, mutations)| {
            let mut data = seeds[which].1.clone();
            for m in &mutations {
                apply(&mut data, m);
            }
            match std::panic::catch_unwind(|| target(&data)) {
                Ok(()) => Ok(()),
                Err(_) => Err(TestCaseError::fail(format!(
                    "{kind}: panicked on a mutation of {}",
                    seeds[which].0
                ))),
            }
        });
        if let Err(e) = result {
            panic!("{kind} fuzz round {round}: {e}");
        }
        round += 1;
    }
    let ran = ran.load(Ordering::Relaxed);
    eprintln!(
        "{kind}: {ran} inputs in {:.0} s, no panic",
        started.elapsed().as_secs_f64()
    );
    ran
}

fn scratch_file(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("sotto-fuzz-")
        .tempdir()
        .unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

#[test]
fn the_wav_reader_never_panics() {
    let (_dir, path) = scratch_file("input.wav");
    for (name, bytes) in seeds("wav") {
        std::fs::write(&path, &bytes).unwrap();
        let samples = WavInput::open(&path)
            .and_then(WavInput::read_all)
            .unwrap_or_else(|e| panic!("seed {name} must be a valid WAV: {e}"));
        assert!(!samples.is_empty());
    }
    let accepted = AtomicU64::new(0);
    let ran = fuzz("wav", |data| {
        std::fs::write(&path, data).unwrap();
        if let Ok(wav) = WavInput::open(&path) {
            accepted.fetch_add(1, Ordering::Relaxed);
            // What the daemon does with an accepted header: size the resampler.
            drop(Resampler::new(wav.sample_rate()));
            let _ = wav.read_all();
        }
    });
    eprintln!(
        "wav: {} of {ran} inputs accepted and resampled",
        accepted.load(Ordering::Relaxed)
    );
}

#[test]
fn the_ggml_model_checker_never_panics() {
    let (_dir, path) = scratch_file("model.bin");
    for (name, bytes) in seeds("ggml") {
        std::fs::write(&path, &bytes).unwrap();
        check_model(&path).unwrap_or_else(|e| panic!("seed {name} must be a valid model: {e}"));
    }
    fuzz("ggml", |data| {
        std::fs::write(&path, data).unwrap();
        let _ = check_model(&path);
    });
}

#[test]
fn the_ctranslate2_parser_never_panics() {
    for (name, bytes) in seeds("ct2") {
        parse_ct2(&bytes, Path::new(&name))
            .unwrap_or_else(|e| panic!("seed {name} must parse: {e}"));
    }
    let (_dir, out) = scratch_file("ggml.bin");
    let converted = AtomicU64::new(0);
    let ran = fuzz("ct2", |data| {
        let Ok(model) = parse_ct2(data, Path::new("model.bin")) else {
            return;
        };
        // A vocabulary as long as the embeddings claim (bounded), so the
        // converter goes on into the tensors as `sotto-convert` would.
        let rows = model
            .variables
            .get("decoder/embeddings/weight")
            .and_then(|v| v.dims().first().copied())
            .unwrap_or(0)
            .min(1 << 16);
        let tokens: Vec<String> = (0..rows).map(|i| format!("t{i}")).collect();
        let vocabulary: Vec<&str> = tokens.iter().map(String::as_str).collect();
        if to_ggml(&model, &vocabulary, Path::new("model.bin"), &out).is_ok() {
            converted.fetch_add(1, Ordering::Relaxed);
        }
    });
    eprintln!(
        "ct2: {} of {ran} inputs converted",
        converted.load(Ordering::Relaxed)
    );
}
