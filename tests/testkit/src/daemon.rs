//! Runs of sottod: on a private bus, to completion or live (reading its
//! events as they come), signals, and the one-line error contract.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::*;

/// sottod on a private session bus.
pub fn sottod(bus: &PrivateBus) -> Command {
    let mut c = Command::new(bin("sottod"));
    // Only what the test gives: no setting from the caller's environment
    // (every flag has a SOTTO_ variable), nor its OpenMP choices.
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("SOTTO_") || name == "GOMP_SPINCOUNT" || name == "OMP_WAIT_POLICY" {
            c.env_remove(&var);
        }
    }
    c.env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    c
}

/// A finished run of sottod.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Self {
        Run {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }
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
    run_sottod_with(args, &[], limit)
}

/// [`run_sottod`] with more environment variables.
pub fn run_sottod_with(args: &[&str], env: &[(&str, &std::ffi::OsStr)], limit: Duration) -> Run {
    let bus = PrivateBus::start();
    let child = sottod(&bus)
        .envs(env.iter().copied())
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

/// Sends `sig` to the process `pid` (a child of this test, or a bus daemon
/// it started); a process already gone is not an error.
pub(crate) fn kill(pid: i32, sig: i32) {
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

    /// Waits for a stderr line containing `needle`, and returns it.
    pub fn wait_log(&mut self, needle: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.stderr.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
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
    pub fn stop(self, sig: i32, limit: Duration) -> (Run, Duration) {
        let t = Instant::now();
        signal(&self.child, sig);
        let run = self.finish(limit, &format!("of signal {sig}"));
        (run, t.elapsed())
    }

    /// Waits (at most `limit`) for the process to end by itself, as a file
    /// input does at its end.
    pub fn wait_exit(self, limit: Duration) -> Run {
        self.finish(limit, "without a signal")
    }

    fn finish(mut self, limit: Duration, what: &str) -> Run {
        let t = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if t.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sottod did not exit within {limit:?} {what}; stderr: {:#?}",
                    self.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.pump(Duration::ZERO);
        Run {
            status,
            stdout: self.stdout.join("\n") + "\n",
            stderr: self.stderr.join("\n") + "\n",
        }
    }

    /// CPU time (user + system) the process has used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.child.id())
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

/// Watches process `pid` on a thread: joined, its CPU ticks at the last
/// reading before it exited (`/proc` forgets them at the exit).
pub fn last_cpu_ticks(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut last = 0;
        while std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
            last = cpu_ticks(pid).max(last);
            std::thread::sleep(Duration::from_millis(100));
        }
        last
    })
}

/// CPU time (user + system) process `pid` has used, in clock ticks; 0 once it
/// is gone.
pub fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// Clock ticks per second, the unit of [`cpu_ticks`].
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// sottod on a private bus reading `wav` paced, with `--json` and `args`;
/// the run, which must have succeeded.
pub fn play_file(wav: &std::path::Path, args: &[&str], limit: Duration) -> Run {
    let bus = PrivateBus::start();
    let child = sottod(&bus)
        .args(["--input-file", wav.to_str().unwrap(), "--json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sottod");
    let run = wait_output(child, limit);
    assert!(run.status.success(), "{}", run.stderr);
    run
}

/// The transcripts of a run's events.
pub fn transcript_events(run: &Run) -> Vec<Value> {
    run.events()
        .into_iter()
        .filter(|e| e["event"] == "transcript")
        .collect()
}

/// Push-to-talk's open times (ms from StartUtterance to a playing stream),
/// from sottod's log lines, sorted.
pub fn push_to_talk_open_ms(stderr: &str) -> Vec<u64> {
    let mut ms: Vec<u64> = stderr
        .lines()
        .filter_map(|l| {
            l.split("microphone opened ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    ms.sort_unstable();
    ms
}
