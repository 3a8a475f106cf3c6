//! Statistics: lock-free counters the worker threads bump, plus what only the
//! event loop sees (published transcripts, drops, latencies).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::audio::capture::CaptureCounters;
use crate::dsp::DspCounters;
use crate::event::DropReason;
use crate::transcribe::TranscriberCounters;

/// Locks the statistics; a panic elsewhere while holding them cannot leave
/// them inconsistent (plain counters), so a poisoned lock is used as is.
pub fn lock(stats: &std::sync::Mutex<Stats>) -> std::sync::MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

/// Latencies kept for the percentiles: the most recent ones, so memory is fixed.
const LATENCY_WINDOW: usize = 4096;

/// Counters shared with the worker threads (atomics only).
#[derive(Debug, Default, Clone)]
pub struct SharedCounters {
    pub capture: Arc<CaptureCounters>,
    pub dsp: Arc<DspCounters>,
    pub transcriber: Arc<TranscriberCounters>,
}

/// Everything `GetStats` reports. Written by the event loop; the D-Bus object
/// holds a clone of the `Arc<Mutex<…>>` and only copies it.
#[derive(Debug)]
pub struct Stats {
    pub shared: SharedCounters,
    pub started: Instant,
    pub transcripts: u64,
    pub dropped_deadline: u64,
    pub dropped_overload: u64,
    pub dropped_no_speech: u64,
    pub dropped_shutdown: u64,
    pub dropped_error: u64,
    pub dropped_not_addressed: u64,
    /// Wake mode: utterances that began with the wake phrase.
    pub woken: u64,
    latencies: VecDeque<u64>,
    /// p50, p95 and max of `latencies`, recomputed when one is added, so
    /// `GetStats` copies numbers and never sorts.
    percentiles: [u64; 3],
}

/// A point-in-time copy of the statistics, in plain numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub utterances: u64,
    pub transcripts: u64,
    pub dropped_deadline: u64,
    pub dropped_overload: u64,
    pub dropped_no_speech: u64,
    pub dropped_shutdown: u64,
    pub dropped_error: u64,
    pub dropped_not_addressed: u64,
    pub woken: u64,
    pub frames_captured: u64,
    pub frames_lost: u64,
    pub early_closes: u64,
    pub early_closes_resumed: u64,
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    pub latency_max_ms: u64,
    /// Decode time over audio time (below 1 is faster than real time).
    pub decode_rtf: f64,
    pub uptime_s: u64,
}

impl Stats {
    pub fn new(shared: SharedCounters) -> Self {
        Self {
            shared,
            started: Instant::now(),
            transcripts: 0,
            dropped_deadline: 0,
            dropped_overload: 0,
            dropped_no_speech: 0,
            dropped_shutdown: 0,
            dropped_error: 0,
            dropped_not_addressed: 0,
            woken: 0,
            latencies: VecDeque::with_capacity(LATENCY_WINDOW),
            percentiles: [0; 3],
        }
    }

    pub fn record_transcript(&mut self, latency_ms: u64) {
        self.transcripts += 1;
        if self.latencies.len() == LATENCY_WINDOW {
            self.latencies.pop_front();
        }
        self.latencies.push_back(latency_ms);
        let mut sorted: Vec<u64> = self.latencies.iter().copied().collect();
        sorted.sort_unstable();
        let pct = |p: f64| -> u64 {
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        self.percentiles = [pct(0.50), pct(0.95), sorted[sorted.len() - 1]];
    }

    pub fn record_drop(&mut self, reason: DropReason) {
        match reason {
            DropReason::Deadline => self.dropped_deadline += 1,
            DropReason::Overload => self.dropped_overload += 1,
            DropReason::NoSpeech => self.dropped_no_speech += 1,
            DropReason::Shutdown => self.dropped_shutdown += 1,
            DropReason::Error => self.dropped_error += 1,
            DropReason::NotAddressed => self.dropped_not_addressed += 1,
        }
    }

    /// Copies the numbers (the percentiles were computed when the last
    /// latency came in); cheap enough for every `GetStats`.
    pub fn snapshot(&self) -> Snapshot {
        let [p50, p95, max] = self.percentiles;
        let t = &self.shared.transcriber;
        let audio_ms = t.audio_ms.load(Ordering::Relaxed);
        Snapshot {
            utterances: self.shared.dsp.utterances.load(Ordering::Relaxed),
            transcripts: self.transcripts,
            dropped_deadline: self.dropped_deadline,
            dropped_overload: self.dropped_overload,
            dropped_no_speech: self.dropped_no_speech,
            dropped_shutdown: self.dropped_shutdown,
            dropped_error: self.dropped_error,
            dropped_not_addressed: self.dropped_not_addressed,
            woken: self.woken,
            frames_captured: self.shared.capture.frames_captured.load(Ordering::Relaxed),
            early_closes: self.shared.dsp.early_closes.load(Ordering::Relaxed),
            early_closes_resumed: self.shared.dsp.early_closes_resumed.load(Ordering::Relaxed),
            frames_lost: self.shared.capture.frames_lost.load(Ordering::Relaxed),
            latency_p50_ms: p50,
            latency_p95_ms: p95,
            latency_max_ms: max,
            decode_rtf: if audio_ms == 0 {
                0.0
            } else {
                t.decode_ms.load(Ordering::Relaxed) as f64 / audio_ms as f64
            },
            uptime_s: self.started.elapsed().as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_recorded_latencies() {
        let mut s = Stats::new(SharedCounters::default());
        assert_eq!(s.snapshot().latency_p50_ms, 0, "none yet");
        for ms in [400, 100, 300, 200, 1_000] {
            s.record_transcript(ms);
        }
        let snap = s.snapshot();
        assert_eq!(snap.transcripts, 5);
        assert_eq!(
            (
                snap.latency_p50_ms,
                snap.latency_p95_ms,
                snap.latency_max_ms
            ),
            (300, 1_000, 1_000)
        );
        // The window keeps the most recent LATENCY_WINDOW.
        for _ in 0..LATENCY_WINDOW {
            s.record_transcript(50);
        }
        let snap = s.snapshot();
        assert_eq!((snap.latency_p50_ms, snap.latency_max_ms), (50, 50));
    }
}
