//! Running as a service: `make install` puts the expected files in place, and
//! the installed units verify and score as hardened with systemd-analyze.

use std::path::Path;
use std::process::Command;

use sotto_testkit::*;

const FILES: [&str; 10] = [
    "etc/dbus-1/system.d/org.sotto.Sotto1.conf",
    "usr/bin/sotto",
    "usr/bin/sotto-convert",
    "usr/bin/sottod",
    "usr/lib/systemd/system/sotto.service",
    "usr/lib/systemd/user/sotto.service",
    "usr/share/dbus-1/interfaces/org.sotto.Sotto1.xml",
    "usr/share/dbus-1/services/org.sotto.Sotto1.service",
    "usr/share/doc/sotto/README.md",
    "usr/share/sotto/models/ggml-tiny.en.bin",
];

fn make(args: &[&str]) {
    let out = Command::new("make")
        .current_dir(project_root())
        .args(args)
        .output()
        .expect("make");
    assert!(
        out.status.success(),
        "make {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn installed(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// An installed unit with its paths moved under DESTDIR, so systemd-analyze
/// can check that ExecStart exists.
fn relocated(root: &Path, unit: &str, to: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root.join(unit)).unwrap();
    let text = text.replace("/usr/", &format!("{}/usr/", root.display()));
    let dir = to.join(unit.rsplit('/').nth(1).unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sotto.service");
    std::fs::write(&path, text).unwrap();
    path
}

fn analyze(args: &[&str], runtime: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
        .expect("systemd-analyze (package systemd, scripts/install-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn exposure(text: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .expect("exposure line");
    line.split(": ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn make_install_places_the_files_and_the_units_verify_hardened() {
    model_path();
    let dir = scratch();
    let root = dir.path().join("root");
    let destdir = format!("DESTDIR={}", root.display());
    make(&["install", &destdir, "PREFIX=/usr"]);
    let expected: Vec<String> = FILES.iter().map(|f| f.to_string()).collect();
    assert_eq!(installed(&root), expected);

    let runtime = dir.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let system = relocated(
        &root,
        "usr/lib/systemd/system/sotto.service",
        &dir.path().join("verify"),
    );
    let user = relocated(
        &root,
        "usr/lib/systemd/user/sotto.service",
        &dir.path().join("verify"),
    );
    for unit in [&system, &user] {
        let text = std::fs::read_to_string(unit).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        // What the daemon needs from its sandbox under load: setpriority for
        // the bus threads, a CPU weight.
        assert!(
            lines.contains(&"SystemCallFilter=setpriority"),
            "{}: @resources removes setpriority, which the bus threads need",
            unit.display()
        );
        assert!(
            lines.iter().any(|l| l.starts_with("CPUWeight=")),
            "{}",
            unit.display()
        );
    }
    let (ok, text) = analyze(&["verify", system.to_str().unwrap()], &runtime);
    assert!(ok && text.trim().is_empty(), "system unit: {text}");
    let (ok, text) = analyze(&["verify", "--user", user.to_str().unwrap()], &runtime);
    assert!(ok && text.trim().is_empty(), "user unit: {text}");

    let (_, text) = analyze(
        &["security", "--offline=true", system.to_str().unwrap()],
        &runtime,
    );
    let system_score = exposure(&text);
    let (_, text) = analyze(
        &[
            "security",
            "--offline=true",
            "--user",
            user.to_str().unwrap(),
        ],
        &runtime,
    );
    let user_score = exposure(&text);
    println!("exposure: system unit {system_score}, user unit {user_score}");
    assert!(system_score <= 1.5, "system unit exposure {system_score}");
    assert!(user_score <= 3.0, "user unit exposure {user_score}");

    make(&["uninstall", &destdir, "PREFIX=/usr"]);
    assert_eq!(
        installed(&root),
        Vec::<String>::new(),
        "uninstall removes every file"
    );
}

#[test]
fn the_daemon_tells_systemd_it_is_ready_and_keeps_the_watchdog_alive() {
    use std::os::unix::net::UnixDatagram;
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let wav = dir.path().join("s.wav");
    Session::new(16_000).silence(3.0).write(&wav);
    let child = sottod(&bus)
        .args(["--input-file", wav.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut messages = Vec::new();
    let mut state_at_ready = None;
    let mut buf = [0u8; 256];
    while messages
        .iter()
        .filter(|m: &&String| m.as_str() == "WATCHDOG=1")
        .count()
        < 3
    {
        let n = socket.recv(&mut buf).expect("a notification within 10 s");
        let message = String::from_utf8_lossy(&buf[..n]).to_string();
        if message == "READY=1" {
            // systemd starts the units that wait for sotto now: the model must
            // be loaded and the source open, so State is past `starting`.
            state_at_ready = Some(bus.state());
        }
        messages.push(message);
    }
    let run = wait_output(child, std::time::Duration::from_secs(20));
    assert!(run.status.success(), "{}", run.stderr);
    let state = state_at_ready.unwrap_or_else(|| panic!("no READY=1 in {messages:?}"));
    assert!(
        state == "listening" || state == "hearing",
        "State was {state:?} when READY=1 arrived"
    );
    let loaded = run.stderr.find("model tiny.en loaded");
    let ready = run.stderr.find("ready: model loaded and source open");
    assert!(
        loaded.is_some() && ready.is_some() && loaded < ready,
        "the model loads before READY=1: {}",
        run.stderr
    );
}

#[test]
fn both_units_wait_for_readiness_from_the_daemon() {
    for unit in ["sotto.user.service", "sotto.system.service"] {
        let text = std::fs::read_to_string(project_root().join("systemd").join(unit)).unwrap();
        assert!(
            text.lines().any(|l| l.trim() == "Type=notify"),
            "{unit}: READY=1 counts only under Type=notify"
        );
        assert!(
            text.lines().any(|l| l.trim() == "NotifyAccess=main"),
            "{unit}"
        );
    }
}
