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

#[test]
fn the_quantiser_refuses_what_it_cannot_quantise_in_one_line() {
    let dir = scratch();
    let convert = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-convert"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        err
    };
    let model = model_path();
    let out = dir.path().join("out.bin");
    let (m, o) = (model.as_os_str(), out.as_os_str());
    let err = convert(&["--quantize".as_ref(), "q3_x".as_ref(), m, o]);
    assert!(err.contains("q3_x") && err.contains("q8_0, q5_0"), "{err}");
    // A ggml file without --quantize: nothing to convert.
    let err = convert(&[m, o]);
    assert!(err.contains("--quantize q8_0"), "{err}");
    // Not a ggml file.
    let png = dir.path().join("model.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n0000000000000000").unwrap();
    let err = convert(&["--quantize".as_ref(), "q8_0".as_ref(), png.as_os_str(), o]);
    assert!(err.contains("is not a whisper.cpp model"), "{err}");
    // Quantised already.
    let q8 = dir.path().join("q8.bin");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_sotto-convert"))
        .args(["--quantize".as_ref(), "q8_0".as_ref(), m, q8.as_os_str()])
        .output()
        .unwrap();
    assert!(made.status.success());
    let err = convert(&["--quantize".as_ref(), "q5_0".as_ref(), q8.as_os_str(), o]);
    assert!(err.contains("quantised already"), "{err}");
    // A truncated model.
    let cut = dir.path().join("cut.bin");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = convert(&["--quantize".as_ref(), "q8_0".as_ref(), cut.as_os_str(), o]);
    assert!(err.contains("ends early"), "{err}");
    assert!(!out.exists(), "nothing written");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
