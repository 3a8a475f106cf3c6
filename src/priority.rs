//! Thread priorities within what an unprivileged process may set: a thread
//! may always raise its own nice value (yield more), never lower it. The
//! threads that serve the bus run at [`BUS_NICE`] above the rest, so a client
//! that floods sottod with calls takes CPU from the bus threads, not from the
//! capture, dsp and whisper threads. Nice values weigh threads against each
//! other inside sottod (and against other processes in the same scheduling
//! group); what sottod gets against the rest of the machine is the unit's
//! `CPUWeight=` (see the units in `systemd/`).

use std::io;

/// How much nicer than the process the bus threads are: 10 steps is about a
/// tenth of the CPU weight, so when a bus thread and the whisper thread want
/// the same core, the whisper thread gets ~90 % of it.
pub const BUS_NICE: i32 = 10;

/// The calling thread's nice value.
pub fn this_thread_nice() -> io::Result<i32> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as libc::id_t;
    // getpriority may return -1 as a value; errno tells an error apart.
    // SAFETY: errno is thread-local; getpriority only reads.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
        if nice == -1 && *libc::__errno_location() != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(nice)
    }
}

/// Raises the calling thread's nice value by `steps` (Linux applies
/// `setpriority` on a thread id to that thread alone). Threads it spawns
/// afterwards inherit the new value. Returns the new value.
pub fn lower_this_thread(steps: i32) -> io::Result<i32> {
    let nice = (this_thread_nice()? + steps).min(19);
    // SAFETY: gettid has no preconditions; setpriority on our own thread id.
    let tid = unsafe { libc::gettid() } as libc::id_t;
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(nice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_a_thread_leaves_the_others_alone() {
        let before = this_thread_nice().unwrap();
        let lowered = std::thread::spawn(|| lower_this_thread(3).unwrap())
            .join()
            .unwrap();
        assert_eq!(lowered, (before + 3).min(19));
        assert_eq!(
            this_thread_nice().unwrap(),
            before,
            "only the thread that asked"
        );
        let (parent, child) = std::thread::spawn(|| {
            let parent = lower_this_thread(2).unwrap();
            let child = std::thread::spawn(|| this_thread_nice().unwrap())
                .join()
                .unwrap();
            (parent, child)
        })
        .join()
        .unwrap();
        assert_eq!(child, parent, "a thread spawned after inherits the value");
    }
}
