//! Privacy you can test: the system-bus policy keeps transcripts to group
//! `sotto`, and a transcription run leaves no files, opens no inet socket and
//! keeps the words off stderr at the default log level.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sotto_testkit::*;

const OUTSIDER: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

fn require_sotto_user() {
    let ok = Command::new("getent")
        .args(["passwd", "sotto"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the system user 'sotto' is missing: run scripts/install-deps.sh --test-user as root (make test does)"
    );
}

fn as_user(ids: &[&str], program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("setpriv");
    c.args(ids).arg(program);
    c
}

fn open_for_all(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A system-like bus as Debian's system.conf sets it up (default policy denies
/// owning names and method calls, allows signals and replies), with the
/// project's policy file included as installed.
fn policy_bus(dir: &Path) -> PrivateBus {
    let conf = dir.join("system.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <include>{}</include>
</busconfig>
"#,
            dir.display(),
            project_root().join("systemd/org.sotto.Sotto1.conf").display()
        ),
    )
    .unwrap();
    PrivateBus::with_config(&[&format!("--config-file={}", conf.display())])
}

fn spawn(mut cmd: Command, bus: &PrivateBus) -> Child {
    cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux)")
}

fn busctl_as(ids: &[&str], bus: &PrivateBus, args: &[&str]) -> (bool, String) {
    let out = as_user(ids, "busctl")
        .arg(format!("--address={}", bus.address))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn only_group_sotto_can_control_read_or_hear_the_daemon_on_the_system_bus() {
    model_path();
    require_sotto_user();
    let dir = scratch();
    open_for_all(dir.path());
    let bus = policy_bus(dir.path());
    let wav = dir.path().join("s.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(3.0).say("turn off the fan").silence(2.0);
    s.write(&wav);
    open_for_all(&wav);
    let sottod = env!("CARGO_BIN_EXE_sottod");
    let model = model_path();

    // Someone else cannot take the name.
    let mut impostor = as_user(&OUTSIDER, sottod);
    impostor.args([
        "--bus",
        "system",
        "--model",
        model.to_str().unwrap(),
        "--input-file",
        wav.to_str().unwrap(),
    ]);
    let run = wait_output(spawn(impostor, &bus), Duration::from_secs(20));
    assert_clean_failure(&run, "the system bus refused org.sotto.Sotto1");

    let mut daemon = as_user(&["--reuid=sotto", "--regid=sotto", "--init-groups"], sottod);
    daemon.args([
        "--bus",
        "system",
        "--model",
        model.to_str().unwrap(),
        "--input-file",
        wav.to_str().unwrap(),
    ]);
    let daemon = spawn(daemon, &bus);
    let start = Instant::now();
    while !busctl_as(&["--reuid=0"], &bus, &["status", "org.sotto.Sotto1"]).0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the daemon never took its name"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let outsider_listen = spawn(
        {
            let mut c = as_user(&OUTSIDER, bin("sotto"));
            c.args(["--system", "listen"]);
            c
        },
        &bus,
    );
    let member_listen = spawn(
        {
            let mut c = as_user(
                &["--reuid=65534", "--regid=65534", "--groups=sotto"],
                bin("sotto"),
            );
            c.args(["--system", "listen"]);
            c
        },
        &bus,
    );
    let (ok, text) = busctl_as(&OUTSIDER, &bus, &sotto_member("call", "Pause"));
    assert!(
        !ok && (text.contains("AccessDenied") || text.contains("Access denied")),
        "outsider Pause: {text}"
    );
    let (ok, text) = busctl_as(&OUTSIDER, &bus, &sotto_member("get-property", "State"));
    assert!(!ok, "outsider read State: {text}");
    let member = ["--reuid=65534", "--regid=65534", "--groups=sotto"];
    let (ok, text) = busctl_as(&member, &bus, &sotto_member("get-property", "State"));
    assert!(ok && text.starts_with("s \""), "member read State: {text}");
    // Resume while listening changes nothing, but proves a member may call
    // (before the model is loaded it is refused: nothing is open yet).
    let start = Instant::now();
    while busctl_as(&member, &bus, &sotto_member("get-property", "State"))
        .1
        .trim()
        != "s \"listening\""
    {
        assert!(start.elapsed() < Duration::from_secs(20), "never listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, text) = busctl_as(&member, &bus, &sotto_member("call", "Resume"));
    assert!(ok, "member Resume: {text}");

    let run = wait_output(daemon, Duration::from_secs(30));
    assert!(run.status.success(), "{}", run.stderr);
    let outsider = wait_output(outsider_listen, Duration::from_secs(10));
    let member = wait_output(member_listen, Duration::from_secs(10));
    assert_eq!(outsider.stdout, "", "an outsider heard a transcript");
    assert_eq!(
        member.stdout.lines().map(normalize).collect::<Vec<_>>(),
        vec!["turn off the fan"],
        "{}",
        member.stderr
    );
}

#[test]
fn a_transcription_leaves_no_files_no_inet_sockets_and_no_words_on_stderr() {
    model_path();
    let bus = PrivateBus::start();
    let dir = scratch();
    let wav = dir.path().join("s.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.5)
        .say("the secret password is banana")
        .silence(1.0)
        .say("meet me at the harbour")
        .silence(1.0);
    s.write(&wav);
    let home = dir.path().join("home");
    let xdg = dir.path().join("xdg");
    let tmp = dir.path().join("tmp");
    for d in [&home, &xdg, &tmp] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut child = sottod(&bus)
        .args(["--input-file", wav.to_str().unwrap(), "--json"])
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &xdg)
        .env("XDG_CACHE_HOME", &xdg)
        .env("XDG_CONFIG_HOME", &xdg)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While it runs: no inet socket among its file descriptors.
    std::thread::sleep(Duration::from_millis(1500));
    let inet_inodes: String = [
        "/proc/net/tcp",
        "/proc/net/tcp6",
        "/proc/net/udp",
        "/proc/net/udp6",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .collect();
    let fds = std::fs::read_dir(format!("/proc/{}/fd", child.id())).unwrap();
    for fd in fds.flatten() {
        let target = std::fs::read_link(fd.path())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            assert!(
                !inet_inodes.split_whitespace().any(|w| w == inode),
                "sottod holds an inet socket (inode {inode})"
            );
        }
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let run = wait_output(child, Duration::from_secs(30));
    assert!(run.status.success(), "{}", run.stderr);
    let heard = transcripts(
        &Run {
            status: run.status,
            stdout,
            stderr: String::new(),
        }
        .events(),
    )
    .join(" ");
    assert!(
        normalize(&heard).contains("banana"),
        "the run transcribed: {heard}"
    );
    for word in ["secret", "password", "banana", "harbour", "harbor"] {
        assert!(
            !run.stderr.to_lowercase().contains(word),
            "stderr shows {word:?}: {}",
            run.stderr
        );
    }
    for d in [&home, &xdg, &tmp] {
        assert_eq!(
            std::fs::read_dir(d).unwrap().count(),
            0,
            "sottod wrote into {}",
            d.display()
        );
    }
}
