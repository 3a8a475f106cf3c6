//! A live (virtual) microphone: a null sink on PulseAudio or on PipeWire,
//! speech played into it in real time, captured through cpal's PipeWire,
//! PulseAudio and ALSA hosts.

use std::time::Duration;

use sotto_testkit::*;

fn live_session(server: Server, device: Option<&str>) {
    model_path();
    let mic = VirtualMic::start_on(server);
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
    cmd.arg("--json");
    if let Some(d) = device {
        cmd.args(["--device", d]);
    }
    let mut daemon = LiveDaemon::spawn(cmd);
    let opened = daemon.wait_log("capturing from", Duration::from_secs(30));
    let expected_device = device.unwrap_or(server.default_device());
    assert!(
        opened.contains(&format!("capturing from {expected_device} ")),
        "{server:?}: {opened}"
    );
    let device = expected_device;
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
        eprintln!("{device} {text:?}: start {ds:+} ms, end {de:+} ms");
        // The reference is when paplay started: its own output latency
        // (through pipewire-pulse, one or two of PipeWire's quanta) shifts
        // both ends alike, so the length is held tighter than the position.
        let slack = match server {
            Server::PulseAudio => 100,
            Server::PipeWire => 150,
        };
        assert!(ds.abs() <= slack, "{device} {text:?}: start off by {ds} ms");
        assert!(de.abs() <= slack, "{device} {text:?}: end off by {de} ms");
        assert!(
            (de - ds).abs() <= 60,
            "{device} {text:?}: length off by {} ms",
            de - ds
        );
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
    live_session(Server::PulseAudio, Some("pulseaudio:vmic.monitor"));
}

#[test]
fn live_microphone_through_the_alsa_host() {
    live_session(Server::PulseAudio, Some("alsa:default"));
}

#[test]
fn live_microphone_through_the_pipewire_host() {
    live_session(Server::PipeWire, Some("pipewire:vmic"));
}

#[test]
/// With PipeWire running, the default is its default input, natively.
fn the_default_microphone_on_pipewire_is_captured_natively() {
    live_session(Server::PipeWire, None);
}

#[test]
/// On PipeWire, --host pulseaudio lists pipewire-pulse's sources and nothing else.
fn host_pulseaudio_on_pipewire_lists_only_pipewire_pulse_sources() {
    let mic = VirtualMic::start_on(Server::PipeWire);
    let out = mic
        .sottod()
        .args(["--list-devices", "--host", "pulseaudio"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("pulseaudio:vmic.monitor"), "{text}");
    assert!(
        !text.contains("pipewire:") && !text.contains("alsa:"),
        "--host limits the list to one host: {text}"
    );
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
