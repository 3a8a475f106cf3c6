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

/// The shared clean speech clips (`speech*` in the manifest), each after 1 s
/// of silence, as one 16 kHz file, with the last clip followed by 1 s more;
/// and their normalised references, joined.
fn speech_set(dir: &std::path::Path) -> (std::path::PathBuf, String, usize) {
    let mut audio = Audio {
        rate: 16_000,
        samples: Vec::new(),
    };
    let mut references = Vec::new();
    let clip_wav = dir.join("clip.wav");
    for clip in manifest()
        .into_iter()
        .filter(|c| c.category.starts_with("speech"))
    {
        sox(
            &testdata().join(&clip.file),
            &clip_wav,
            &["-r", "16000", "-c", "1", "-b", "16"],
        );
        audio.samples.extend(std::iter::repeat_n(0.0, 16_000));
        audio.samples.extend(read_wav(&clip_wav).samples);
        references.push(normalize(&clip.transcript));
    }
    audio.samples.extend(std::iter::repeat_n(0.0, 16_000));
    let wav = dir.join("speech_set.wav");
    write_wav(&wav, &audio);
    let n = references.len();
    (wav, references.join(" "), n)
}

/// The corpus word error rate (%) of a run's transcripts against `reference`.
fn wer_of(run: &Run, reference: &str) -> f64 {
    let hypothesis = normalize(&transcripts(&run.events()).join(" "));
    let (errors, words) = word_errors(reference, &hypothesis);
    100.0 * errors as f64 / words as f64
}

/// The same speech read from files and heard through the virtual microphone
/// on PulseAudio and on PipeWire (each on its own host, the device at 48 kHz)
/// must transcribe alike: the live WER at most half a point above the file's.
///
/// Played at 48 kHz, as a microphone delivers it: a 16 kHz file played into a
/// 48 kHz sink goes through the server's own resampler as well, which no
/// microphone does (measured: PipeWire 4.40 % live against 2.52 % from the
/// file with 16 kHz playing, 3.46 % with 48 kHz).
///
/// "The file" is the 48 kHz file read at six offsets spread evenly over one
/// 16 ms VAD frame (0, 128, … 640 samples): where the frames fall decides
/// each utterance's first and last sample, and Whisper changes a word or two
/// with that alone, which is all a live stream is: the same file at an
/// offset nobody chose, anywhere in a frame. Measured over twelve offsets
/// 64 samples apart: 2.52–4.09 %, before a trailing repeated phrase ("about
/// 1455, about 1455,") was cut. The live WER is held to the worst offset +
/// 0.5; three offsets (an earlier version) missed the worst, and a live run
/// that met it failed.
///
/// Both with the fixed end of speech: the adaptive rule closes where the
/// decoder's verdicts, which come in real time, say so, and a file read at
/// full speed gets none; the fixed rule cuts both the same way.
#[test]
fn live_on_both_servers_is_as_accurate_as_the_file() {
    model_path();
    let dir = scratch();
    let (wav16, reference, clips) = speech_set(dir.path());
    let wav = dir.path().join("speech_set_48k.wav");
    sox(&wav16, &wav, &["-r", "48000"]);
    let fixed = ["--end-of-speech", "fixed"];
    let mut file_wers = Vec::new();
    // One VAD frame at 48 kHz, in six steps.
    let frame = sotto::dsp::vad::FRAME_SAMPLES * 3;
    for offset in (0..frame).step_by(frame / 6) {
        let shifted = dir.path().join(format!("shifted_{offset}.wav"));
        let mut audio = read_wav(&wav);
        audio.samples.splice(0..0, std::iter::repeat_n(0.0, offset));
        write_wav(&shifted, &audio);
        let run = play_file(
            &shifted,
            &["--no-pace", fixed[0], fixed[1]],
            Duration::from_secs(600),
        );
        file_wers.push(wer_of(&run, &reference));
    }
    let worst_file = file_wers.iter().copied().fold(0.0, f64::max);
    // Both servers at once, each with its own sottod: the playing is real
    // time (about 2.5 minutes), and a decode is a fraction of a second.
    let servers = [Server::PulseAudio, Server::PipeWire];
    let mics = servers.map(VirtualMic::start_on);
    let daemons = mics.each_ref().map(|mic| {
        let mut cmd = mic.sottod();
        cmd.args(["--json", "--device", mic.server.device()])
            .args(fixed);
        let mut daemon = LiveDaemon::spawn(cmd);
        daemon.wait_log("capturing from", Duration::from_secs(30));
        daemon
    });
    let players = mics.each_ref().map(|mic| mic.play(&wav).1);
    for mut paplay in players {
        assert!(paplay.wait().unwrap().success(), "paplay failed");
    }
    std::thread::sleep(Duration::from_millis(2500));
    for (server, daemon) in servers.into_iter().zip(daemons) {
        let (live, _) = daemon.stop(15, Duration::from_secs(10));
        assert!(live.status.success(), "sottod: {}", live.stderr);
        let live_wer = wer_of(&live, &reference);
        eprintln!(
            "{server:?} ({}): WER over {clips} clips: file {file_wers:.2?} %, live {live_wer:.2} %",
            server.device()
        );
        assert!(
            live_wer <= worst_file + 0.5,
            "{server:?}: live WER {live_wer:.2} % is more than 0.5 points above the file's {file_wers:.2?} %; live: {:?}",
            transcripts(&live.events())
        );
    }
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
