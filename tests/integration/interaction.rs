//! Ways a program talks to sottod: one-shot `Listen` (through `sotto once`,
//! gdbus and busctl) and the wake phrase, on a real bus with the real model.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use sotto_testkit::*;

fn sotto(bus: &PrivateBus) -> Command {
    let mut c = bus.client(bin("sotto"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// `gdbus call … Listen timeout_ms` on `bus` (gdbus waits up to 60 s).
fn gdbus_listen(bus: &PrivateBus, timeout_ms: u32) -> Command {
    let mut c = bus.client("gdbus");
    c.args([
        "call",
        "--session",
        "--timeout",
        "60",
        "--dest",
        "org.sotto.Sotto1",
        "--object-path",
        "/org/sotto/Sotto1",
        "--method",
        "org.sotto.Sotto1.Listen",
    ])
    .arg(timeout_ms.to_string())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// A paced daemon on `bus` reading `wav`, once it owns its name.
fn paced_daemon(bus: &PrivateBus, wav: &std::path::Path, extra: &[&str]) -> LiveDaemon {
    let mut cmd = sottod(bus);
    cmd.args(["--input-file", wav.to_str().unwrap(), "--json"])
        .args(extra);
    let daemon = LiveDaemon::spawn(cmd);
    bus.wait_for_name();
    daemon
}

#[test]
fn listen_returns_the_next_utterance_to_every_caller_and_blocks_nothing() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = dir.path().join("later.wav");
    // Speech that starts 4 s in: the callers are waiting before it starts.
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(4.0)
        .say("turn on the kitchen lights")
        .silence(2.0);
    s.write(&wav);
    let mut daemon = paced_daemon(&bus, &wav, &[]);
    let once = sotto(&bus)
        .args(["once", "--timeout-ms", "20000"])
        .spawn()
        .unwrap();
    let gdbus = gdbus_listen(&bus, 20_000).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    // While both wait: methods and properties are served at once.
    let stats = bus.busctl(&sotto_member("call", "GetStats"));
    assert!(stats.contains("utterances"), "{stats}");
    assert_eq!(bus.property("Mode"), "s \"always\"");
    assert_eq!(bus.state(), "listening");
    let once = wait_output(once, Duration::from_secs(30));
    assert!(once.status.success(), "sotto once: {}", once.stderr);
    let gdbus = wait_output(gdbus, Duration::from_secs(30));
    assert!(gdbus.status.success(), "gdbus: {}", gdbus.stderr);
    let said = normalise(&once.stdout);
    assert_eq!(said, "turn on the kitchen lights", "{}", once.stdout);
    // gdbus prints "(uint64 1, 'Turn on the kitchen lights.')".
    assert!(gdbus.stdout.starts_with("(uint64 1, '"), "{}", gdbus.stdout);
    assert_eq!(normalise(&gdbus.stdout.replace("uint64 1", "")), said);
    // The transcript went to everyone else too.
    let t = daemon.wait_event(|e| e["event"] == "transcript", Duration::from_secs(10));
    assert_eq!(normalise(t["text"].as_str().unwrap()), said);
    let run = daemon.wait_exit(Duration::from_secs(30));
    assert!(run.status.success(), "{}", run.stderr);
}

#[test]
fn in_wake_mode_a_listen_needs_no_phrase_once() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = dir.path().join("asked.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(4.0)
        .say("turn on the kitchen lights")
        .silence(2.0);
    s.say("what time is it").silence(2.0);
    s.write(&wav);
    let daemon = paced_daemon(&bus, &wav, &["--wake-phrase", WAKE_PHRASE]);
    assert_eq!(bus.property("Mode"), "s \"wake\"");
    let once = sotto(&bus)
        .args(["once", "--timeout-ms", "20000"])
        .output()
        .unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert_eq!(
        normalise(&String::from_utf8_lossy(&once.stdout)),
        "turn on the kitchen lights"
    );
    let run = daemon.wait_exit(Duration::from_secs(30));
    assert!(run.status.success(), "{}", run.stderr);
    let events = run.events();
    assert_eq!(utterances(&events).len(), 2, "{events:?}");
    assert_eq!(transcripts(&events).len(), 1, "the asked one: {events:?}");
    assert!(
        ending_of(&events, 2).is_some_and(|e| e["reason"] == "not-addressed"),
        "the next one needs the phrase again: {events:?}"
    );
}

#[test]
fn listen_times_out_cleanly_in_silence_and_refuses_zero() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = dir.path().join("silence.wav");
    Session::new(16_000).silence(12.0).write(&wav);
    let daemon = paced_daemon(&bus, &wav, &[]);
    let once = sotto(&bus)
        .args(["once", "--timeout-ms", "1500"])
        .output()
        .unwrap();
    assert!(!once.status.success());
    let err = String::from_utf8_lossy(&once.stderr);
    assert_eq!(
        err.trim(),
        "sotto: error: no speech started within 1500 ms",
        "one line"
    );
    let gdbus = wait_output(
        gdbus_listen(&bus, 1_000).spawn().unwrap(),
        Duration::from_secs(10),
    );
    assert!(!gdbus.status.success());
    assert!(
        gdbus.stderr.contains("org.sotto.Sotto1.Error.Timeout"),
        "{}",
        gdbus.stderr
    );
    let zero = wait_output(
        gdbus_listen(&bus, 0).spawn().unwrap(),
        Duration::from_secs(10),
    );
    assert!(!zero.status.success());
    assert!(
        zero.stderr
            .contains("org.freedesktop.DBus.Error.InvalidArgs")
            && zero.stderr.contains("timeout_ms must be greater than 0"),
        "{}",
        zero.stderr
    );
    // Push-to-talk's methods name the mode they need.
    let wrong = bus.try_call("StartUtterance").unwrap_err();
    assert!(
        wrong.contains("StartUtterance works in push-to-talk mode, and sottod runs in always mode"),
        "{wrong}"
    );
    // Nothing was lost: the daemon still serves.
    assert_eq!(bus.state(), "listening");
    let (run, _) = daemon.stop(libc::SIGTERM, Duration::from_secs(10));
    assert!(run.status.success(), "{}", run.stderr);
}

/// Lower-case words without punctuation.
fn normalise(text: &str) -> String {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn wake_publishes_exactly_the_addressed_and_the_rest_goes_nowhere() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("wake.wav");
    let (s, addressed) = wake_session();
    s.write(&wav);
    let file = wav.to_str().unwrap();

    // What the model makes of each sentence when everything is published.
    let always = run_sottod(
        &["--input-file", file, "--no-pace", "--json"],
        Duration::from_secs(240),
    );
    assert!(always.status.success(), "{}", always.stderr);
    let always_events = always.events();
    let heard = per_sentence(&s, &always_events, always.file_origin_ms());

    // The same in wake mode, at -v, watched on the bus by dbus-monitor.
    let bus = PrivateBus::start();
    let monitor = bus
        .client("dbus-monitor")
        .args(["--session"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let wake = sottod(&bus)
        .args(["--input-file", file, "--no-pace", "--json", "-v"])
        .args(["--wake-phrase", WAKE_PHRASE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wake = wait_output(wake, Duration::from_secs(240));
    assert!(wake.status.success(), "{}", wake.stderr);
    std::thread::sleep(Duration::from_millis(300));
    signal(&monitor, libc::SIGTERM);
    let monitored = wait_output(monitor, Duration::from_secs(10)).stdout;
    let events = wake.events();
    let outcome = per_sentence(&s, &events, wake.file_origin_ms());

    let (mut hits, mut misses, mut false_alarms, mut rejections) = (0, 0, 0, 0);
    let published = |evs: &[&Value]| {
        evs.iter()
            .find(|e| e["event"] == "transcript")
            .and_then(|e| e["text"].as_str())
            .map(str::to_string)
    };
    let n_chatter = addressed.iter().filter(|a| !**a).count();
    for (i, (((text, _, _), is_addressed), evs)) in
        s.truth.iter().zip(&addressed).zip(&outcome).enumerate()
    {
        let woken = evs.iter().any(|e| e["event"] == "woken");
        let out = published(evs);
        if *is_addressed {
            if out.is_some() {
                hits += 1;
            } else {
                misses += 1;
                eprintln!(
                    "missed {text:?}: {evs:?}; always mode heard {:?}",
                    published(&heard[i])
                );
            }
            if text.starts_with(WAKE_PHRASE) {
                assert!(
                    woken || out.is_none(),
                    "{text:?} published without Woken: {evs:?}"
                );
            }
        } else if out.is_some() {
            false_alarms += 1;
            eprintln!("published unaddressed {text:?}: {evs:?}");
        } else {
            rejections += 1;
            assert!(
                evs.iter()
                    .any(|e| e["event"] == "dropped" && e["reason"] == "not-addressed"),
                "{text:?}: {evs:?}"
            );
            // Its words, as the model heard them, went nowhere.
            let (_, word) = WAKE_CHATTER.iter().find(|(c, _)| c == text).unwrap();
            let as_heard = published(&heard[i]).unwrap_or_default();
            for place in [&wake.stdout, &wake.stderr, &monitored] {
                let words = normalise(&place.replace(|c: char| !c.is_alphanumeric(), " "));
                assert!(!words.split(' ').any(|w| w == *word), "{word:?} leaked");
                if as_heard.len() > 4 {
                    assert!(!place.contains(&as_heard), "{as_heard:?} leaked");
                }
            }
        }
    }
    let n_addressed = hits + misses;
    eprintln!(
        "wake phrase {WAKE_PHRASE:?}: hit rate {hits}/{n_addressed}, false rate {false_alarms}/{n_chatter} ({} voices)",
        WAKE_VOICES.len()
    );
    assert_eq!(rejections + false_alarms, n_chatter);
    // Addressed commands come out without the phrase.
    for (((text, _, _), is_addressed), evs) in s.truth.iter().zip(&addressed).zip(&outcome) {
        if let (true, Some(out)) = (
            text.starts_with(WAKE_PHRASE) && *is_addressed,
            published(evs),
        ) {
            assert!(
                !normalise(&out).contains("computer"),
                "phrase not stripped from {out:?}"
            );
        }
    }
    // The phrase alone gives an empty transcript after Woken, and the command
    // after it is published whole.
    let alone = &outcome[outcome.len() - 2];
    assert!(alone.iter().any(|e| e["event"] == "woken"), "{alone:?}");
    assert_eq!(published(alone).as_deref(), Some(""), "{alone:?}");
    let follow = published(&outcome[outcome.len() - 1]).unwrap_or_default();
    assert!(normalise(&follow).contains("radio"), "{follow:?}");
    assert!(
        hits * 10 >= n_addressed * 9,
        "hit rate {hits}/{n_addressed}"
    );
    assert!(false_alarms <= 1, "false rate {false_alarms}/{n_chatter}");
}

/// `sotto hold` with Enter pressed `after` it started.
fn hold_for(bus: &PrivateBus, after: Duration) -> Run {
    use std::io::Write;
    let mut hold = sotto(bus)
        .arg("hold")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = hold.stdin.take().unwrap();
    std::thread::sleep(after);
    stdin.write_all(b"\n").unwrap();
    drop(stdin);
    wait_output(hold, Duration::from_secs(40))
}

#[test]
fn push_to_talk_on_a_file_is_one_utterance_from_start_to_end() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = dir.path().join("held.wav");
    // Two sentences with a pause longer than --max-silence-ms between them.
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.3)
        .say("turn on the kitchen lights")
        .silence(1.0);
    s.say("and play some music").silence(1.0);
    // Room for a second press before the file ends (its end stops sottod).
    s.silence(10.0);
    s.write(&wav);
    let mut daemon = paced_daemon(&bus, &wav, &["--mode", "push-to-talk"]);
    bus.wait_for_state("paused", Duration::from_secs(10));
    assert_eq!(bus.property("Mode"), "s \"push-to-talk\"");
    for (method, needle) in [
        ("EndUtterance", "org.sotto.Sotto1.Error.NotStarted"),
        ("Resume", "org.sotto.Sotto1.Error.WrongMode"),
        ("Pause", "org.sotto.Sotto1.Error.WrongMode"),
    ] {
        let err = gdbus_call(&bus, method).unwrap_err();
        assert!(err.contains(needle), "{method}: {err}");
    }
    // Nothing was captured while closed.
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon
        .try_event(
            |e| e["event"] == "speech_started",
            Duration::from_millis(100)
        )
        .is_none());
    let held = hold_for(&bus, Duration::from_millis(6_500));
    assert!(held.status.success(), "sotto hold: {}", held.stderr);
    let ended = daemon.wait_event(|e| e["event"] == "transcript", Duration::from_secs(5));
    assert_eq!(ended["timing"]["end_rule"], "released", "{ended}");
    // Its latency counts from the release, so a long hold is not late.
    // (The speech ended about 2.5 s before the release.)
    assert!(
        ended["timing"]["silence_ms"].as_u64().unwrap() < 1_500,
        "{ended}"
    );
    let said = normalise(&held.stdout);
    for word in ["kitchen", "lights", "music"] {
        assert!(said.contains(word), "{word} in {said:?}");
    }
    bus.wait_for_state("paused", Duration::from_secs(5));
    // A second press of the key while held is harmless (key repeat).
    bus.call("StartUtterance");
    bus.call("StartUtterance");
    std::thread::sleep(Duration::from_millis(400));
    bus.call("EndUtterance");
    let (run, _) = daemon.stop(libc::SIGTERM, Duration::from_secs(10));
    assert!(run.status.success(), "{}", run.stderr);
    let events = run.events();
    let utts = utterances(&events);
    assert_eq!(
        utts.len(),
        2,
        "the held one, then the empty second press: {events:?}"
    );
    assert_eq!(transcripts(&events)[0], held.stdout.trim());
    assert!(
        run.stderr.contains("push-to-talk: the microphone opened"),
        "{}",
        run.stderr
    );
}

/// A method called with gdbus; `Err` holds gdbus's error text.
fn gdbus_call(bus: &PrivateBus, method: &str) -> Result<String, String> {
    let out = bus
        .client("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            "org.sotto.Sotto1",
            "--object-path",
            "/org/sotto/Sotto1",
            "--method",
        ])
        .arg(format!("org.sotto.Sotto1.{method}"))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn push_to_talk_opens_the_microphone_only_while_held_or_listened_for() {
    model_path();
    let mic = VirtualMic::start();
    let dir = scratch();
    let first = dir.path().join("first.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.3).say("switch off the radio").silence(1.0);
    s.say("and the kitchen lights").silence(0.6);
    s.write(&first);
    let second = dir.path().join("second.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.3).say("what time is it").silence(1.5);
    s.write(&second);

    let mut cmd = mic.sottod();
    cmd.args(["--mode", "push-to-talk", "--json"]);
    let mut daemon = LiveDaemon::spawn(cmd);
    mic.bus.wait_for_name();
    mic.bus.wait_for_state("paused", Duration::from_secs(30));
    assert_eq!(mic.recording_streams(), 0, "closed until a start");

    // Held: open from StartUtterance to EndUtterance, one utterance across the pause.
    mic.bus.call("StartUtterance");
    assert_eq!(mic.recording_streams(), 1, "open while held");
    let (_, mut paplay) = mic.play(&first);
    assert!(paplay.wait().unwrap().success());
    mic.bus.call("EndUtterance");
    assert_eq!(mic.recording_streams(), 0, "closed after the end");
    let t = daemon.wait_event(|e| e["event"] == "transcript", Duration::from_secs(15));
    let text = normalise(t["text"].as_str().unwrap());
    assert!(
        text.contains("radio") && text.contains("kitchen"),
        "{text:?}"
    );

    // Listen opens it too, and the VAD ends the utterance.
    let listen = mic
        .bus
        .client(bin("sotto"))
        .args(["once", "--timeout-ms", "20000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let opened = std::time::Instant::now();
    while mic.recording_streams() == 0 {
        assert!(
            opened.elapsed() < Duration::from_secs(10),
            "Listen opens the microphone"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, mut paplay) = mic.play(&second);
    assert!(paplay.wait().unwrap().success());
    let once = wait_output(listen, Duration::from_secs(20));
    assert!(once.status.success(), "{}", once.stderr);
    assert_eq!(normalise(&once.stdout), "what time is it");
    let closed = std::time::Instant::now();
    while mic.recording_streams() != 0 {
        assert!(
            closed.elapsed() < Duration::from_secs(5),
            "closed after the Listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // How fast the microphone opens: five presses.
    for _ in 0..5 {
        mic.bus.call("StartUtterance");
        std::thread::sleep(Duration::from_millis(300));
        mic.bus.call("EndUtterance");
    }
    let (run, _) = daemon.stop(libc::SIGTERM, Duration::from_secs(10));
    assert!(run.status.success(), "{}", run.stderr);
    let open_ms = push_to_talk_open_ms(&run.stderr);
    assert_eq!(open_ms.len(), 6, "{}", run.stderr);
    eprintln!(
        "push-to-talk open (StartUtterance to a playing stream): p50 {} ms, max {} ms",
        open_ms[open_ms.len() / 2],
        open_ms[open_ms.len() - 1]
    );
    utterances(&run.events());
}

/// The Partials of utterance `id` in order, checked against the contract:
/// all before its `speech_ended`, `stable` never decreasing, and every
/// committed prefix kept by every later Partial.
fn checked_partials(events: &[Value], id: u64) -> Vec<(String, u64)> {
    let ended = events
        .iter()
        .position(|e| e["event"] == "speech_ended" && e["id"] == id)
        .expect("the utterance ended");
    let mut out: Vec<(String, u64)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e["event"] != "partial" || e["id"] != id {
            continue;
        }
        assert!(i < ended, "a Partial after SpeechEnded: {e}");
        let text = e["text"].as_str().unwrap().to_string();
        let stable = e["stable"].as_u64().unwrap();
        assert!(stable as usize <= text.chars().count(), "{e}");
        if let Some((before, before_stable)) = out.last() {
            assert!(stable >= *before_stable, "stable went down: {e}");
            let committed: String = before.chars().take(*before_stable as usize).collect();
            assert!(text.starts_with(&committed), "{committed:?} changed: {e}");
        }
        out.push((text, stable));
    }
    out
}

const LONG_SENTENCE: &str =
    "please turn on the kitchen lights and then play some quiet music in the living room for an hour and remind me to water the plants";

#[test]
fn partials_grow_while_speaking_and_leave_the_transcript_as_it_was() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("long.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.5).say(LONG_SENTENCE).silence(1.5);
    s.write(&wav);
    let file = wav.to_str().unwrap();
    let with = run_sottod(
        &["--input-file", file, "--json", "--partials"],
        Duration::from_secs(60),
    );
    assert!(with.status.success(), "{}", with.stderr);
    let without = run_sottod(&["--input-file", file, "--json"], Duration::from_secs(60));
    assert!(without.status.success(), "{}", without.stderr);
    let (events, plain) = (with.events(), without.events());
    assert_eq!(utterances(&events).len(), 1, "{events:?}");
    let partials = checked_partials(&events, 1);
    assert!(partials.len() >= 3, "{partials:?}");
    assert!(
        partials.last().unwrap().1 > 0,
        "words were committed: {partials:?}"
    );
    assert_eq!(
        transcripts(&events),
        transcripts(&plain),
        "the final word is the same"
    );
    // Reported, not asserted: how soon the first Partial came, and the
    // final latency with and without.
    let latency = |evs: &[Value]| {
        evs.iter()
            .find(|e| e["event"] == "transcript")
            .and_then(|e| e["latency_ms"].as_u64())
            .unwrap()
    };
    eprintln!(
        "partials: {} for a {:.1} s sentence; final latency {} ms with, {} ms without",
        partials.len(),
        (s.truth[0].2 - s.truth[0].1) as f64 / 1000.0,
        latency(&events),
        latency(&plain)
    );
}

#[test]
fn partials_come_from_a_live_microphone() {
    model_path();
    let mic = VirtualMic::start();
    let dir = scratch();
    let wav = dir.path().join("long.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.3).say(LONG_SENTENCE).silence(1.5);
    s.write(&wav);
    let mut cmd = mic.sottod();
    cmd.args(["--partials", "--json"]);
    let mut daemon = LiveDaemon::spawn(cmd);
    daemon.wait_log("capturing from", Duration::from_secs(30));
    let (timed, received) = timed_listener(&mic.bus);
    std::thread::sleep(Duration::from_millis(300));
    let (_, mut paplay) = mic.play(&wav);
    assert!(paplay.wait().unwrap().success());
    daemon.wait_event(|e| e["event"] == "transcript", Duration::from_secs(15));
    let (run, _) = daemon.stop(libc::SIGTERM, Duration::from_secs(10));
    assert!(run.status.success(), "{}", run.stderr);
    let events = run.events();
    assert_eq!(utterances(&events).len(), 1, "{events:?}");
    let partials = checked_partials(&events, 1);
    assert!(partials.len() >= 3, "{partials:?}");
    let spoken = (s.truth[0].2 - s.truth[0].1) as f64 / 1000.0;
    assert!(
        (6.0..=8.5).contains(&spoken),
        "a 6-8 s sentence, got {spoken:.1} s"
    );
    // The same Partials reached a real client.
    signal(&timed, libc::SIGTERM);
    let got: Vec<Received> = received.try_iter().collect();
    let client: Vec<&Received> = got
        .iter()
        .filter(|r| r.event["event"] == "partial")
        .collect();
    assert_eq!(client.len(), partials.len());
    let onset = events[0]["start_ms"].as_u64().unwrap() as f64;
    eprintln!(
        "live partials: {}, first {:.0} ms after the onset (on the client's clock)",
        partials.len(),
        client[0].at_ms - onset
    );
}
