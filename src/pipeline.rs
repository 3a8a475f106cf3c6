//! The protocol between the stages: what passes from the dsp thread to the
//! whisper thread, the two signals that cross stages outside a channel, the
//! rate Whisper works at and the capture clock.
//!
//! *Architecture invariant:* this module depends on nothing else in the crate
//! but [`crate::endpoint`] (itself a leaf); every stage imports it, and no
//! stage imports another stage's internals to talk to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::endpoint::EndRule;

/// Whisper works on 16 kHz mono audio: every stage after the resampler uses it.
pub const WHISPER_RATE: u32 = 16_000;

/// The capture clock's unit: wall-clock time as Unix epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds of audio in `n` samples at [`WHISPER_RATE`].
pub fn samples_to_ms(n: usize) -> u64 {
    n as u64 * 1000 / u64::from(WHISPER_RATE)
}

/// One utterance's audio, as the segmenter cut it.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub id: u64,
    /// 16 kHz mono: pre-roll, the speech, and a short tail.
    pub samples: Vec<f32>,
    /// Capture clock (Unix epoch ms) of the first voiced frame.
    pub start_ms: u64,
    /// Capture clock (Unix epoch ms) of the end of the last voiced frame.
    pub end_ms: u64,
    /// What closed it (for a tentative utterance: [`EndRule::Silence`]).
    pub end_rule: EndRule,
}

/// Work for the whisper thread, from the dsp thread.
#[derive(Debug)]
pub enum Job {
    /// The audio an utterance will end with if the silence holds: decode it
    /// now, during the silence, while [`Speculation`] still names it.
    Speculate(Utterance),
    /// A closed utterance, closed at `closed_ms` (wall clock).
    Final {
        utterance: Utterance,
        closed_ms: u64,
    },
}

/// Which utterance's tentative audio is still current. The dsp thread names an
/// utterance when it sends [`Job::Speculate`] and withdraws it when speech
/// resumes; the whisper thread's speculative decode stops as soon as its
/// utterance is no longer current. Clones share one signal.
#[derive(Debug, Clone, Default)]
pub struct Speculation(Arc<AtomicU64>);

/// No utterance is named (ids start at 1).
const NOBODY: u64 = 0;

impl Speculation {
    /// `id`'s tentative audio is now the current one (replacing any other).
    pub fn name(&self, id: u64) {
        self.0.store(id, Ordering::Release);
    }

    /// Speech resumed in `id`: its tentative audio is stale. A later utterance
    /// named meanwhile stays current.
    pub fn withdraw(&self, id: u64) {
        let _ = self
            .0
            .compare_exchange(id, NOBODY, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Is `id`'s tentative audio still the current one?
    pub fn is_current(&self, id: u64) -> bool {
        id != NOBODY && self.0.load(Ordering::Acquire) == id
    }
}

/// Partial results: the newest snapshot of an open utterance's audio, for
/// an interim decode. The dsp thread offers one (replacing any the whisper
/// thread has not taken: a busy decoder skips partials, it never queues
/// them) and withdraws the utterance when its speech pauses or ends; the
/// whisper thread takes the snapshot when it has nothing else to do and
/// stops an interim decode whose utterance is withdrawn. Clones share one
/// slot.
#[derive(Clone)]
pub struct PartialSlot(Arc<PartialInner>);

struct PartialInner {
    latest: std::sync::Mutex<Option<Utterance>>,
    current: AtomicU64,
    /// The last interim decode's wall time, ms (the dsp thread paces by it).
    decode_ms: AtomicU64,
    wake_tx: crossbeam_channel::Sender<()>,
    wake_rx: crossbeam_channel::Receiver<()>,
}

impl Default for PartialSlot {
    fn default() -> Self {
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        Self(Arc::new(PartialInner {
            latest: std::sync::Mutex::new(None),
            current: AtomicU64::new(NOBODY),
            decode_ms: AtomicU64::new(0),
            wake_tx,
            wake_rx,
        }))
    }
}

impl PartialSlot {
    fn latest(&self) -> std::sync::MutexGuard<'_, Option<Utterance>> {
        // A plain Option: a panic elsewhere cannot leave it torn.
        self.0.latest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The dsp thread: the audio of `utterance` so far.
    pub fn offer(&self, utterance: Utterance) {
        self.0.current.store(utterance.id, Ordering::Release);
        *self.latest() = Some(utterance);
        let _ = self.0.wake_tx.try_send(());
    }

    /// The dsp thread: `id`'s speech paused or ended; no more partials of it.
    /// Called for every block while the utterance is silent: only the first
    /// call does anything (an offer of `id` always names it current, so a
    /// snapshot of `id` can wait only while it is).
    pub fn withdraw(&self, id: u64) {
        let named = self
            .0
            .current
            .compare_exchange(id, NOBODY, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if named {
            let mut latest = self.latest();
            if latest.as_ref().is_some_and(|u| u.id == id) {
                *latest = None;
            }
        }
    }

    /// The whisper thread: the newest snapshot, if one waits.
    pub fn take(&self) -> Option<Utterance> {
        self.latest().take()
    }

    /// Is `id` still open and speaking?
    pub fn is_current(&self, id: u64) -> bool {
        id != NOBODY && self.0.current.load(Ordering::Acquire) == id
    }

    /// Wakes the whisper thread when a snapshot is offered.
    pub fn wake(&self) -> &crossbeam_channel::Receiver<()> {
        &self.0.wake_rx
    }

    pub fn record_decode_ms(&self, ms: u64) {
        self.0.decode_ms.store(ms, Ordering::Relaxed);
    }

    pub fn last_decode_ms(&self) -> u64 {
        self.0.decode_ms.load(Ordering::Relaxed)
    }
}

/// Push-to-talk: a client holds the utterance open (`StartUtterance` until
/// `EndUtterance`). The D-Bus object sets it; the dsp thread reads it per
/// block and, while it is set, the segmenter keeps one utterance open
/// whatever the VAD says. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct Hold(Arc<std::sync::atomic::AtomicBool>);

impl Hold {
    pub fn set(&self, held: bool) {
        self.0.store(held, Ordering::Release);
    }

    pub fn is_held(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The moment (capture clock) from which the whisper thread stops working:
/// set once when the daemon stops, so an utterance still open or queued then
/// ends as `Dropped(shutdown)` instead of holding the exit. Unset while the
/// daemon runs. Clones share one deadline.
#[derive(Debug, Clone)]
pub struct StopDeadline(Arc<AtomicU64>);

/// The deadline is not set.
const NEVER: u64 = u64::MAX;

impl Default for StopDeadline {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(NEVER)))
    }
}

impl StopDeadline {
    /// Work stops at `at_ms` (Unix epoch ms).
    pub fn set(&self, at_ms: u64) {
        self.0.store(at_ms, Ordering::Relaxed);
    }

    /// The moment work stops, if the daemon is stopping.
    pub fn at_ms(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&t| t != NEVER)
    }

    /// Has the moment come?
    pub fn passed(&self) -> bool {
        self.passed_at(now_ms())
    }

    /// Has the moment come by `now` (Unix epoch ms)?
    pub fn passed_at(&self, now: u64) -> bool {
        self.at_ms().is_some_and(|t| now >= t)
    }
}

/// A stage's thread, in the one shape every worker has: it ends once its input
/// closes (its upstream dropped the sender), and dropping the handle waits for
/// that. So dropping the handles in pipeline order — source, dsp, whisper —
/// drains and stops everything.
#[derive(Debug)]
pub struct WorkerThread(Option<JoinHandle<()>>);

impl WorkerThread {
    pub fn new(handle: JoinHandle<()>) -> Self {
        Self(Some(handle))
    }

    /// Waits for the thread to end (what dropping the handle does).
    pub fn join(self) {}

    /// Leaves the thread running: for a process that exits anyway and must
    /// not wait for a worker that hangs.
    pub fn detach(&mut self) {
        self.0 = None;
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            // A worker that panicked has already reported it; its events are
            // gone, and the daemon's exit must not panic too.
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speculation_names_and_withdraws_one_utterance() {
        let s = Speculation::default();
        assert!(!s.is_current(0), "nobody is current at first");
        assert!(!s.is_current(1));
        s.name(1);
        let seen_by_whisper = s.clone();
        assert!(seen_by_whisper.is_current(1));
        s.withdraw(1);
        assert!(!seen_by_whisper.is_current(1));
        // A stale withdraw does not cancel a newer utterance.
        s.name(2);
        s.withdraw(1);
        assert!(seen_by_whisper.is_current(2));
        s.name(3);
        assert!(!seen_by_whisper.is_current(2));
        assert!(seen_by_whisper.is_current(3));
    }

    #[test]
    fn stop_deadline_is_unset_until_set() {
        let d = StopDeadline::default();
        assert_eq!(d.at_ms(), None);
        assert!(!d.passed_at(u64::MAX - 1));
        let seen = d.clone();
        d.set(1_000);
        assert_eq!(seen.at_ms(), Some(1_000));
        assert!(!seen.passed_at(999));
        assert!(seen.passed_at(1_000));
    }

    #[test]
    fn dropping_a_worker_waits_for_it_and_detaching_does_not() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let done = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&done);
        let worker = WorkerThread::new(std::thread::spawn(move || {
            while rx.recv().is_ok() {}
            seen.store(1, Ordering::SeqCst);
        }));
        drop(tx);
        drop(worker);
        assert_eq!(done.load(Ordering::SeqCst), 1, "joined on drop");

        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let mut stuck = WorkerThread::new(std::thread::spawn(move || {
            let _ = hold_rx.recv();
        }));
        stuck.detach();
        drop(stuck); // returns although the thread still waits
        drop(hold_tx);
    }

    #[test]
    fn samples_convert_to_milliseconds() {
        assert_eq!(samples_to_ms(16_000), 1_000);
        assert_eq!(samples_to_ms(8_000), 500);
        assert_eq!(samples_to_ms(0), 0);
    }
}
