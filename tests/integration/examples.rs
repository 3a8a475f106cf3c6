//! The example clients in `examples/` (shell with gdbus and busctl, Python
//! with GDBus through PyGObject, Rust with the `sotto-client` proxy), each
//! run as a user would against a live sottod on a private bus.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use sotto_testkit::*;

/// A client started with its output in a file, so the test can wait for
/// its "listening" line while it runs.
struct Client {
    name: &'static str,
    child: Child,
    out: std::path::PathBuf,
}

impl Client {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

#[test]
fn each_example_client_prints_the_transcripts_and_the_stats() {
    model_path();
    let python = "/usr/bin/python3";
    let rust = bin("examples/listen");
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    let mut s = Session::new(ESPEAK_RATE);
    // Time for the clients to start and subscribe; sottod stays on after
    // the last sentence for their GetStats.
    s.silence(5.0)
        .say("turn on the kitchen lights")
        .silence(1.5);
    s.say("open the window").silence(5.0);
    s.write(&wav);
    let daemon = LiveDaemon::spawn({
        let mut c = sottod(&bus);
        c.args(["--input-file", wav.to_str().unwrap()]);
        c
    });
    bus.wait_for_name();
    let examples = project_root().join("examples");
    let mut clients = Vec::new();
    for (name, program, script) in [
        ("shell", "sh".into(), Some(examples.join("listen.sh"))),
        ("python", python.into(), Some(examples.join("listen.py"))),
        ("rust", rust, None),
    ] {
        let out = dir.path().join(format!("{name}.out"));
        let mut c = bus.client(&program);
        if let Some(script) = script {
            c.arg(script);
        }
        let child = c
            .arg("2")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} example ({}): {e}", program.display()));
        clients.push(Client { name, child, out });
    }
    let start = Instant::now();
    for c in &clients {
        while !c.output().lines().any(|l| l == "listening") {
            assert!(
                start.elapsed() < Duration::from_secs(4),
                "{} example never subscribed: {}",
                c.name,
                c.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for c in clients {
        let (name, out) = (c.name, c.out.clone());
        let run = wait_output(c.child, Duration::from_secs(60));
        let text = std::fs::read_to_string(out).unwrap();
        println!("{name} example:\n{text}");
        assert!(
            run.status.success(),
            "{name} example failed: {}",
            run.stderr
        );
        let transcripts: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("transcript "))
            .collect();
        assert_eq!(transcripts.len(), 2, "{name}: {text}");
        assert!(
            transcripts[0].starts_with("transcript 1: ")
                && transcripts[0].to_lowercase().contains("kitchen")
                && transcripts[1].starts_with("transcript 2: ")
                && transcripts[1].to_lowercase().contains("window"),
            "{name}: the two sentences, with their ids: {text}"
        );
        assert!(
            text.lines().any(|l| l == "stats transcripts=2"),
            "{name}: GetStats after both: {text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("stats latency_p50_ms=")),
            "{name}: every statistic: {text}"
        );
    }
    daemon.wait_exit(Duration::from_secs(30));
}
