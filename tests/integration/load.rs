//! sottod beside clients that flood the bus with calls: spoken commands must
//! still arrive, the flooders are refused, others are served, and the bus
//! threads yield to the pipeline. How much CPU it costs is the benchmark's
//! business (`scripts/bench.sh`, step `flood`). Two busy processes on the
//! cores: `resilience::under_load_…`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use sotto_testkit::*;

/// Every command was transcribed, none dropped; the transcripts' JSON.
fn assert_every_command_arrived(run: &Run) -> Vec<Value> {
    assert!(run.status.success(), "{}", run.stderr);
    let events = run.events();
    let drops: Vec<&Value> = events.iter().filter(|e| e["event"] == "dropped").collect();
    assert!(drops.is_empty(), "dropped: {drops:?}\n{}", run.stderr);
    let texts: Vec<String> = transcripts(&events).iter().map(|t| normalize(t)).collect();
    assert_eq!(texts, COMMANDS, "{}", run.stderr);
    events
        .into_iter()
        .filter(|e| e["event"] == "transcript")
        .collect()
}

/// sottod on `bus` playing the spoken commands after `lead` seconds of
/// silence, with `--json`; started, its name taken.
fn paced_commands(bus: &PrivateBus, dir: &std::path::Path, lead: f32) -> std::process::Child {
    let wav = commands_wav(dir, lead, COMMANDS.len());
    let daemon = sottod(bus)
        .args(["--input-file", wav.to_str().unwrap(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    bus.wait_for_name();
    daemon
}

#[test]
fn a_flooding_client_is_refused_and_commands_still_arrive() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let daemon = paced_commands(&bus, dir.path(), 3.0);
    let pid = daemon.id();
    let address = bus.address.clone();
    let flooding = std::thread::spawn(move || {
        let start = (Instant::now(), cpu_ticks(pid));
        let one = flood(&address, 1, Duration::from_secs(8));
        let ten = flood(&address, 10, Duration::from_secs(8));
        let ticks = cpu_ticks(pid) - start.1;
        (one, ten, ticks, start.0.elapsed())
    });
    // Another client, during the flood: served.
    std::thread::sleep(Duration::from_secs(4));
    let stats = bus.call("GetStats");
    assert!(stats.contains("\"utterances\""), "{stats}");
    let (one, ten, ticks, took) = flooding.join().unwrap();
    let run = wait_output(daemon, Duration::from_secs(60));
    assert_every_command_arrived(&run);
    for (what, counts) in [("one client", &one[..]), ("ten clients", &ten[..])] {
        for c in counts {
            assert_eq!(c.failed, 0, "{what}: only answers or LimitsExceeded: {c:?}");
            assert!(
                c.answered >= 1,
                "{what}: within the budget, answered: {c:?}"
            );
            assert!(
                c.limited >= 1,
                "{what}: over the budget, LimitsExceeded: {c:?}"
            );
        }
    }
    let (a, b) = (total(&one), total(&ten));
    let tick = ticks_per_second();
    println!(
        "flood: one client {} calls ({} answered), ten clients {} calls ({} answered); sottod {:.0} % of a core over {:.1} s",
        a.calls(),
        a.answered,
        b.calls(),
        b.answered,
        100.0 * ticks as f64 / tick / took.as_secs_f64(),
        took.as_secs_f64()
    );
}

#[test]
fn bus_threads_yield_to_the_pipeline() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = dir.path().join("silence.wav");
    Session::new(16_000).silence(8.0).write(&wav);
    let mut daemon = LiveDaemon::spawn({
        let mut c = sottod(&bus);
        c.args(["--input-file", wav.to_str().unwrap()]);
        c
    });
    daemon.wait_log("ready", Duration::from_secs(60));
    let threads = thread_nices(daemon.child.id());
    let nice_of = |name: &str| -> Vec<i32> {
        threads
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect()
    };
    let base = nice_of("sottod");
    assert_eq!(base.len(), 1, "{threads:?}");
    let base = base[0];
    // ggml's decode threads are named after the whisper thread that starts them.
    for name in ["whisper", "dsp", "wav-reader"] {
        let nices = nice_of(name);
        assert!(
            !nices.is_empty() && nices.iter().all(|n| *n == base),
            "{name}: {threads:?}"
        );
    }
    assert!(
        nice_of("event-loop").contains(&(base + 10).min(19)),
        "the bus worker runs 10 nice steps below: {threads:?}"
    );
}

/// The value of `name` in the environment process `pid` runs with.
fn environ_of(pid: u32, name: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("/proc/PID/environ");
    raw.split(|b| *b == 0).find_map(|kv| {
        let kv = String::from_utf8_lossy(kv);
        kv.strip_prefix(&format!("{name}=")).map(str::to_owned)
    })
}

#[test]
/// ggml's OpenMP threads spin a bounded time at their barrier: sottod runs
/// with GOMP_SPINCOUNT set even when started without it (it restarts itself
/// before any thread exists, same pid), and a value the user set is kept.
fn decode_threads_spin_a_bounded_time() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("silence.wav");
    Session::new(16_000).silence(8.0).write(&wav);
    for (given, expected) in [(None, "1000"), (Some("5000"), "5000")] {
        let bus = PrivateBus::start();
        let mut c = sottod(&bus);
        c.args(["--input-file", wav.to_str().unwrap()]);
        if let Some(v) = given {
            c.env("GOMP_SPINCOUNT", v);
        }
        let mut daemon = LiveDaemon::spawn(c);
        daemon.wait_log("ready", Duration::from_secs(60));
        let pid = daemon.child.id();
        assert_eq!(
            environ_of(pid, "GOMP_SPINCOUNT").as_deref(),
            Some(expected),
            "given {given:?}"
        );
        assert!(
            environ_of(pid, "OMP_WAIT_POLICY").is_none(),
            "only the spin count is set"
        );
        let (run, _) = daemon.stop(15, Duration::from_secs(10));
        assert!(run.status.success(), "{}", run.stderr);
    }
}

#[test]
/// Not only `org.sotto.Sotto1`'s methods: reading properties, introspecting
/// or pinging the object in a loop is refused the same way, and the standard
/// interfaces sottod serves in place of zbus's answer as D-Bus says.
fn every_call_to_the_object_is_within_the_senders_budget() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = dir.path().join("silence.wav");
    Session::new(16_000).silence(30.0).write(&wav);
    let mut daemon = LiveDaemon::spawn({
        let mut c = sottod(&bus);
        c.args(["--input-file", wav.to_str().unwrap()]);
        c
    });
    daemon.wait_log("ready", Duration::from_secs(60));
    for call in Call::ALL {
        let counts = total(&flood_with(
            &bus.address,
            1,
            Duration::from_millis(1500),
            call,
        ));
        println!("{call:?} in a loop for 1.5 s: {counts:?}");
        assert_eq!(counts.failed, 0, "{call:?}: {counts:?}");
        assert!(counts.answered >= 1, "{call:?}: {counts:?}");
        assert!(counts.limited >= 1, "{call:?} is budgeted: {counts:?}");
    }
    let gdbus = |method: &str, args: &[&str]| {
        let out = bus
            .client("gdbus")
            .args(["call", "--session", "--dest", "org.sotto.Sotto1"])
            .args(["--object-path", "/org/sotto/Sotto1", "--method", method])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text + &String::from_utf8_lossy(&out.stderr)
    };
    let properties = "org.freedesktop.DBus.Properties";
    let get = gdbus(&format!("{properties}.Get"), &["org.sotto.Sotto1", "State"]);
    assert!(get.contains("<'listening'>"), "{get}");
    let all = gdbus(&format!("{properties}.GetAll"), &["org.sotto.Sotto1"]);
    for name in ["State", "Device", "Mode", "Model", "Language"] {
        assert!(all.contains(&format!("'{name}'")), "{all}");
    }
    let set = gdbus(
        &format!("{properties}.Set"),
        &["org.sotto.Sotto1", "State", "<'paused'>"],
    );
    assert!(
        set.contains("org.freedesktop.DBus.Error.PropertyReadOnly"),
        "{set}"
    );
    let unknown = gdbus(&format!("{properties}.Get"), &["org.sotto.Sotto1", "Nope"]);
    assert!(
        unknown.contains("org.freedesktop.DBus.Error.UnknownProperty"),
        "{unknown}"
    );
    let nowhere = gdbus(&format!("{properties}.Get"), &["org.example.Nope", "State"]);
    assert!(
        nowhere.contains("org.freedesktop.DBus.Error.UnknownInterface"),
        "{nowhere}"
    );
    let id = gdbus("org.freedesktop.DBus.Peer.GetMachineId", &[]);
    let machine = ["/var/lib/dbus/machine-id", "/etc/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .expect("a machine-id");
    assert!(id.contains(machine.trim()), "{id}");
    assert_eq!(bus.state(), "listening", "the flood stopped nothing");
}

#[test]
/// A signal leaves sottod once; the bus copies it to each subscriber. Fifty
/// subscribers each hear every command, and none is dropped.
fn fifty_subscribers_each_hear_every_command() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let daemon = paced_commands(&bus, dir.path(), 1.5);
    let (pid, t0) = (daemon.id(), Instant::now());
    let ticks0 = cpu_ticks(pid);
    let subscribers = Subscribers::start(&bus.address, 50);
    let ticks = last_cpu_ticks(pid);
    let run = wait_output(daemon, Duration::from_secs(60));
    let (ticks, took) = (ticks.join().unwrap().saturating_sub(ticks0), t0.elapsed());
    let transcripts = assert_every_command_arrived(&run);
    let heard = subscribers.finish();
    for (i, texts) in heard.iter().enumerate() {
        let texts: Vec<String> = texts.iter().map(|t| normalize(t)).collect();
        assert_eq!(texts, COMMANDS, "subscriber {i}");
    }
    let mut latencies: Vec<u64> = transcripts
        .iter()
        .map(|t| t["latency_ms"].as_u64().unwrap())
        .collect();
    latencies.sort_unstable();
    println!(
        "50 subscribers: sottod {:.1} % of a core over {:.1} s; latency p50 {} ms",
        100.0 * ticks as f64 / ticks_per_second() / took.as_secs_f64(),
        took.as_secs_f64(),
        latencies[latencies.len() / 2]
    );
}
