//! Running as a service: `make install` puts the expected files in place, and
//! the installed units verify and score as hardened with systemd-analyze.

use std::path::Path;
use std::process::Command;

use sotto_testkit::*;

const FILES: [&str; 23] = [
    "etc/dbus-1/system.d/org.sotto.Sotto1.conf",
    "etc/default/sotto",
    "usr/bin/sotto",
    "usr/bin/sotto-convert",
    "usr/bin/sottod",
    "usr/lib/systemd/system/sotto.service",
    "usr/lib/systemd/user/sotto.service",
    "usr/share/bash-completion/completions/sotto",
    "usr/share/bash-completion/completions/sotto-convert",
    "usr/share/bash-completion/completions/sottod",
    "usr/share/dbus-1/interfaces/org.sotto.Sotto1.xml",
    "usr/share/dbus-1/services/org.sotto.Sotto1.service",
    "usr/share/doc/sotto/README.md",
    "usr/share/fish/vendor_completions.d/sotto-convert.fish",
    "usr/share/fish/vendor_completions.d/sotto.fish",
    "usr/share/fish/vendor_completions.d/sottod.fish",
    "usr/share/man/man1/sotto-convert.1",
    "usr/share/man/man1/sotto.1",
    "usr/share/man/man1/sottod.1",
    "usr/share/sotto/models/ggml-tiny.en.bin",
    "usr/share/zsh/vendor-completions/_sotto",
    "usr/share/zsh/vendor-completions/_sotto-convert",
    "usr/share/zsh/vendor-completions/_sottod",
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
    check_binaries(&root.join("usr/bin"));

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
        // Every setting can come from the settings file: the command line
        // (which would win over it) sets none.
        let exec = lines.iter().find(|l| l.starts_with("ExecStart=")).unwrap();
        assert!(!exec.contains(" -"), "{}: flags in {exec}", unit.display());
    }
    let settings = |unit: &Path| -> Vec<String> {
        std::fs::read_to_string(unit)
            .unwrap()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("EnvironmentFile=").map(str::to_owned))
            .collect()
    };
    assert_eq!(settings(&system), ["-/etc/default/sotto"]);
    assert_eq!(settings(&user), ["-%h/.config/sotto/env"]);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/default/sotto")).unwrap(),
        std::fs::read_to_string(project_root().join("systemd/sotto.default")).unwrap(),
        "the shipped settings file"
    );
    let page = std::fs::read_to_string(root.join("usr/share/man/man1/sottod.1")).unwrap();
    assert!(
        page.contains("SOTTO_SILENCE_MS") && page.contains("/etc/default/sotto"),
        "the man page names the variables and the settings file"
    );
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

    // A changed settings file is the admin's: install keeps it, uninstall too.
    let env_file = root.join("etc/default/sotto");
    std::fs::write(&env_file, "SOTTO_SILENCE_MS=700\n").unwrap();
    make(&["install", &destdir, "PREFIX=/usr"]);
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "SOTTO_SILENCE_MS=700\n"
    );
    make(&["uninstall", &destdir, "PREFIX=/usr"]);
    assert_eq!(
        installed(&root),
        ["etc/default/sotto"],
        "only the changed settings"
    );
    std::fs::remove_file(&env_file).unwrap();
    make(&["install", &destdir, "PREFIX=/usr"]);
    make(&["uninstall", &destdir, "PREFIX=/usr"]);
    assert_eq!(
        installed(&root),
        Vec::<String>::new(),
        "uninstall removes every file"
    );
}

/// The installed (stripped) binaries: their sizes and the libraries they
/// load, printed. The client carries no whisper.cpp (so no C++ runtime and
/// no OpenMP); sottod (and the converter) need only the C and C++ runtimes, ALSA and libgomp
/// (whisper.cpp's threads).
fn check_binaries(dir: &Path) {
    let libraries = |program: &str| -> Vec<String> {
        let out = Command::new("ldd")
            .arg(dir.join(program))
            .output()
            .expect("ldd");
        assert!(out.status.success(), "ldd {program}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|l| l.contains(".so"))
            .map(|l| {
                l.rsplit('/')
                    .next()
                    .unwrap()
                    .split(".so")
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .filter(|l| l != "linux-vdso" && l != "ld-linux-x86-64" && l != "ld-linux-aarch64")
            .collect()
    };
    for (program, limit) in [
        ("sotto", 5_000_000),
        // PipeWire's native host and the device watchers add ~0.35 MB.
        ("sottod", 9_000_000),
        ("sotto-convert", 5_000_000),
    ] {
        let size = std::fs::metadata(dir.join(program)).unwrap().len();
        let libs = libraries(program);
        println!(
            "{program}: {size} bytes stripped, loads {}",
            libs.join(", ")
        );
        assert!(size <= limit, "{program}: {size} bytes, above {limit}");
        let allowed: &[&str] = match program {
            "sottod" => &[
                "libc",
                "libm",
                "libstdc++",
                "libgcc_s",
                "libasound",
                "libgomp",
                "libpipewire-0.3",
            ],
            // It shares sottod's library: with some linkers (Debian's
            // toolchain) it loads what sottod loads, though it uses none of
            // whisper.cpp or ALSA.
            "sotto-convert" => &[
                "libc",
                "libm",
                "libstdc++",
                "libgcc_s",
                "libasound",
                "libgomp",
                "libpipewire-0.3",
            ],
            _ => &["libc", "libm", "libgcc_s"],
        };
        for lib in &libs {
            assert!(
                allowed.contains(&lib.as_str()),
                "{program} loads {lib}: {libs:?}"
            );
        }
    }
}

/// The settings file as the units read it: lines uncommented in the shipped
/// file, parsed the way systemd's EnvironmentFile= does (VAR=value, `#`
/// comments), set what their flags set. Flags without a value take
/// systemd's usual booleans.
#[test]
fn the_settings_file_sets_the_flags() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.5)
        .say("turn on the kitchen lights")
        .silence(1.0);
    s.write(&wav);
    let shipped = std::fs::read_to_string(project_root().join("systemd/sotto.default")).unwrap();
    let mut file = String::new();
    for line in shipped.lines() {
        let set = |var: &str, value: &str| {
            line.starts_with(&format!("#{var}="))
                .then(|| format!("{var}={value}"))
        };
        let line = set("SOTTO_BUS", "none")
            .or_else(|| set("SOTTO_INPUT_FILE", wav.to_str().unwrap()))
            .or_else(|| set("SOTTO_NO_PACE", "yes"))
            .or_else(|| set("SOTTO_VERBOSE", "1"))
            .unwrap_or_else(|| line.to_owned());
        file.push_str(&line);
        file.push('\n');
    }
    let vars: Vec<(String, String)> = file
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("VAR=value");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(vars.len(), 4, "{vars:?}");
    let out = Command::new(bin("sottod"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("SOTTO_MODEL", model_path())
        .envs(vars)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("kitchen") && stdout.contains("\"event\":\"transcript\""),
        "SOTTO_BUS=none: JSON lines, from SOTTO_INPUT_FILE: {stdout}"
    );
    assert!(stderr.contains("debug:"), "SOTTO_VERBOSE=1: {stderr}");
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

/// The man pages and completions `make` writes (sotto-gendocs), run in the
/// shells and `man` themselves: each shell completes sottod's flags and the
/// values of `--bus`, and `man` finds each page.
#[test]
fn completions_complete_in_each_shell_and_man_finds_the_pages() {
    let dir = scratch();
    let docs = dir.path().join("docs");
    let gendocs = project_root().join("target/release/sotto-gendocs");
    assert!(
        gendocs.is_file(),
        "{} is missing: run `make` (it builds it)",
        gendocs.display()
    );
    let out = Command::new(&gendocs).arg(&docs).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shell = |program: &str, script: &str| -> String {
        let out = Command::new(program)
            .args(["-c", script])
            .env("HOME", dir.path())
            .output()
            .unwrap_or_else(|e| {
                panic!("{program}: {e} (scripts/install-deps.sh --test-user installs it)")
            });
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let c = docs.join("completions");
    for program in ["sottod", "sotto", "sotto-convert"] {
        let bash = shell(
            "bash",
            &format!(
                "source {}/bash/{program}; complete -p {program}",
                c.display()
            ),
        );
        assert!(bash.contains(program), "bash: {bash}");
    }
    let bash = shell(
        "bash",
        &format!(
            "source {}/bash/sottod; COMP_WORDS=(sottod --bus ''); COMP_CWORD=2; _sottod sottod '' --bus; echo ${{COMPREPLY[@]}}",
            c.display()
        ),
    );
    assert_eq!(
        bash.split_whitespace().collect::<Vec<_>>(),
        ["session", "system", "none"]
    );
    let bash = shell(
        "bash",
        &format!(
            "source {}/bash/sotto; COMP_WORDS=(sotto ''); COMP_CWORD=1; _sotto sotto '' sotto; echo ${{COMPREPLY[@]}}",
            c.display()
        ),
    );
    assert!(
        bash.contains("listen") && bash.contains("status"),
        "bash, sotto's commands: {bash}"
    );
    let fish = shell(
        "fish",
        &format!(
            "source {}/fish/sottod.fish; complete -C 'sottod --bus '",
            c.display()
        ),
    );
    let mut values: Vec<&str> = fish
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, ["none", "session", "system"], "fish: {fish}");
    let fish = shell(
        "fish",
        &format!(
            "source {}/fish/sottod.fish; complete -C 'sottod --max-lat'",
            c.display()
        ),
    );
    assert!(fish.contains("--max-latency-ms"), "fish: {fish}");
    let zsh = shell(
        "zsh",
        &format!(
            "fpath=({} $fpath); autoload -Uz compinit; compinit -u -d {}/zcompdump; print -r -- $_comps[sottod] $_comps[sotto] $_comps[sotto-convert]",
            c.join("zsh").display(),
            dir.path().display()
        ),
    );
    assert_eq!(
        zsh.split_whitespace().collect::<Vec<_>>(),
        ["_sottod", "_sotto", "_sotto-convert"]
    );
    for program in ["sottod", "sotto", "sotto-convert"] {
        let out = Command::new("man")
            .args(["-M", docs.join("man").to_str().unwrap(), "-w", program])
            .output()
            .expect("man (package man-db)");
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains(&format!("{program}.1")),
            "man -w {program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs a command as root: directly when the tests are root (CI), else
/// through `sudo -n`. Fails the test, naming the way out, when neither can.
fn as_root(args: &[&str]) -> std::process::Output {
    let root = unsafe { libc::geteuid() } == 0;
    let mut c = if root {
        Command::new(args[0])
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", args[0]]);
        c
    };
    c.args(&args[1..]).env("DEBIAN_FRONTEND", "noninteractive");
    let out = c.output().unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    if !root && !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("sudo") {
        panic!("the package test installs the .deb on this machine: run the tests as root or with passwordless sudo");
    }
    out
}

fn package_installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "sotto"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Purges the package when the test ends, passed or not, so no later test
/// (nor the machine) keeps its D-Bus activation file or units.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if package_installed() {
            as_root(&["apt-get", "purge", "-y", "-q", "sotto"]);
        }
    }
}

/// The Debian package (`make deb`), installed with apt on this machine:
/// its files, the installed daemon on a file without a bus and under the
/// installed client on a private bus, the units verified where they are,
/// `man` and the completions; then purged, leaving no file behind.
#[test]
fn the_debian_package_installs_runs_and_purges_clean() {
    let debs: Vec<_> = std::fs::read_dir(project_root().join("target/debian"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let deb = debs
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap_or_else(|| panic!("no target/debian/sotto_*.deb: run `make deb`"));
    assert!(
        !package_installed(),
        "the sotto package is already installed here; this test installs and purges its own: apt-get purge sotto first"
    );
    let _purge = Installed;
    let out = as_root(&["apt-get", "install", "-y", "-q", deb.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "apt-get install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("installed and not enabled"),
        "postinst says how to enable it: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let listed = Command::new("dpkg").args(["-L", "sotto"]).output().unwrap();
    let mut files: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| Path::new(l).is_file())
        .map(str::to_owned)
        .collect();
    files.sort();
    println!("package files:\n{}", files.join("\n"));
    let mut want: Vec<String> = FILES
        .iter()
        .map(|f| {
            let f = f.replace("etc/dbus-1/system.d", "usr/share/dbus-1/system.d");
            let f = if f.starts_with("usr/share/man/") {
                format!("{f}.gz")
            } else {
                f
            };
            format!("/{f}")
        })
        .chain(["/usr/share/doc/sotto/copyright".to_owned()])
        .collect();
    want.sort();
    assert_eq!(files, want, "the package's files");
    check_binaries(Path::new("/usr/bin"));
    assert!(
        Command::new("getent")
            .args(["passwd", "sotto"])
            .output()
            .unwrap()
            .status
            .success(),
        "the service's user (postinst makes it when missing)"
    );

    // The installed daemon, its installed model, no bus at all.
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(1.5)
        .say("turn on the kitchen lights")
        .silence(1.5);
    s.write(&wav);
    let out = Command::new("/usr/bin/sottod")
        .args([
            "--bus",
            "none",
            "--no-pace",
            "--input-file",
            wav.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .env_remove("SOTTO_MODEL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("kitchen"),
        "installed sottod --bus none: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The installed client against the installed daemon on a private bus.
    let bus = PrivateBus::start();
    let daemon = LiveDaemon::spawn({
        let mut c = bus.client("/usr/bin/sottod");
        c.args(["--input-file", wav.to_str().unwrap()])
            .current_dir(dir.path())
            .env_remove("SOTTO_MODEL");
        c
    });
    bus.wait_for_name();
    let listen = bus
        .client("/usr/bin/sotto")
        .arg("listen")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    daemon.wait_exit(std::time::Duration::from_secs(30));
    let heard = wait_output(listen, std::time::Duration::from_secs(10));
    assert!(
        heard.stdout.to_lowercase().contains("kitchen"),
        "installed sotto listen: {}{}",
        heard.stdout,
        heard.stderr
    );

    let runtime = dir.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    let (ok, text) = analyze(
        &["verify", "/usr/lib/systemd/system/sotto.service"],
        &runtime,
    );
    assert!(
        ok && text.trim().is_empty(),
        "installed system unit: {text}"
    );
    let (ok, text) = analyze(
        &["verify", "--user", "/usr/lib/systemd/user/sotto.service"],
        &runtime,
    );
    assert!(ok && text.trim().is_empty(), "installed user unit: {text}");
    let man = Command::new("man")
        .args(["-w", "sottod"])
        .output()
        .expect("man");
    assert_eq!(
        String::from_utf8_lossy(&man.stdout).trim(),
        "/usr/share/man/man1/sottod.1.gz",
        "man -w sottod"
    );
    let complete = Command::new("bash")
        .args([
            "-c",
            "source /usr/share/bash-completion/completions/sottod; complete -p sottod",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&complete.stdout).contains("sottod"));

    let out = as_root(&["apt-get", "purge", "-y", "-q", "sotto"]);
    assert!(
        out.status.success(),
        "apt-get purge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!package_installed());
    let left: Vec<&String> = files.iter().filter(|f| Path::new(f).exists()).collect();
    assert!(left.is_empty(), "purge left {left:?}");
}
