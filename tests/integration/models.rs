//! Models: bad files are refused before whisper.cpp sees them; the converter
//! reproduces the pinned default model.

use std::path::Path;
use std::time::Duration;

use sotto_testkit::*;

fn with_model(model: &Path, extra: &[&str]) -> Run {
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    Session::new(16_000).silence(1.0).write(&wav);
    let mut args = vec![
        "--model",
        model.to_str().unwrap(),
        "--input-file",
        wav.to_str().unwrap(),
        "--no-pace",
    ];
    args.extend_from_slice(extra);
    run_sottod(&args, Duration::from_secs(30))
}

#[test]
fn no_model() {
    let run = with_model(Path::new("/nonexistent/ggml-tiny.en.bin"), &[]);
    assert_clean_failure(&run, "not found; fetch the default model with `make model`");
}

#[test]
fn an_empty_model() {
    let dir = scratch();
    let p = dir.path().join("empty.bin");
    std::fs::write(&p, b"").unwrap();
    assert_clean_failure(&with_model(&p, &[]), "is empty");
}

#[test]
fn a_truncated_model() {
    let dir = scratch();
    let p = dir.path().join("cut.bin");
    let bytes = std::fs::read(model_path()).unwrap();
    for len in [20, 4_000, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&p, &bytes[..len]).unwrap();
        assert_clean_failure(&with_model(&p, &[]), "is truncated or corrupt");
    }
}

#[test]
fn a_png_renamed_to_bin() {
    let dir = scratch();
    let p = dir.path().join("picture.bin");
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0".to_vec();
    png.resize(2_000, 7);
    std::fs::write(&p, png).unwrap();
    assert_clean_failure(&with_model(&p, &[]), "is not a whisper.cpp ggml model");
}

#[test]
fn an_english_only_model_with_another_language() {
    assert_clean_failure(
        &with_model(&model_path(), &["--language", "de"]),
        "is English-only but --language is \"de\"",
    );
}

#[test]
fn the_model_is_found_without_flags_and_sotto_model_overrides_it() {
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    Session::new(16_000).silence(1.0).write(&wav);
    model_path();
    let run = run_sottod(
        &["--input-file", wav.to_str().unwrap(), "--no-pace"],
        Duration::from_secs(30),
    );
    assert!(run.status.success(), "{}", run.stderr);
    let bus = PrivateBus::start();
    let out = sottod(&bus)
        .args(["--input-file", wav.to_str().unwrap(), "--no-pace"])
        .env("SOTTO_MODEL", "/nonexistent/from-env.bin")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/from-env.bin"));
}

#[test]
fn converting_the_ctranslate2_tiny_en_reproduces_the_pinned_model() {
    let ct2 = project_root().join("models/.cache/tiny.en-ct2");
    assert!(
        ct2.join("model.bin").is_file(),
        "{} is missing: run `models/fetch.sh --source` (make test does)",
        ct2.display()
    );
    let dir = scratch();
    let out = dir.path().join("converted.bin");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-convert"))
        .arg(&ct2)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let pinned = std::fs::read_to_string(project_root().join("models/fetch.sh")).unwrap();
    let sha = pinned
        .lines()
        .find_map(|l| l.strip_prefix("sha256=\""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let digest = std::process::Command::new("sha256sum")
        .arg(&out)
        .output()
        .unwrap();
    let digest = String::from_utf8_lossy(&digest.stdout);
    assert_eq!(digest.split_whitespace().next().unwrap(), sha);
    assert_eq!(
        std::fs::metadata(&out).unwrap().len(),
        77_704_715,
        "the official ggml-tiny.en.bin size"
    );
}

#[test]
fn the_converter_refuses_a_broken_model_dir_in_one_line() {
    let dir = scratch();
    std::fs::write(dir.path().join("model.bin"), b"\x06\0\0\0garbage").unwrap();
    std::fs::write(dir.path().join("vocabulary.txt"), "a\nb\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-convert"))
        .arg(dir.path())
        .arg(dir.path().join("out.bin"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is not a CTranslate2 Whisper model"), "{err}");
    assert!(!dir.path().join("out.bin").exists(), "nothing written");
}
