//! `--input-file`: boundaries, paced and unpaced, formats, non-speech, long speech.

use std::time::Duration;

use sotto_testkit::*;

const SENTENCES: [&str; 3] = [
    "turn on the kitchen lights",
    "what is the weather like tomorrow",
    "set a timer for ten minutes",
];

fn session() -> Session {
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(1.0);
    for text in SENTENCES {
        s.say(text).silence(1.5);
    }
    s
}

/// Each utterance's boundaries lie within ±100 ms of the voice in the file.
fn assert_boundaries(run: &Run, truth: &[(String, u64, u64)], tolerance_ms: i64) {
    assert!(run.status.success(), "sottod failed: {}", run.stderr);
    let origin = run.file_origin_ms() as i64;
    let utts = utterances(&run.events());
    assert_eq!(
        utts.len(),
        truth.len(),
        "one utterance per sentence: {utts:?} vs {truth:?}\n{}",
        run.stdout
    );
    for ((_, start, end), (text, t_start, t_end)) in utts.iter().zip(truth) {
        let (ds, de) = (
            *start as i64 - origin - *t_start as i64,
            *end as i64 - origin - *t_end as i64,
        );
        eprintln!("{text:?}: start {ds:+} ms, end {de:+} ms");
        assert!(ds.abs() <= tolerance_ms, "{text:?}: start off by {ds} ms");
        assert!(de.abs() <= tolerance_ms, "{text:?}: end off by {de} ms");
    }
}

#[test]
fn paced_and_unpaced_give_the_same_utterances_at_the_right_times() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("session.wav");
    let s = session();
    s.write(&wav);
    let unpaced = run_sottod(
        &["--input-file", wav.to_str().unwrap(), "--no-pace", "--json"],
        Duration::from_secs(60),
    );
    assert_boundaries(&unpaced, &s.truth, 100);
    let started = std::time::Instant::now();
    let paced = run_sottod(
        &["--input-file", wav.to_str().unwrap(), "--json"],
        Duration::from_secs(60),
    );
    let wall = started.elapsed();
    assert_boundaries(&paced, &s.truth, 100);
    // Paced means real time, on the wall clock: the run lasts at least as long
    // as the audio (the capture stamps cannot show it: they count frames).
    let audio = Duration::from_millis(s.audio.samples.len() as u64 * 1000 / u64::from(ESPEAK_RATE));
    assert!(
        wall >= audio,
        "a paced run of {audio:?} of audio took {wall:?}"
    );
    assert_eq!(transcripts(&paced.events()), transcripts(&unpaced.events()));
}

#[test]
fn other_rates_channels_and_sample_formats_work() {
    model_path();
    let dir = scratch();
    let base = dir.path().join("session.wav");
    let s = session();
    s.write(&base);
    for (name, args) in [
        (
            "stereo-44k-24bit.wav",
            &["-r", "44100", "-c", "2", "-b", "24"][..],
        ),
        ("mono-8k.wav", &["-r", "8000", "-c", "1", "-b", "16"][..]),
        (
            "mono-48k-float.wav",
            &["-r", "48000", "-c", "1", "-e", "floating-point", "-b", "32"][..],
        ),
        (
            "mono-16k-8bit.wav",
            &["-r", "16000", "-c", "1", "-b", "8"][..],
        ),
    ] {
        let path = dir.path().join(name);
        // No dither (-D): sox's is random, and the same input must give the
        // same boundaries on every run.
        let args: Vec<&str> = args.iter().copied().chain(["-D"]).collect();
        sox(&base, &path, &args);
        let run = run_sottod(
            &[
                "--input-file",
                path.to_str().unwrap(),
                "--no-pace",
                "--json",
            ],
            Duration::from_secs(60),
        );
        assert!(run.status.success(), "{name}: {}", run.stderr);
        let utts = utterances(&run.events());
        assert_eq!(utts.len(), SENTENCES.len(), "{name}: {}", run.stdout);
        eprintln!("{name}");
        // 8 kHz audio has no energy above 4 kHz: the VAD sees fricative endings
        // ("minutes") differently, and the end moves by up to ~120 ms.
        let tolerance = if name.contains("8k") { 150 } else { 100 };
        assert_boundaries(&run, &s.truth, tolerance);
    }
}

#[test]
fn silence_hum_and_white_noise_give_no_utterance() {
    model_path();
    let data = testdata();
    for clip in [
        "syn_silence_digital_10s.wav",
        "syn_silence_dither_10s.wav",
        "syn_hum_50hz_15s.wav",
        "syn_hum_60hz_15s.wav",
        "syn_white_noise_10s.wav",
    ] {
        let path = data.join("nonspeech").join(clip);
        let run = run_sottod(
            &[
                "--input-file",
                path.to_str().unwrap(),
                "--no-pace",
                "--json",
            ],
            Duration::from_secs(60),
        );
        assert!(run.status.success(), "{clip}: {}", run.stderr);
        assert!(
            run.events().is_empty(),
            "{clip} gave events: {}",
            run.stdout
        );
    }
}

#[test]
fn a_long_monologue_is_cut_at_max_utterance() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("monologue.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.5);
    let paragraph = "the quick brown fox jumps over the lazy dog while the band plays on and the \
                     crowd keeps cheering for the runners who pass the old stone bridge";
    while s.audio.samples.len() < 40 * ESPEAK_RATE as usize {
        s.say(paragraph);
    }
    s.silence(1.0);
    s.write(&wav);
    let run = run_sottod(
        &[
            "--input-file",
            wav.to_str().unwrap(),
            "--no-pace",
            "--json",
            "--silence-ms",
            "2000",
            "--max-utterance-ms",
            "10000",
        ],
        Duration::from_secs(120),
    );
    assert!(run.status.success(), "{}", run.stderr);
    let utts = utterances(&run.events());
    assert!(
        utts.len() >= 4,
        "40 s cut at 10 s gives at least 4 utterances: {utts:?}"
    );
    for (id, start, end) in &utts[..utts.len() - 1] {
        assert_eq!(
            end - start,
            10_000,
            "utterance {id} is cut at exactly --max-utterance-ms"
        );
    }
    for pair in utts.windows(2) {
        assert!(
            pair[1].1 >= pair[0].2,
            "the next utterance starts after the cut: {pair:?}"
        );
        assert!(pair[1].1 - pair[0].2 <= 100, "and at once: {pair:?}");
    }
}

#[test]
fn end_of_file_closes_an_open_utterance_and_exits_zero() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("cut.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.5).say("open the garage door please");
    // Cut the file in the middle of the speech: no closing silence at all.
    let keep = s.audio.samples.len() - ESPEAK_RATE as usize / 4;
    s.audio.samples.truncate(keep);
    s.write(&wav);
    let run = run_sottod(
        &["--input-file", wav.to_str().unwrap(), "--no-pace", "--json"],
        Duration::from_secs(60),
    );
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(utterances(&run.events()).len(), 1, "{}", run.stdout);
}

#[test]
fn transcripts_are_decoded_during_the_silence_and_a_pause_does_not_split_the_words() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("pause.wav");
    let mut s = Session::new(ESPEAK_RATE);
    // A pause of 300 ms inside the second utterance: long enough for a
    // speculative decode to start on its first half, shorter than the silence.
    s.silence(1.0)
        .say("turn on the kitchen lights")
        .silence(1.5)
        .say("set a timer")
        .say_after(0.3, "for ten minutes")
        .silence(1.5);
    s.write(&wav);
    // The fixed rule, so the silence part is --silence-ms: adaptive (the
    // default) may close a finished sentence as soon as its speculative
    // decode says so, at any point past --min-silence-ms (endpoint.rs tests
    // that).
    let run = run_sottod(
        &[
            "--input-file",
            wav.to_str().unwrap(),
            "--json",
            "--end-of-speech",
            "fixed",
        ],
        Duration::from_secs(60),
    );
    assert!(run.status.success(), "{}", run.stderr);
    let events = run.events();
    assert_eq!(utterances(&events).len(), 2, "{}", run.stdout);
    let finals: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "transcript")
        .collect();
    assert_eq!(finals.len(), 2, "{}", run.stdout);
    for t in &finals {
        assert_eq!(
            t["timing"]["speculative"], true,
            "paced speech with a long gap is decoded during the silence: {t}"
        );
        // The parts are plausible (that they add up is Timing's unit test):
        // the silence is about the default 500 ms counted from the end of
        // speech (paced blocks, the dsp thread's poll and the resampler's
        // delay add tens of ms); a decode that started during the silence
        // leaves less than all of it, and little, to run after the close.
        let part = |k: &str| t["timing"][k].as_u64().unwrap();
        let silence = part("silence_ms");
        assert!(
            (450..=700).contains(&silence),
            "the silence part is --silence-ms: {t}"
        );
        let whole_decode = t["decode_ms"].as_u64().unwrap();
        assert!(whole_decode > 0, "the decode itself took time: {t}");
        assert!(
            part("decode_ms") < whole_decode,
            "part of the decode ran during the silence: {t}"
        );
        assert!(
            part("queue_ms") + part("decode_ms") + part("publish_ms") < silence,
            "what follows the silence is small beside it: {t}"
        );
    }
    let second = normalize(finals[1]["text"].as_str().unwrap());
    assert!(
        second.contains("timer") && second.contains("minutes"),
        "the decode of the first half was discarded when speech resumed: {second:?}"
    );
}
