//! How many threads a decode gets, and how they wait for each other.
//!
//! ggml's threads meet at a barrier after every operation. Built with its own
//! thread pool they spin there without bound, so a decode is only as fast as
//! its most descheduled thread: beside two CPU-bound processes on 2 cores,
//! 2 threads took 1803 ms where 1 took 954 ms (3.3 s clip, tiny.en, median
//! of 8). sotto builds ggml with OpenMP instead and bounds the spin
//! (`GOMP_SPINCOUNT`, see [`bounded_spin`]): a thread whose peer is
//! descheduled sleeps on a futex after a short spin and gives the core back.
//! Measured the same way, 1 / 2 threads: idle 488 / 290 ms; two busy
//! processes 951 / 591 ms; four busy processes 1345 / 1014 ms (the `load`
//! bench step shows the same on the daemon). Every core helps, loaded
//! or not, so the automatic choice is simply the cores, at most 4.

/// `--threads auto`: the machine's cores, at most 4 (more never helped tiny
/// or base).
pub fn auto_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4)
}

/// The environment variable that bounds how long an OpenMP thread spins at a
/// barrier before it sleeps.
pub const SPIN_VARIABLE: &str = "GOMP_SPINCOUNT";
/// Spins before sleeping: about a microsecond of waiting. Measured with the
/// clip above, 1000 kept the idle 2-thread decode at its unbounded speed
/// (250–290 ms) and was the fastest beside two busy processes (591–702 ms);
/// `OMP_WAIT_POLICY=passive` (no spin) cost 20 % idle.
pub const SPIN_COUNT: &str = "1000";

/// What to do about the spin bound at start-up, given the process's
/// `GOMP_SPINCOUNT` and `OMP_WAIT_POLICY`: `true` when neither is set and
/// the process must be restarted with [`SPIN_VARIABLE`]` = `[`SPIN_COUNT`]
/// (libgomp reads them once, when it is loaded). A value the user set wins.
pub fn needs_bounded_spin(
    spin: Option<&std::ffi::OsStr>,
    policy: Option<&std::ffi::OsStr>,
) -> bool {
    spin.is_none() && policy.is_none()
}

/// Make sure ggml's OpenMP threads spin a bounded time: when the environment
/// does not set it, exec this same program again with [`SPIN_VARIABLE`] set
/// (same pid, arguments and descriptors). Call first thing in `main`, before
/// any thread exists. Returns only when no restart was needed, or with the
/// reason the exec failed (then the process runs on with libgomp's default).
pub fn bounded_spin() -> Result<(), std::io::Error> {
    use std::os::unix::process::CommandExt;
    if !needs_bounded_spin(
        std::env::var_os(SPIN_VARIABLE).as_deref(),
        std::env::var_os("OMP_WAIT_POLICY").as_deref(),
    ) {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    Err(std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env(SPIN_VARIABLE, SPIN_COUNT)
        .exec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn auto_is_the_cores_within_its_ceiling() {
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(auto_threads(), cores.clamp(1, 4));
    }

    #[test]
    fn the_spin_is_bounded_unless_the_user_chose() {
        assert!(needs_bounded_spin(None, None));
        assert!(!needs_bounded_spin(Some(OsStr::new("5000")), None));
        assert!(!needs_bounded_spin(None, Some(OsStr::new("active"))));
    }
}
