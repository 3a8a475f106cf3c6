//! How many threads a decode gets. ggml's threads meet at a barrier after every
//! operation and spin there, so a decode is only as fast as its most
//! descheduled thread. Measured on 2 cores with tiny.en (3.3 s clip, median
//! of 8): idle, 1 thread 544 ms and 2 threads 283 ms; beside two CPU-bound
//! processes, 1 thread 954 ms and 2 threads 1803 ms; 3 threads took 10 s idle
//! or not. So the automatic choice gives a decode only the cores nothing else
//! wants at the moment it starts.

use std::io::Read;

/// `--threads`: a fixed count, or the automatic choice up to a ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadPolicy {
    /// Always this many.
    Fixed(usize),
    /// The idle cores when a decode starts: at least 1, at most `max`.
    Auto { cores: usize, max: usize },
}

impl ThreadPolicy {
    /// The automatic choice for this machine: up to its cores, at most 4
    /// (more never helped tiny or base).
    pub fn auto() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        ThreadPolicy::Auto {
            cores,
            max: cores.clamp(1, 4),
        }
    }

    /// Threads for a decode that starts while `others` runnable tasks, not
    /// counting the caller, want a core (`None`: not known, then the ceiling).
    pub fn choose(self, others: Option<usize>) -> usize {
        match self {
            ThreadPolicy::Fixed(n) => n,
            ThreadPolicy::Auto { cores, max } => match others {
                Some(busy) => cores.saturating_sub(busy).clamp(1, max),
                None => max,
            },
        }
    }

    /// The most threads a decode may get.
    pub fn max(self) -> usize {
        match self {
            ThreadPolicy::Fixed(n) => n,
            ThreadPolicy::Auto { max, .. } => max,
        }
    }
}

/// Runnable tasks on the machine besides the caller, from the kernel's
/// `procs_running` in `/proc/stat`: the least of three reads 2 ms apart, so a
/// thread that runs for a moment (sotto's own dsp thread, a timer) does not
/// count as load. `None` where `/proc/stat` cannot be read.
pub fn runnable_others() -> Option<usize> {
    let mut least: Option<usize> = None;
    let mut buf = Vec::with_capacity(4096);
    for i in 0..3 {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        buf.clear();
        let mut file = std::fs::File::open("/proc/stat").ok()?;
        file.read_to_end(&mut buf).ok()?;
        let running = procs_running(&String::from_utf8_lossy(&buf))?;
        least = Some(least.map_or(running, |l| l.min(running)));
    }
    // The caller is running while it reads.
    least.map(|n| n.saturating_sub(1))
}

/// The `procs_running` line of a `/proc/stat` text.
fn procs_running(stat: &str) -> Option<usize> {
    stat.lines()
        .find_map(|l| l.strip_prefix("procs_running "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_the_idle_cores_within_its_bounds() {
        let two = ThreadPolicy::Auto { cores: 2, max: 2 };
        assert_eq!(two.choose(Some(0)), 2);
        assert_eq!(two.choose(Some(1)), 1);
        assert_eq!(two.choose(Some(2)), 1, "never fewer than one");
        assert_eq!(two.choose(Some(9)), 1);
        assert_eq!(two.choose(None), 2, "unknown load: the ceiling");
        let eight = ThreadPolicy::Auto { cores: 8, max: 4 };
        assert_eq!(eight.choose(Some(0)), 4, "never more than the ceiling");
        assert_eq!(eight.choose(Some(5)), 3);
        assert_eq!(eight.choose(Some(7)), 1);
    }

    #[test]
    fn fixed_ignores_the_load() {
        assert_eq!(ThreadPolicy::Fixed(2).choose(Some(5)), 2);
        assert_eq!(ThreadPolicy::Fixed(3).choose(None), 3);
    }

    #[test]
    fn procs_running_is_read_from_proc_stat() {
        let stat = "cpu  1 2 3\nctxt 99\nprocs_running 3\nprocs_blocked 0\n";
        assert_eq!(procs_running(stat), Some(3));
        assert_eq!(procs_running("cpu 1 2 3\n"), None);
        // This very test is running, so the machine's count is readable here.
        assert!(runnable_others().is_some());
    }

    #[test]
    fn busy_processes_are_seen_as_load() {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let before = runnable_others().expect("/proc/stat");
        let spinners: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let during = runnable_others().expect("/proc/stat");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for s in spinners {
            s.join().unwrap();
        }
        assert!(
            during >= 2,
            "two spinning threads must count as load: {before} before, {during} during"
        );
    }
}
