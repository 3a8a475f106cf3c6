//! Bad input: one line on stderr naming the problem and the fix, non-zero exit,
//! no panic, nothing half-done.

use std::time::Duration;

use sotto_testkit::*;

fn fails(args: &[&str], needle: &str) {
    let run = run_sottod(args, Duration::from_secs(30));
    assert_clean_failure(&run, needle);
}

#[test]
fn a_missing_input_file() {
    fails(
        &["--input-file", "/nonexistent/speech.wav"],
        "cannot read /nonexistent/speech.wav",
    );
}

#[test]
fn a_text_file_named_wav() {
    let dir = scratch();
    let path = dir.path().join("notes.wav");
    std::fs::write(&path, "these are my notes, not audio\n").unwrap();
    fails(
        &["--input-file", path.to_str().unwrap()],
        "is not a WAV file",
    );
}

#[test]
fn a_truncated_wav() {
    let dir = scratch();
    let full = dir.path().join("full.wav");
    let mut s = Session::new(16_000);
    s.silence(2.0);
    s.write(&full);
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails(&["--input-file", cut.to_str().unwrap()], "is truncated");
}

#[test]
fn a_wav_with_no_frames() {
    let dir = scratch();
    let path = dir.path().join("empty.wav");
    write_wav(
        &path,
        &Audio {
            rate: 16_000,
            samples: vec![],
        },
    );
    fails(
        &["--input-file", path.to_str().unwrap()],
        "has no audio frames",
    );
}

#[test]
fn an_unknown_device_lists_the_devices() {
    let mic = VirtualMic::start();
    let child = mic
        .sottod()
        .args(["--device", "no-such-microphone-xyz"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_output(child, Duration::from_secs(30));
    assert_clean_failure(&run, "no input device matches \"no-such-microphone-xyz\"");
    assert!(
        run.stderr.contains("pulseaudio:vmic.monitor"),
        "lists the devices: {}",
        run.stderr
    );
}

#[test]
fn zero_silence() {
    fails(
        &["--silence-ms", "0"],
        "--silence-ms must be greater than 0",
    );
}

#[test]
fn negative_values() {
    fails(&["--pre-roll-ms=-5"], "--pre-roll-ms must be 0 ms or more");
    fails(
        &["--max-latency-ms=-1"],
        "--max-latency-ms must be greater than 0",
    );
}

#[test]
fn min_speech_above_max_utterance() {
    fails(
        &["--min-speech-ms", "5000", "--max-utterance-ms", "3000"],
        "--min-speech-ms (5000) is greater than --max-utterance-ms (3000)",
    );
}

#[test]
fn a_vad_threshold_out_of_range() {
    fails(
        &["--vad-threshold", "1.5"],
        "--vad-threshold must be between 0 and 1",
    );
}

#[test]
fn an_unknown_flag() {
    fails(&["--frobnicate"], "unexpected argument '--frobnicate'");
}

#[test]
fn a_value_that_is_not_a_number() {
    fails(&["--silence-ms", "soon"], "--silence-ms");
}

#[test]
fn help_documents_every_flag_with_its_unit() {
    let run = run_sottod(&["--help"], Duration::from_secs(10));
    assert!(run.status.success());
    for flag in [
        "--device",
        "--list-devices",
        "--input-file",
        "--no-pace",
        "--model",
        "--language",
        "--threads",
        "--vad-threshold",
        "--min-speech-ms",
        "--silence-ms",
        "--end-of-speech",
        "--min-silence-ms",
        "--max-silence-ms",
        "--pre-roll-ms",
        "--max-utterance-ms",
        "--max-latency-ms",
        "--bus",
        "--json",
        "--verbose",
        "--quiet",
    ] {
        assert!(run.stdout.contains(flag), "--help lacks {flag}");
    }
    assert!(run.stdout.contains("[default: 500]") && run.stdout.contains("SOTTO_SILENCE_MS"));
}

#[test]
fn a_latency_bound_below_the_silence() {
    fails(
        &["--max-latency-ms", "400", "--silence-ms", "500"],
        "--max-latency-ms (400) must be above --silence-ms (500)",
    );
}

/// A WAV whose header claims `rate` Hz and `channels` channels, with a little audio.
fn odd_wav(name: &str, rate: u32, channels: u16) -> (tempfile::TempDir, String) {
    let dir = scratch();
    let path = dir.path().join(name);
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for _ in 0..channels as usize * 1_000 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn a_wav_at_an_absurd_sample_rate() {
    // 1 Hz would play for hours; 1 GHz would size a 16 GiB ring.
    for rate in [1, 7_999, 384_001, 1_000_000_000] {
        let (_dir, path) = odd_wav("odd-rate.wav", rate, 1);
        fails(
            &["--input-file", &path],
            &format!("its sample rate is {rate} Hz, outside 8000–384000 Hz"),
        );
    }
}

#[test]
fn a_wav_with_absurd_channels() {
    let (_dir, path) = odd_wav("many.wav", 16_000, 200);
    fails(
        &["--input-file", &path],
        "it has 200 channels, more than 32",
    );
}

#[test]
fn wavs_at_the_edges_of_the_accepted_range_play() {
    for (rate, channels) in [(8_000, 1), (384_000, 2), (16_000, 32)] {
        let (_dir, path) = odd_wav("edge.wav", rate, channels);
        let run = run_sottod(
            &["--input-file", &path, "--no-pace"],
            Duration::from_secs(60),
        );
        assert!(
            run.status.success(),
            "{rate} Hz, {channels} channels: {}",
            run.stderr
        );
    }
}

#[test]
fn threads_that_are_neither_auto_nor_a_count() {
    for bad in ["0", "many", "65"] {
        fails(
            &["--threads", bad],
            "--threads must be auto or a number from 1 to 64",
        );
    }
}

#[test]
fn adaptive_silences_out_of_order() {
    fails(
        &["--min-silence-ms", "600"],
        "--min-silence-ms (600), --silence-ms (500) and --max-silence-ms (900) must be in that order",
    );
    fails(
        &["--max-silence-ms", "300"],
        "--min-silence-ms (300), --silence-ms (500) and --max-silence-ms (300) must be in that order",
    );
    fails(
        &["--min-silence-ms", "0"],
        "--min-silence-ms must be greater than 0",
    );
    fails(
        &["--max-latency-ms", "800", "--max-silence-ms", "900"],
        "--max-latency-ms (800) must be above --max-silence-ms (900)",
    );
    fails(
        &["--end-of-speech", "soon"],
        "invalid value 'soon' for '--end-of-speech",
    );
}

#[test]
fn wake_flags_that_cannot_work() {
    fails(&["--wake-phrase", ""], "--wake-phrase \"\" has no words");
    fails(&["--wake-phrase", " ,! "], "has no words");
    fails(
        &["--wake-phrase", "hey computer", "--follow-up-ms", "0"],
        "--follow-up-ms must be greater than 0 ms",
    );
    fails(&["--mode", "wake"], "--mode wake needs --wake-phrase");
    fails(
        &["--mode", "always", "--wake-phrase", "hey computer"],
        "--wake-phrase needs --mode wake",
    );
    fails(
        &["--mode", "push-to-talk", "--wake-phrase", "hey computer"],
        "but --mode is push-to-talk",
    );
    fails(
        &["--mode", "sometimes"],
        "possible values: always, wake, push-to-talk",
    );
    fails(
        &["--bus", "none", "--mode", "push-to-talk"],
        "--mode push-to-talk needs a bus",
    );
    fails(
        &["--bus", "nowhere"],
        "possible values: session, system, none",
    );
}

#[test]
fn prompts_that_cannot_work() {
    fails(&["--prompt", " \n "], "--prompt has no words");
    fails(
        &["--prompt-file", "/nonexistent/words.txt"],
        "--prompt-file /nonexistent/words.txt: cannot read it",
    );
    let dir = scratch();
    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"Jos\xe9 Mu\xf1oz\n").unwrap();
    fails(
        &["--prompt-file", latin1.to_str().unwrap()],
        "is not UTF-8 text; save it as UTF-8",
    );
    let long = "Zorblat ".repeat(100);
    fails(&["--prompt", &long], "is 799 characters, more than 600");
    fails(
        &[
            "--prompt",
            "Zorblat",
            "--prompt-file",
            latin1.to_str().unwrap(),
        ],
        "cannot be used with",
    );
}
