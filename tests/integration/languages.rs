//! Languages with the multilingual base model (`make test` fetches it):
//! `--language auto` per utterance, `--languages` restricting it,
//! `--translate`, and the language in `--json` and the `Details` signal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sotto_testkit::*;

/// espeak-ng speaks these clearly enough for base to tell them apart at 150
/// words a minute (at its default 175 it took the Italian for Latin).
const SENTENCES: [(&str, &str); 5] = [
    (
        "en",
        "The weather today is sunny and warm, so we will walk to the market after lunch.",
    ),
    (
        "de",
        "Das Wetter ist heute sonnig und warm, deshalb gehen wir nach dem Mittagessen zum Markt.",
    ),
    (
        "fr",
        "Il fait beau et chaud aujourd'hui, alors nous irons au marché après le déjeuner.",
    ),
    (
        "es",
        "Hoy hace sol y calor, así que iremos al mercado después del almuerzo.",
    ),
    (
        "it",
        "Oggi il tempo è bello e caldo, quindi andremo al mercato dopo pranzo.",
    ),
];

fn base_model() -> PathBuf {
    let p = project_root().join("models/ggml-base.bin");
    assert!(
        p.is_file(),
        "{} is missing: run `models/fetch.sh base` (make test does)",
        p.display()
    );
    p
}

fn session(dir: &Path, sentences: &[(&str, &str)]) -> PathBuf {
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.5);
    for (voice, text) in sentences {
        s.say_at(voice, 150, text).silence(1.0);
    }
    let wav = dir.join("s.wav");
    s.write(&wav);
    wav
}

/// The transcripts of an unpaced run with `args`.
fn heard(wav: &Path, args: &[&str]) -> Vec<Value> {
    let base = base_model();
    let mut all = vec![
        "--model",
        base.to_str().unwrap(),
        "--input-file",
        wav.to_str().unwrap(),
        "--no-pace",
        "--json",
        // These tests judge languages, not latency: on a loaded machine
        // base's first decode (it waits for the warm-up, and auto adds a
        // detection pass) took the first sentence past the default 5 s.
        "--max-latency-ms",
        "60000",
    ];
    all.extend_from_slice(args);
    let run = run_sottod(&all, Duration::from_secs(120));
    assert!(run.status.success(), "{}", run.stderr);
    let events = run.events();
    utterances(&events);
    // What was not transcribed, and why, for a failure's message.
    if events.iter().any(|e| e["event"] == "dropped") {
        println!("{}", run.stderr);
    }
    events
        .into_iter()
        .filter(|e| e["event"] == "transcript")
        .collect()
}

fn languages_of(transcripts: &[Value]) -> Vec<String> {
    transcripts
        .iter()
        .map(|t| t["language"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn language_auto_hears_each_of_five_languages_in_one_session() {
    let dir = scratch();
    let wav = session(dir.path(), &SENTENCES);
    let transcripts = heard(&wav, &["--language", "auto"]);
    for t in &transcripts {
        println!(
            "{} {:.2} {}",
            t["language"], t["language_probability"], t["text"]
        );
        let p = t["language_probability"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{t}");
    }
    assert_eq!(
        languages_of(&transcripts),
        SENTENCES.map(|(l, _)| l.to_string()),
        "one utterance per sentence, each in its language"
    );
}

#[test]
fn languages_limits_what_auto_may_choose() {
    let dir = scratch();
    let wav = session(dir.path(), &SENTENCES[3..]);
    let free = heard(&wav, &["--languages", "es,it,en"]);
    assert_eq!(languages_of(&free), ["es", "it"]);
    // Forced into the wrong language, an utterance may come out as words
    // or be judged no speech; whatever is published is in de or fr.
    let limited = heard(&wav, &["--languages", "de,fr"]);
    let chosen = languages_of(&limited);
    assert!(!chosen.is_empty(), "{limited:?}");
    assert!(
        chosen.iter().all(|l| l == "de" || l == "fr"),
        "only de or fr: {chosen:?}"
    );
}

#[test]
fn translate_writes_english_for_a_german_sentence() {
    let dir = scratch();
    let german = [("de", "Mein Bruder wohnt in einem kleinen Haus am See.")];
    let wav = session(dir.path(), &german);
    let text = |args: &[&str]| -> String {
        let t = heard(&wav, args);
        assert_eq!(t.len(), 1, "{t:?}");
        normalize(t[0]["text"].as_str().unwrap())
    };
    let as_spoken = text(&["--language", "de"]);
    let translated = text(&["--language", "de", "--translate"]);
    println!("de: {as_spoken}\ntranslated: {translated}");
    assert!(as_spoken.contains("haus"), "{as_spoken}");
    let words: Vec<&str> = translated.split_whitespace().collect();
    assert!(words.contains(&"house"), "{translated}");
    for german in ["haus", "wohnt", "einem", "kleinen", "mein"] {
        assert!(!words.contains(&german), "{german} in {translated}");
    }
}

#[test]
fn details_precedes_each_transcript_on_the_bus() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = session(dir.path(), &SENTENCES[..1]);
    let monitor = bus
        .client("gdbus")
        .args(["monitor", "--session", "--dest", "org.sotto.Sotto1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let daemon = sottod(&bus)
        .args(["--input-file", wav.to_str().unwrap(), "--no-pace"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_output(daemon, Duration::from_secs(60));
    assert!(run.status.success(), "{}", run.stderr);
    std::thread::sleep(Duration::from_millis(300));
    signal(&monitor, 15);
    let out = wait_output(monitor, Duration::from_secs(5)).stdout;
    let lines: Vec<&str> = out.lines().collect();
    let at = |member: &str| {
        lines
            .iter()
            .position(|l| l.contains(&format!("org.sotto.Sotto1.{member} (")))
            .unwrap_or_else(|| panic!("no {member} signal: {out}"))
    };
    let (details, transcript) = (at("Details"), at("Transcript"));
    assert!(details < transcript, "{out}");
    let line = lines[details];
    assert!(line.contains("(uint64 1,"), "{line}");
    assert!(line.contains("'language': <'en'>"), "{line}");
    assert!(line.contains("'language_probability': <1.0>"), "{line}");
    assert!(line.contains("'decode_ms': <uint32 "), "{line}");
}

#[test]
fn languages_an_english_only_model_cannot_serve_are_one_line_errors() {
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    Session::new(16_000).silence(1.0).write(&wav);
    let w = wav.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--language", "auto"],
            "English-only but --language is \"auto\"",
        ),
        (
            vec!["--languages", "en,de"],
            "English-only but --language is \"auto\"",
        ),
        (vec!["--translate"], "English-only, so it cannot translate"),
        (
            vec!["--languages", "en,xx"],
            "\"xx\" is not an ISO 639-1 code",
        ),
        (vec!["--languages", ","], "--languages is empty"),
        (
            vec!["--language", "de", "--languages", "en,fr"],
            "--languages limits what --language auto detects",
        ),
    ] {
        let mut all = vec!["--input-file", w, "--no-pace"];
        all.extend_from_slice(&args);
        let run = run_sottod(&all, Duration::from_secs(30));
        assert!(!run.status.success(), "{args:?}");
        assert_eq!(
            run.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}
