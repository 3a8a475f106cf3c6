//! Test helpers: the daemon binary, generated speech, WAV files, a virtual
//! microphone on a private PulseAudio server, and scoring.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// sottod on a private session bus.
pub fn sottod(bus: &PrivateBus) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sottod"));
    for var in [
        "SOTTO_MODEL",
        "SOTTO_DEVICE",
        "SOTTO_BUS",
        "SOTTO_INPUT_FILE",
    ] {
        c.env_remove(var);
    }
    c.env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    c
}

/// A private dbus-daemon (session configuration), stopped on drop.
pub struct PrivateBus {
    _dir: tempfile::TempDir,
    pid: i32,
    pub address: String,
}

impl PrivateBus {
    pub fn start() -> Self {
        Self::with_config(&["--session"])
    }

    /// A bus from explicit dbus-daemon arguments (e.g. a config file).
    pub fn with_config(args: &[&str]) -> Self {
        let dir = scratch();
        let mut cmd = Command::new("dbus-daemon");
        cmd.args(args);
        if args == ["--session"] {
            cmd.arg(format!("--address=unix:path={}/bus", dir.path().display()));
        }
        let out = cmd
            .args([
                "--fork",
                "--print-address=1",
                "--print-pid=1",
                "--nopidfile",
            ])
            .output()
            .expect("dbus-daemon must be installed (scripts/install-deps.sh)");
        assert!(
            out.status.success(),
            "dbus-daemon failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let address = lines.next().expect("bus address").trim().to_string();
        let pid = lines.next().expect("bus pid").trim().parse().expect("pid");
        PrivateBus {
            _dir: dir,
            pid,
            address,
        }
    }

    /// A client command (busctl, gdbus, sotto) on this bus.
    pub fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        c
    }

    /// `busctl --user ARGS` on this bus; its trimmed stdout. Fails the test
    /// when busctl fails.
    pub fn busctl(&self, args: &[&str]) -> String {
        let out = self
            .client("busctl")
            .arg("--user")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "busctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until a daemon owns `org.sotto.Sotto1` on this bus.
    pub fn wait_for_name(&self) {
        let start = Instant::now();
        loop {
            let ok = self
                .client("busctl")
                .args(["--user", "status", "org.sotto.Sotto1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "sottod never took its name"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A property of the daemon as busctl prints it (`s "listening"`).
    pub fn property(&self, name: &str) -> String {
        self.busctl(&sotto_member("get-property", name))
    }

    /// The daemon's `State` property (`listening`, `no-device`, …).
    pub fn state(&self) -> String {
        let out = self.property("State");
        out.trim_start_matches("s ").trim_matches('"').to_string()
    }

    /// Polls `State` until it is `want`; fails the test after `limit`.
    pub fn wait_for_state(&self, want: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            let state = self.state();
            if state == want {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "State stayed {state:?}, expected {want:?} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Calls a method of org.sotto.Sotto1 without arguments.
    pub fn call(&self, method: &str) -> String {
        self.busctl(&sotto_member("call", method))
    }

    /// Calls a method that may fail: `Err` holds busctl's error text.
    pub fn try_call(&self, method: &str) -> Result<String, String> {
        let out = self
            .client("busctl")
            .arg("--user")
            .args(sotto_member("call", method))
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

/// busctl arguments for `verb` (`call`, `get-property`) on a member of the
/// daemon's object.
pub fn sotto_member<'a>(verb: &'a str, member: &'a str) -> [&'a str; 5] {
    [
        verb,
        "org.sotto.Sotto1",
        "/org/sotto/Sotto1",
        "org.sotto.Sotto1",
        member,
    ]
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        kill(self.pid, libc::SIGTERM);
    }
}

/// The default model; the tests need it and say how to get it.
pub fn model_path() -> PathBuf {
    let p = project_root().join("models/ggml-tiny.en.bin");
    assert!(
        p.is_file(),
        "the default model {} is missing: run `make model` (or models/fetch.sh) first",
        p.display()
    );
    p
}

/// The shared test clips (../shared/testdata); required where a test uses them.
pub fn testdata() -> PathBuf {
    let p = project_root().join("../shared/testdata");
    assert!(
        p.join("manifest.tsv").is_file(),
        "../shared/testdata is missing: these accuracy tests need the shared clips beside the project"
    );
    p
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sotto-test-")
        .tempdir()
        .expect("temp dir")
}

/// Mono f32 audio at a rate.
#[derive(Clone)]
pub struct Audio {
    pub rate: u32,
    pub samples: Vec<f32>,
}

pub fn read_wav(path: &Path) -> Audio {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let ch = spec.channels as usize;
    let raw: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.unwrap() as f32 * scale)
                .collect()
        }
    };
    let samples = raw
        .chunks(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect();
    Audio {
        rate: spec.sample_rate,
        samples,
    }
}

pub fn write_wav(path: &Path, audio: &Audio) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in &audio.samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// Speech from espeak-ng (default voice), at its own rate (22050 Hz).
pub fn speak(text: &str) -> Audio {
    let dir = scratch();
    let path = dir.path().join("s.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .expect("espeak-ng must be installed (scripts/install-deps.sh)");
    assert!(status.success(), "espeak-ng failed");
    read_wav(&path)
}

/// Converts with sox (`args` are the output options).
pub fn sox(input: &Path, output: &Path, args: &[&str]) {
    let status = Command::new("sox")
        .arg(input)
        .args(args)
        .arg(output)
        .status()
        .expect("sox must be installed (scripts/install-deps.sh)");
    assert!(status.success(), "sox failed");
}

/// First and last sample above a small level: where the voice really is.
pub fn voiced_span(audio: &Audio) -> (usize, usize) {
    let level = 0.02;
    let first = audio
        .samples
        .iter()
        .position(|s| s.abs() > level)
        .unwrap_or(0);
    let last = audio
        .samples
        .iter()
        .rposition(|s| s.abs() > level)
        .unwrap_or(0);
    (first, last + 1)
}

/// A session built from pieces, remembering where each sentence's voice is.
pub struct Session {
    pub audio: Audio,
    /// (text, start ms, end ms) from the start of the file.
    pub truth: Vec<(String, u64, u64)>,
}

impl Session {
    pub fn new(rate: u32) -> Self {
        Session {
            audio: Audio {
                rate,
                samples: Vec::new(),
            },
            truth: Vec::new(),
        }
    }
    pub fn silence(&mut self, seconds: f32) -> &mut Self {
        let n = (seconds * self.audio.rate as f32) as usize;
        self.audio.samples.extend(std::iter::repeat_n(0.0, n));
        self
    }
    pub fn say(&mut self, text: &str) -> &mut Self {
        let speech = speak(text);
        assert_eq!(
            speech.rate, self.audio.rate,
            "session rate must match espeak's"
        );
        let (a, b) = voiced_span(&speech);
        let offset = self.audio.samples.len();
        let ms = |i: usize| (i as u64 * 1000) / self.audio.rate as u64;
        self.truth
            .push((text.to_string(), ms(offset + a), ms(offset + b)));
        self.audio.samples.extend_from_slice(&speech.samples);
        self
    }
    /// Speaks `text` exactly `gap` seconds after the end of the last voice:
    /// espeak-ng's own padding is cut on both sides.
    pub fn say_after(&mut self, gap: f32, text: &str) -> &mut Self {
        let last_end = self.truth.last().expect("something was said").2;
        let keep = (last_end * self.audio.rate as u64 / 1000) as usize;
        self.audio.samples.truncate(keep);
        self.silence(gap);
        let speech = speak(text);
        let (a, b) = voiced_span(&speech);
        let offset = self.audio.samples.len();
        let ms = |i: usize| (i as u64 * 1000) / self.audio.rate as u64;
        self.truth
            .push((text.to_string(), ms(offset), ms(offset + b - a)));
        self.audio.samples.extend_from_slice(&speech.samples[a..]);
        self
    }

    pub fn write(&self, path: &Path) {
        write_wav(path, &self.audio);
    }
}

/// Espeak's output rate.
pub const ESPEAK_RATE: u32 = 22_050;

/// A finished run of sottod.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line {l:?} is not JSON: {e}"))
            })
            .collect()
    }
    /// The capture clock of the input file's first frame, from the info log.
    pub fn file_origin_ms(&self) -> u64 {
        file_origin_ms(self.stderr.lines()).expect("origin log line")
    }
}

/// The log line that gives an input file's capture clock origin.
pub const ORIGIN_LOG: &str = "plays from capture clock ";

/// The capture clock of the input file's first frame, from sottod's stderr lines.
pub fn file_origin_ms<'a>(mut lines: impl Iterator<Item = &'a str>) -> Option<u64> {
    lines.find_map(|l| {
        l.split(ORIGIN_LOG)
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// Waits for a child with a limit; kills it and fails the test past the limit.
pub fn wait_output(mut child: Child, limit: Duration) -> Run {
    let start = Instant::now();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "process did not finish within {limit:?}; stderr: {}",
                t_err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Runs sottod to completion on its own private bus.
pub fn run_sottod(args: &[&str], limit: Duration) -> Run {
    let bus = PrivateBus::start();
    let child = sottod(&bus)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sottod");
    wait_output(child, limit)
}

/// Asserts the one-line error contract: non-zero exit, one line on stderr that
/// contains `needle`, no panic, no backtrace.
pub fn assert_clean_failure(run: &Run, needle: &str) {
    assert!(
        !run.status.success(),
        "expected failure, got {:?}; stderr {}",
        run.status,
        run.stderr
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got: {:?}",
        run.stderr
    );
    assert!(
        lines[0].contains(needle),
        "stderr {:?} does not mention {needle:?}",
        lines[0]
    );
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("backtrace"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "", "nothing on stdout");
}

/// Utterance ids, start and end from a JSON event stream; checks the invariant
/// (ids from 1, started → ended → transcript|dropped, each exactly once).
pub fn utterances(events: &[Value]) -> Vec<(u64, u64, u64)> {
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    for e in events {
        let id = e["id"].as_u64();
        match e["event"].as_str().unwrap() {
            "speech_started" => {
                let id = id.unwrap();
                assert_eq!(
                    id,
                    out.len() as u64 + 1,
                    "ids increase by one from 1: {events:?}"
                );
                out.push((id, e["start_ms"].as_u64().unwrap(), 0));
            }
            "speech_ended" => {
                let id = id.unwrap();
                let u = out
                    .iter_mut()
                    .find(|u| u.0 == id)
                    .expect("ended after started");
                assert_eq!(u.2, 0, "ended twice");
                u.2 = e["end_ms"].as_u64().unwrap();
            }
            _ => {}
        }
    }
    for (id, _, end) in &out {
        assert!(*end > 0, "utterance {id} never ended");
        let finals = events
            .iter()
            .filter(|e| e["id"].as_u64() == Some(*id))
            .filter(|e| matches!(e["event"].as_str(), Some("transcript" | "dropped")))
            .count();
        assert_eq!(
            finals, 1,
            "utterance {id} needs exactly one transcript or dropped"
        );
    }
    out
}

pub fn transcripts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "transcript")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

pub use sotto::score::{normalize, word_errors};

/// A private PulseAudio server with a null sink whose monitor is the microphone
/// (see TESTING.md). Stopped and cleaned up on drop.
pub struct VirtualMic {
    pub dir: tempfile::TempDir,
    /// The server, while it runs.
    child: Option<Child>,
    /// The bus sottod publishes on in these tests.
    pub bus: PrivateBus,
}

impl VirtualMic {
    pub fn start() -> Self {
        let mut mic = Self::without_server();
        mic.start_server();
        mic
    }

    /// The microphone's environment with no sound server running yet.
    pub fn without_server() -> Self {
        let dir = scratch();
        let d = dir.path();
        for sub in ["home", "runtime", "config"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let pa = d.join("default.pa");
        std::fs::write(
            &pa,
            format!(
                "load-module module-native-protocol-unix auth-anonymous=1 socket={}/native\n\
                 load-module module-null-sink sink_name=vmic rate=48000 channels=1 norewinds=1\n\
                 set-default-sink vmic\nset-default-source vmic.monitor\n",
                d.display()
            ),
        )
        .unwrap();
        VirtualMic {
            dir,
            child: None,
            bus: PrivateBus::start(),
        }
    }

    /// Starts the PulseAudio server (null sink `vmic`, default source
    /// `vmic.monitor`) and waits until it answers.
    pub fn start_server(&mut self) {
        assert!(self.child.is_none(), "the server already runs");
        let d = self.dir.path();
        let pa = d.join("default.pa");
        let mut cmd = Command::new("pulseaudio");
        cmd.args([
            "--daemonize=no",
            "--system=false",
            "--exit-idle-time=-1",
            "-n",
            "-F",
        ])
        .arg(&pa)
        .args([
            "--use-pid-file=no",
            "--realtime=no",
            "--high-priority=no",
            "--disable-shm=yes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        Self::env_into(d, &mut cmd);
        let child = cmd
            .spawn()
            .expect("pulseaudio must be installed (scripts/install-deps.sh)");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ok = self
                .command("pactl")
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ok.map(|s| s.success()).unwrap_or(false) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "pulseaudio did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server outright (SIGKILL: a crash, not a clean exit).
    pub fn kill_server(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.path().join("native"));
    }

    /// Runs `pactl ARGS`; fails the test when it fails.
    pub fn pactl(&self, args: &[&str]) -> String {
        let out = self.command("pactl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "pactl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Removes the microphone (the null sink and its monitor) from the running server.
    pub fn unplug(&self) {
        self.pactl(&["unload-module", "module-null-sink"]);
    }

    /// Brings the microphone back and makes it the default source again.
    pub fn plug_in(&self) {
        self.pactl(&[
            "load-module",
            "module-null-sink",
            "sink_name=vmic",
            "rate=48000",
            "channels=1",
            "norewinds=1",
        ]);
        self.pactl(&["set-default-source", "vmic.monitor"]);
    }

    /// Recording streams the server has open (`pactl list short source-outputs`).
    pub fn recording_streams(&self) -> usize {
        self.pactl(&["list", "short", "source-outputs"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }

    fn env_into(d: &Path, cmd: &mut Command) {
        cmd.env("HOME", d.join("home"))
            .env("XDG_RUNTIME_DIR", d.join("runtime"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("PULSE_SERVER", format!("unix:{}/native", d.display()))
            .env("PULSE_COOKIE", d.join("cookie"))
            .env("PULSE_RUNTIME_PATH", d.join("runtime"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
    }

    /// Points this test process's own audio clients at this server until the
    /// guard drops (the tests run on one thread, so nothing else reads the
    /// environment meanwhile).
    pub fn apply_env(&self) -> EnvGuard {
        let d = self.dir.path();
        let vars = [
            ("PULSE_SERVER", format!("unix:{}/native", d.display())),
            ("PULSE_COOKIE", d.join("cookie").display().to_string()),
            (
                "PULSE_RUNTIME_PATH",
                d.join("runtime").display().to_string(),
            ),
            ("XDG_RUNTIME_DIR", d.join("runtime").display().to_string()),
            ("XDG_CONFIG_HOME", d.join("config").display().to_string()),
            ("HOME", d.join("home").display().to_string()),
        ];
        let saved = vars
            .iter()
            .map(|(k, _)| (k.to_string(), std::env::var_os(k)))
            .collect();
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
        EnvGuard(saved)
    }

    /// A command that talks to this server.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        Self::env_into(self.dir.path(), &mut c);
        c
    }

    /// sottod talking to this server, on the mic's private bus.
    pub fn sottod(&self) -> Command {
        let mut c = sottod(&self.bus);
        Self::env_into(self.dir.path(), &mut c);
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address);
        c
    }

    /// Plays a file into the microphone; returns the wall clock when play began.
    pub fn play(&self, wav: &Path) -> (u64, Child) {
        let t = now_ms();
        let child = self
            .command("paplay")
            .args(["-d", "vmic"])
            .arg(wav)
            .spawn()
            .expect("paplay");
        (t, child)
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        kill(child.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends `sig` to the process `pid` (a child of this test, or a bus daemon
/// it started); a process already gone is not an error.
fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Sends a signal to a process.
pub fn signal(child: &Child, sig: i32) {
    kill(child.id() as i32, sig);
}

/// A running sottod whose stdout (`--json` events) and stderr lines are read
/// as they are written, so a test can act between events.
/// Restores environment variables when dropped.
pub struct EnvGuard(Vec<(String, Option<std::ffi::OsString>)>);

impl Drop for EnvGuard {
    fn drop(&mut self) {
        for (k, v) in self.0.drain(..) {
            match v {
                Some(v) => std::env::set_var(&k, v),
                None => std::env::remove_var(&k),
            }
        }
    }
}

/// An event a real client received, stamped with the client's own clock
/// (Unix epoch ms, fractional) when its line arrived.
pub struct Received {
    pub at_ms: f64,
    pub event: Value,
}

/// Wall clock in fractional milliseconds.
pub fn now_ms_f() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// `sotto listen --json` on `bus`, stamping each line as it arrives.
pub fn timed_listener(bus: &PrivateBus) -> (Child, std::sync::mpsc::Receiver<Received>) {
    use std::io::BufRead;
    let mut child = bus
        .client(env!("CARGO_BIN_EXE_sotto"))
        .args(["listen", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let at_ms = now_ms_f();
            if let Ok(event) = serde_json::from_str(&line) {
                let _ = tx.send(Received { at_ms, event });
            }
        }
    });
    (child, rx)
}

/// What a D-Bus signal may take from the daemon's send to the client's read
/// on this machine (measured: p99 0.25 ms; this leaves room for a busy one).
pub const DELIVERY_SLACK_MS: f64 = 100.0;

/// Every transcript a client received arrived within `bound_ms` of its speech's
/// end (plus delivery), on the client's clock. Returns the latencies seen.
pub fn assert_received_within(received: &[Received], bound_ms: u64) -> Vec<f64> {
    let mut latencies = Vec::new();
    for r in received.iter().filter(|r| r.event["event"] == "transcript") {
        let end = r.event["end_ms"].as_u64().unwrap() as f64;
        let latency = r.at_ms - end;
        assert!(
            latency <= bound_ms as f64 + DELIVERY_SLACK_MS,
            "a client received a transcript {latency:.0} ms after its speech ended, bound {bound_ms} ms: {}",
            r.event
        );
        latencies.push(latency);
    }
    latencies
}

pub struct LiveDaemon {
    pub child: Child,
    lines: std::sync::mpsc::Receiver<(bool, String)>,
    readers: Vec<std::thread::JoinHandle<()>>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    /// Stdout lines already returned by `wait_event`.
    cursor: usize,
}

impl LiveDaemon {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sottod");
        let (tx, lines) = std::sync::mpsc::channel();
        let mut readers = Vec::new();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (is_out, pipe) in [
            (true, Box::new(out) as Box<dyn Read + Send>),
            (false, Box::new(err)),
        ] {
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send((is_out, line));
                }
            }));
        }
        LiveDaemon {
            child,
            lines,
            readers,
            stdout: Vec::new(),
            stderr: Vec::new(),
            cursor: 0,
        }
    }

    /// Takes the lines written so far, waiting at most `wait` for one.
    fn pump(&mut self, wait: Duration) {
        if let Ok((is_out, line)) = self.lines.recv_timeout(wait) {
            if is_out {
                self.stdout.push(line);
            } else {
                self.stderr.push(line);
            }
        }
        while let Ok((is_out, line)) = self.lines.try_recv() {
            if is_out {
                self.stdout.push(line);
            } else {
                self.stderr.push(line);
            }
        }
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_log(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.stderr.iter().any(|l| l.contains(needle)) {
            assert!(
                start.elapsed() < limit,
                "no {needle:?} on stderr within {limit:?}: {:#?}",
                self.stderr
            );
            self.pump(Duration::from_millis(50));
        }
    }

    /// Waits for the next `--json` event (after those returned before) that
    /// matches `want`, and returns it.
    pub fn wait_event(&mut self, want: impl Fn(&Value) -> bool, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            while self.cursor < self.stdout.len() {
                let line = &self.stdout[self.cursor];
                self.cursor += 1;
                let event: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stdout line {line:?} is not JSON: {e}"));
                if want(&event) {
                    return event;
                }
            }
            assert!(
                start.elapsed() < limit,
                "no matching event within {limit:?}; events: {:#?}; stderr: {:#?}",
                self.stdout,
                self.stderr
            );
            self.pump(Duration::from_millis(50));
        }
    }

    /// The next matching event if one arrives within `wait`.
    pub fn try_event(&mut self, want: impl Fn(&Value) -> bool, wait: Duration) -> Option<Value> {
        let start = Instant::now();
        loop {
            while self.cursor < self.stdout.len() {
                let event: Value = serde_json::from_str(&self.stdout[self.cursor]).expect("JSON");
                self.cursor += 1;
                if want(&event) {
                    return Some(event);
                }
            }
            if start.elapsed() >= wait {
                return None;
            }
            self.pump(Duration::from_millis(20));
        }
    }

    /// Has the process exited?
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Every `--json` event so far.
    pub fn events(&mut self) -> Vec<Value> {
        self.pump(Duration::ZERO);
        self.stdout
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }

    /// Sends `sig` and waits (at most `limit`) for the exit; returns the run
    /// and how long the exit took after the signal.
    pub fn stop(mut self, sig: i32, limit: Duration) -> (Run, Duration) {
        let t = Instant::now();
        signal(&self.child, sig);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if t.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sottod did not exit within {limit:?} of signal {sig}; stderr: {:#?}",
                    self.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = t.elapsed();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.pump(Duration::ZERO);
        let run = Run {
            status,
            stdout: self.stdout.join("\n") + "\n",
            stderr: self.stderr.join("\n") + "\n",
        };
        (run, took)
    }

    /// CPU time (user + system) the process has used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for LiveDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A long session built deterministically from ../shared/testdata: for each
/// clean speech clip (`speech*` in the manifest, in its order), 1 s of silence, the clip, 1 s of silence
/// and the first 6 s of a non-speech clip; the first `clips` speech clips (all
/// with `None`) make one pass, repeated until `min_seconds` (0: one pass).
pub struct SharedSession {
    /// 16 kHz mono.
    pub audio: Audio,
    /// (normalised transcript, start ms, end ms) of each speech clip.
    pub speech: Vec<(String, u64, u64)>,
    /// (start ms, end ms) of each non-speech clip.
    pub nonspeech: Vec<(u64, u64)>,
    /// Length of one pass over the clips, in seconds.
    pub cycle_seconds: f64,
}

pub fn shared_session(min_seconds: f64, clips: Option<usize>) -> SharedSession {
    let root = testdata();
    let manifest = std::fs::read_to_string(root.join("manifest.tsv")).unwrap();
    let dir = scratch();
    let load = |file: &str| {
        let out = dir.path().join("clip.wav");
        sox(
            &root.join(file),
            &out,
            &["-r", "16000", "-c", "1", "-b", "16"],
        );
        read_wav(&out)
    };
    let mut speech_clips = Vec::new();
    let mut other_clips = Vec::new();
    for line in manifest.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        match f[2] {
            c if c.starts_with("speech") => speech_clips.push((load(f[0]), f[5].to_string())),
            c if c.starts_with("nonspeech") => {
                let mut a = load(f[0]);
                a.samples.truncate(6 * 16_000);
                other_clips.push(a);
            }
            _ => {}
        }
    }
    assert!(!speech_clips.is_empty() && !other_clips.is_empty());
    speech_clips.truncate(clips.unwrap_or(usize::MAX));
    let mut s = SharedSession {
        audio: Audio {
            rate: 16_000,
            samples: Vec::new(),
        },
        speech: Vec::new(),
        nonspeech: Vec::new(),
        cycle_seconds: 0.0,
    };
    let ms = |n: usize| n as u64 * 1000 / 16_000;
    let second = vec![0.0f32; 16_000];
    'outer: loop {
        for (i, (clip, text)) in speech_clips.iter().enumerate() {
            s.audio.samples.extend_from_slice(&second);
            let at = s.audio.samples.len();
            s.audio.samples.extend_from_slice(&clip.samples);
            s.speech
                .push((text.clone(), ms(at), ms(s.audio.samples.len())));
            s.audio.samples.extend_from_slice(&second);
            let other = &other_clips[i % other_clips.len()];
            let at = s.audio.samples.len();
            s.audio.samples.extend_from_slice(&other.samples);
            s.nonspeech.push((ms(at), ms(s.audio.samples.len())));
            if min_seconds > 0.0 && s.audio.samples.len() as f64 >= min_seconds * 16_000.0 {
                break 'outer;
            }
        }
        if s.cycle_seconds == 0.0 {
            s.cycle_seconds = s.audio.samples.len() as f64 / 16_000.0;
        }
        if s.audio.samples.len() as f64 >= min_seconds * 16_000.0 {
            break;
        }
    }
    if s.cycle_seconds == 0.0 {
        s.cycle_seconds = s.audio.samples.len() as f64 / 16_000.0;
    }
    s
}

/// The final event (`transcript` or `dropped`) of utterance `id`, if any yet.
pub fn ending_of(events: &[Value], id: u64) -> Option<&Value> {
    events.iter().find(|e| is_ending_of(e, id))
}

pub fn is_ending_of(event: &Value, id: u64) -> bool {
    event["id"].as_u64() == Some(id)
        && matches!(event["event"].as_str(), Some("transcript" | "dropped"))
}

/// Resident memory of sottod over a long session fast-forwarded with
/// `--no-pace` (see [`shared_session`]), sampled at every utterance's end.
pub struct LongRun {
    /// RSS just after the file started playing, KiB.
    pub start_kib: u64,
    /// The reference point: five minutes of audio, never before one whole pass
    /// (the first pass meets every utterance length once), at most a third of
    /// the run; its position in seconds and RSS.
    pub reference_s: f64,
    pub reference_kib: u64,
    /// The highest RSS after the reference point (not just the last sample:
    /// the last utterances end while the input thread frees its buffers).
    pub peak_kib: u64,
    /// Position of the last sample, and how many utterances were sampled.
    pub end_s: f64,
    pub utterances: usize,
    /// (audio position s, RSS KiB) at each utterance's end.
    pub samples: Vec<(f64, u64)>,
}

impl LongRun {
    pub fn growth_kib(&self) -> i64 {
        self.peak_kib as i64 - self.reference_kib as i64
    }

    pub fn measure(seconds: f64, clips: Option<usize>) -> LongRun {
        let session = shared_session(seconds, clips);
        let total_s = session.audio.samples.len() as f64 / 16_000.0;
        let reference_s = session.cycle_seconds.max((total_s / 3.0).min(300.0));
        let dir = scratch();
        let wav = dir.path().join("session.wav");
        write_wav(&wav, &session.audio);
        drop(session);

        let bus = PrivateBus::start();
        let mut cmd = sottod(&bus);
        cmd.args(["--input-file", wav.to_str().unwrap(), "--no-pace", "--json"]);
        let mut daemon = LiveDaemon::spawn(cmd);
        daemon.wait_log(ORIGIN_LOG, Duration::from_secs(60));
        let origin = file_origin_ms(daemon.stderr.iter().map(String::as_str)).expect("origin");
        let start_kib = daemon.rss_kib();
        let mut samples: Vec<(f64, u64)> = Vec::new();
        let limit = Duration::from_secs_f64(60.0 + total_s);
        let started = Instant::now();
        let mut ends = std::collections::HashMap::new();
        while !daemon.exited() {
            assert!(started.elapsed() < limit, "the session did not finish");
            let Some(event) = daemon.try_event(
                |e| {
                    matches!(
                        e["event"].as_str(),
                        Some("speech_ended" | "transcript" | "dropped")
                    )
                },
                Duration::from_millis(200),
            ) else {
                continue;
            };
            if event["event"] == "speech_ended" {
                ends.insert(event["id"].as_u64(), event["end_ms"].as_u64().unwrap());
                continue;
            }
            let end_ms = ends.get(&event["id"].as_u64()).copied().unwrap_or(origin);
            let rss = daemon.rss_kib();
            if rss > 0 {
                samples.push((end_ms.saturating_sub(origin) as f64 / 1000.0, rss));
            }
        }
        let (run, _) = daemon.stop(15, Duration::from_secs(10));
        assert!(run.status.success(), "{}", run.stderr);
        let (reference_s, reference_kib) = samples
            .iter()
            .find(|(p, _)| *p >= reference_s)
            .copied()
            .expect("an utterance after the reference point");
        let peak_kib = samples
            .iter()
            .filter(|(p, _)| *p >= reference_s)
            .map(|&(_, r)| r)
            .max()
            .unwrap_or(reference_kib);
        LongRun {
            start_kib,
            reference_s,
            reference_kib,
            peak_kib,
            end_s: samples.last().map(|s| s.0).unwrap_or(0.0),
            utterances: samples.len(),
            samples,
        }
    }
}
