//! Process measurements: resident memory, and memory over a long session.

use std::time::{Duration, Instant};

use crate::*;

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

/// CPU-bound processes (`sh -c 'while :; do :; done'`, nice 0), killed on drop:
/// the load an application beside sottod puts on the cores.
pub struct BusyProcesses {
    children: Vec<std::process::Child>,
}

impl BusyProcesses {
    pub fn start(n: usize) -> Self {
        let children = (0..n)
            .map(|_| {
                std::process::Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(std::process::Stdio::null())
                    .spawn()
                    .expect("start a busy process")
            })
            .collect();
        BusyProcesses { children }
    }

    /// Stops them now.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for BusyProcesses {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every thread of process `pid`: (name, nice value), from `/proc/PID/task`.
pub fn thread_nices(pid: u32) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        // Fields after the name: state is the 3rd field of the line, nice the 19th.
        let nice = stat[close + 2..]
            .split_whitespace()
            .nth(16)
            .and_then(|v| v.parse().ok());
        if let Some(nice) = nice {
            out.push((name, nice));
        }
    }
    out
}
