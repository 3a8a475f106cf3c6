//! A live (virtual) microphone: PulseAudio null sink, speech played into it in
//! real time, captured through cpal's PulseAudio host and its ALSA host.

use std::time::Duration;

use sotto_testkit::*;

fn live_session(device: &str) {
    model_path();
    let mic = VirtualMic::start();
    let dir = scratch();
    let wav = dir.path().join("session.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.5);
    for text in [
        "switch off the radio",
        "set a timer for ten minutes",
        "what time is it",
    ] {
        s.say(text).silence(1.5);
    }
    s.write(&wav);

    let mut cmd = mic.sottod();
    cmd.args(["--device", device, "--json"]);
    let mut daemon = LiveDaemon::spawn(cmd);
    daemon.wait_log("capturing from", Duration::from_secs(30));
    let (play_ms, mut paplay) = mic.play(&wav);
    assert!(paplay.wait().unwrap().success(), "paplay failed");
    std::thread::sleep(Duration::from_millis(2500));
    let (run, _) = daemon.stop(15, Duration::from_secs(10));
    assert!(
        run.status.success(),
        "sottod exit {:?}: {}",
        run.status,
        run.stderr
    );
    let utts = utterances(&run.events());
    assert_eq!(
        utts.len(),
        s.truth.len(),
        "one utterance per sentence on {device}: {}",
        run.stdout
    );
    for ((_, start, end), (text, t_start, t_end)) in utts.iter().zip(&s.truth) {
        let ds = *start as i64 - (play_ms + t_start) as i64;
        let de = *end as i64 - (play_ms + t_end) as i64;
        assert!(ds.abs() <= 100, "{device} {text:?}: start off by {ds} ms");
        assert!(de.abs() <= 100, "{device} {text:?}: end off by {de} ms");
    }
    let texts: Vec<String> = transcripts(&run.events())
        .iter()
        .map(|t| normalize(t))
        .collect();
    let expected: Vec<String> = s.truth.iter().map(|t| normalize(&t.0)).collect();
    // Live capture goes through PulseAudio's resampler; at most one word in
    // five may differ (the same speech from a file decodes exactly).
    let (errors, words) = word_errors(&expected.join(" "), &texts.join(" "));
    assert!(
        errors * 5 <= words,
        "{device}: transcripts {texts:?} vs {expected:?}"
    );
}

#[test]
fn live_microphone_through_the_pulseaudio_host() {
    live_session("pulseaudio:vmic.monitor");
}

#[test]
fn live_microphone_through_the_alsa_host() {
    live_session("alsa:default");
}

#[test]
/// Also newcomer L9: a header, the default marked, and the devices that
/// cannot open here (ALSA plugins without their backend) kept out of the
/// table.
fn list_devices_shows_the_virtual_microphone_with_its_format() {
    let mic = VirtualMic::start();
    let out = mic.sottod().arg("--list-devices").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("  NAME\tDEFAULT FORMAT\tDESCRIPTION"),
        "{text}"
    );
    let rows: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("* ") || l.starts_with("  "))
        .collect();
    let name = |l: &str| l[2..].split('\t').next().unwrap().to_owned();
    let line = rows
        .iter()
        .find(|l| name(l) == "pulseaudio:vmic.monitor")
        .unwrap_or_else(|| panic!("no vmic.monitor in {text}"));
    assert!(line.contains("48000 Hz, 1 ch"), "{line}");
    assert!(rows.iter().any(|l| name(l) == "alsa:default"), "{text}");
    let defaults: Vec<&&str> = rows.iter().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(defaults.len(), 1, "one default, marked: {text}");
    assert!(
        text.contains("(* the default input, used without --device)"),
        "{text}"
    );
    assert!(
        rows.iter().all(|l| !l.contains("no default config")),
        "devices that cannot open are not in the table: {text}"
    );
}
