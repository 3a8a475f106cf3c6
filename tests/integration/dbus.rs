//! The D-Bus service on private buses, seen by real clients: `sotto listen`
//! (zbus), `gdbus monitor`, `busctl`.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use sotto_testkit::*;

fn sotto(bus: &PrivateBus) -> Command {
    let mut c = bus.client(bin("sotto"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// A daemon on `bus` reading `seconds` of silence (the file is `silence.wav`
/// in the returned folder), once it owns its name.
fn daemon_on_silence(bus: &PrivateBus, seconds: f32) -> (tempfile::TempDir, Child) {
    let dir = scratch();
    let wav = dir.path().join("silence.wav");
    Session::new(16_000).silence(seconds).write(&wav);
    let daemon = sottod(bus)
        .args(["--input-file", wav.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    bus.wait_for_name();
    (dir, daemon)
}

fn finish(mut child: Child) -> String {
    signal(&child, 15);
    let mut s = String::new();
    child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    let _ = child.wait();
    s
}

/// Speech with gaps and a stretch of noise, preceded by silence long enough
/// for the clients to subscribe.
fn session_wav(dir: &std::path::Path) -> (std::path::PathBuf, Session) {
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(3.0);
    for text in ["turn on the kitchen lights", "what time is it"] {
        s.say(text).silence(1.2);
    }
    // A stretch of hiss, low enough not to be speech.
    let mut x: u32 = 7;
    s.audio
        .samples
        .extend((0..ESPEAK_RATE as usize * 2).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 - 0.5) * 0.01
        }));
    s.silence(0.5).say("play some music").silence(1.5);
    let wav = dir.join("session.wav");
    s.write(&wav);
    (wav, s)
}

#[test]
fn signals_follow_the_invariant_and_reach_real_clients() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let (wav, s) = session_wav(dir.path());
    let daemon = sottod(&bus)
        .args([
            "--input-file",
            wav.to_str().unwrap(),
            "--max-latency-ms",
            "3000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    bus.wait_for_name();
    let listen = sotto(&bus).args(["listen", "--json"]).spawn().unwrap();
    let (timed, received) = timed_listener(&bus);
    let plain = sotto(&bus).arg("listen").spawn().unwrap();
    let monitor = bus
        .client("gdbus")
        .args(["monitor", "--session", "--dest", "org.sotto.Sotto1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let run = wait_output(daemon, Duration::from_secs(60));
    assert!(run.status.success(), "{}", run.stderr);
    std::thread::sleep(Duration::from_millis(300));

    // sotto listen exits non-zero by itself when the daemon leaves.
    let listened = wait_output(listen, Duration::from_secs(5));
    assert!(!listened.status.success());
    assert!(
        listened.stderr.contains("no sottod is running"),
        "{}",
        listened.stderr
    );
    let events: Vec<Value> = listened.events();
    let utts = utterances(&events);
    assert_eq!(utts.len(), 3, "{}", listened.stdout);
    let origin = run.file_origin_ms() as i64;
    for ((_, start, end), (text, t_start, t_end)) in utts.iter().zip(&s.truth) {
        assert!(
            (*start as i64 - origin - *t_start as i64).abs() <= 150,
            "{text}: start"
        );
        assert!(
            (*end as i64 - origin - *t_end as i64).abs() <= 150,
            "{text}: end"
        );
    }
    let texts: Vec<String> = transcripts(&events).iter().map(|t| normalize(t)).collect();
    assert_eq!(
        texts,
        vec![
            "turn on the kitchen lights",
            "what time is it",
            "play some music"
        ]
    );
    // The bound, where a client sees it: each transcript's arrival at a real
    // client, on the client's own clock, against its end of speech.
    let _ = wait_output(timed, Duration::from_secs(5));
    let received: Vec<Received> = received.try_iter().collect();
    assert_eq!(assert_received_within(&received, 3000).len(), 3);
    // The plain listener prints the transcripts, one per line.
    let plain = wait_output(plain, Duration::from_secs(5));
    let lines: Vec<String> = plain.stdout.lines().map(normalize).collect();
    assert_eq!(lines, texts);

    // gdbus saw the same signals.
    let seen = finish(monitor);
    let transcripts_seen = seen
        .lines()
        .filter(|l| l.contains("org.sotto.Sotto1.Transcript ("))
        .count();
    let started_seen = seen
        .lines()
        .filter(|l| l.contains("org.sotto.Sotto1.SpeechStarted ("))
        .count();
    assert_eq!((started_seen, transcripts_seen), (3, 3), "{seen}");
    assert!(seen.contains("kitchen lights.'"), "{seen}");
    assert!(seen.contains("{'State': <'hearing'>}"), "{seen}");
}

#[test]
fn pause_resume_properties_and_stats_with_busctl() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(2.0)
        .say("turn on the kitchen lights")
        .silence(1.2)
        .say("what time is it")
        .silence(9.0);
    s.write(&wav);
    let daemon = sottod(&bus)
        .args(["--input-file", wav.to_str().unwrap(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    bus.wait_for_name();
    // The model loads after the name is taken; the source opens after that.
    bus.wait_for_state("listening", Duration::from_secs(10));
    let get = |prop: &str| bus.property(prop);
    assert_eq!(get("Language"), "s \"en\"");
    assert!(
        get("Device").contains("file:") && get("Device").contains("s.wav"),
        "{}",
        get("Device")
    );
    assert!(get("Model").contains("ggml-tiny.en.bin"));
    bus.call("Pause");
    bus.wait_for_state("paused", Duration::from_secs(5));
    let status = sotto(&bus).arg("status").output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).starts_with("state: paused"));
    bus.call("Resume");
    bus.wait_for_state("listening", Duration::from_secs(5));

    // Stats in the closing silence match what was emitted.
    std::thread::sleep(Duration::from_secs(8));
    let mut args = vec!["--json=short"];
    args.extend(sotto_member("call", "GetStats"));
    let stats = bus.busctl(&args);
    let run = wait_output(daemon, Duration::from_secs(60));
    let events = run.events();
    let stats: Value = serde_json::from_str(&stats).unwrap();
    let data = &stats["data"][0];
    let n = |k: &str| {
        data[k]["data"]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {data}"))
    };
    assert_eq!(utterances(&events).len(), 2, "{}", run.stdout);
    assert_eq!(n("utterances") as usize, utterances(&events).len());
    assert_eq!(n("transcripts") as usize, transcripts(&events).len());
    // One counter per drop reason, each equal to the drops published.
    for reason in ["deadline", "overload", "no-speech", "shutdown", "error"] {
        let published = events
            .iter()
            .filter(|e| e["event"] == "dropped" && e["reason"] == reason)
            .count() as u64;
        assert_eq!(
            n(&format!("dropped_{}", reason.replace('-', "_"))),
            published,
            "dropped {reason}"
        );
    }
    // Read during the closing silence: every frame up to the last sentence's
    // end was captured, no more than the file holds, none lost.
    let last_end = s.truth.last().unwrap().2 * u64::from(ESPEAK_RATE) / 1000;
    let captured = n("frames_captured");
    assert!(
        (last_end..=s.audio.samples.len() as u64).contains(&captured),
        "frames_captured {captured}: the speech ends at frame {last_end}, the file has {}",
        s.audio.samples.len()
    );
    assert_eq!(n("frames_lost"), 0);
    // The percentiles are those of the latencies the transcripts carried.
    let mut latencies: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "transcript")
        .map(|e| e["latency_ms"].as_u64().unwrap())
        .collect();
    latencies.sort_unstable();
    assert_eq!(n("latency_max_ms"), *latencies.last().unwrap());
    // p50 of two is the lower one (nearest rank).
    assert_eq!(n("latency_p50_ms"), latencies[0]);
}

#[test]
fn a_second_daemon_on_the_same_bus_fails_with_a_clear_message() {
    model_path();
    let bus = PrivateBus::start();
    let (dir, mut first) = daemon_on_silence(&bus, 20.0);
    let wav = dir.path().join("silence.wav");
    let second = sottod(&bus)
        .args(["--input-file", wav.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_output(second, Duration::from_secs(20));
    signal(&first, 15);
    let _ = first.wait();
    assert_clean_failure(
        &run,
        "another sottod already owns org.sotto.Sotto1 on the session bus",
    );
}

#[test]
fn clients_fail_cleanly_when_no_daemon_runs() {
    let bus = PrivateBus::start();
    for args in [&["listen"][..], &["status"], &["pause"], &["resume"]] {
        let child = sotto(&bus).args(args).spawn().unwrap();
        let run = wait_output(child, Duration::from_secs(10));
        assert_clean_failure(&run, "no sottod is running on the session bus");
    }
}

#[test]
fn no_bus_is_a_one_line_error() {
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    Session::new(16_000).silence(1.0).write(&wav);
    let out = Command::new(env!("CARGO_BIN_EXE_sottod"))
        .args(["--input-file", wav.to_str().unwrap()])
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}/none", dir.path().display()),
        )
        .output()
        .unwrap();
    let run = Run::from(out);
    assert_clean_failure(&run, "cannot connect to the session bus");
    assert!(
        run.stderr.contains("add --bus none"),
        "the error names the way out: {}",
        run.stderr
    );
}

/// `--bus none`: a file is transcribed on a machine with no bus at all (no
/// session bus, no system bus), the events on stdout as JSON lines without
/// `--json`.
#[test]
fn bus_none_transcribes_a_file_without_any_bus() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.5)
        .say("turn on the kitchen lights")
        .silence(1.0);
    s.write(&wav);
    let nowhere = format!("unix:path={}/none", dir.path().display());
    let out = Command::new(env!("CARGO_BIN_EXE_sottod"))
        .args([
            "--bus",
            "none",
            "--no-pace",
            "--input-file",
            wav.to_str().unwrap(),
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &nowhere)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &nowhere)
        .output()
        .unwrap();
    let run = Run::from(out);
    assert!(run.status.success(), "sottod failed: {}", run.stderr);
    let said = transcripts(&run.events()).join(" ").to_lowercase();
    assert!(
        said.contains("kitchen") && said.contains("lights"),
        "the sentence on stdout: {}",
        run.stdout
    );
}

/// The daemon is frozen (SIGSTOP) while a sentence is spoken into a paced
/// file, for longer than the bound: when it thaws, each utterance is already
/// late, whatever this machine's decode speed. The whisper thread must drop it
/// before decoding (not decode it and leave the drop to the publisher), and no
/// client may receive a late transcript.
#[test]
fn an_utterance_late_before_its_decode_is_dropped_without_decoding() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(1.0).say("open the window").silence(3.0);
    s.say("close the door").silence(1.5);
    let wav = dir.path().join("s.wav");
    s.write(&wav);
    let bound: u64 = 1_000;
    let mut cmd = sottod(&bus);
    cmd.args([
        "--input-file",
        wav.to_str().unwrap(),
        "--json",
        "--max-latency-ms",
        &bound.to_string(),
    ]);
    let mut daemon = LiveDaemon::spawn(cmd);
    bus.wait_for_name();
    let (listener, received) = timed_listener(&bus);
    for _ in 0..2 {
        daemon.wait_event(|e| e["event"] == "speech_started", Duration::from_secs(30));
        // Frozen for 2.5 times the bound: the file's clock runs on meanwhile.
        signal(&daemon.child, 19);
        std::thread::sleep(Duration::from_millis(5 * bound / 2));
        signal(&daemon.child, 18);
    }
    let (run, _) = daemon.stop(0, Duration::from_secs(30));
    assert!(run.status.success(), "{}", run.stderr);
    let events = run.events();
    assert_eq!(utterances(&events).len(), 2, "{}", run.stdout);
    let drops = events
        .iter()
        .filter(|e| e["event"] == "dropped" && e["reason"] == "deadline")
        .count();
    assert_eq!(drops, 2, "{}", run.stdout);
    let before_decoding = run.stderr.matches("dropped before decoding").count();
    assert_eq!(
        before_decoding, 2,
        "the whisper thread dropped both without decoding: {}",
        run.stderr
    );
    let _ = wait_output(listener, Duration::from_secs(5));
    let received: Vec<Received> = received.try_iter().collect();
    assert_received_within(&received, bound);
    assert!(
        received
            .iter()
            .filter(|r| r.event["event"] == "dropped")
            .count()
            == 2,
        "the client heard both drops"
    );
}

#[test]
fn the_interface_file_matches_the_live_introspection() {
    model_path();
    let bus = PrivateBus::start();
    let (_dir, mut daemon) = daemon_on_silence(&bus, 10.0);
    let out = bus
        .client("gdbus")
        .args([
            "introspect",
            "--session",
            "--dest",
            "org.sotto.Sotto1",
            "--object-path",
            "/org/sotto/Sotto1",
            "--xml",
        ])
        .output()
        .unwrap();
    signal(&daemon, 15);
    let _ = daemon.wait();
    let live = String::from_utf8_lossy(&out.stdout).to_string();
    let file = std::fs::read_to_string(project_root().join("src/org.sotto.Sotto1.xml")).unwrap();
    let block = |xml: &str| -> String {
        let start = xml
            .find("<interface name=\"org.sotto.Sotto1\">")
            .expect("interface in xml");
        let end = start + xml[start..].find("</interface>").unwrap();
        xml[start..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        block(&file),
        block(&live),
        "src/org.sotto.Sotto1.xml is out of date"
    );
}

#[test]
fn the_system_bus_works_with_a_system_like_daemon() {
    model_path();
    let dir = scratch();
    let socket = dir.path().join("system_bus_socket");
    let conf = dir.path().join("system.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();
    let bus = PrivateBus::with_config(&[&format!("--config-file={}", conf.display())]);
    let wav = dir.path().join("s.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(2.0).say("turn off the fan").silence(1.5);
    s.write(&wav);
    let daemon = Command::new(env!("CARGO_BIN_EXE_sottod"))
        .args(["--bus", "system", "--input-file", wav.to_str().unwrap()])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let listen = Command::new(bin("sotto"))
        .args(["--system", "listen"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_output(daemon, Duration::from_secs(30));
    assert!(run.status.success(), "{}", run.stderr);
    let heard = wait_output(listen, Duration::from_secs(5));
    assert_eq!(
        heard.stdout.lines().map(normalize).collect::<Vec<_>>(),
        vec!["turn off the fan"],
        "{}",
        heard.stderr
    );
}
