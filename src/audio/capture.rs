//! The code that runs on the audio device's realtime thread.
//!
//! Realtime contract — everything reachable from [`CaptureWriter::write`]:
//! - never allocates or frees memory,
//! - never takes a lock, never blocks, never sleeps, never logs, never does I/O,
//! - only converts samples to `f32`, downmixes them to mono, writes them into the
//!   pre-allocated [`rtrb`] ring and bumps relaxed atomics.
//!
//! When the ring is full the newest frames are dropped and counted: the consumer
//! (the dsp thread) is late, and blocking here would make the sound server drop
//! audio anyway, with nobody counting it.
//!
//! `tests/callback_alloc.rs` drives [`CaptureWriter::write`] under an allocation
//! guard for every sample format and fails on any allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cpal::{FromSample, Sample};

/// Counters the capture side updates without locks; read by the stats.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Mono frames written into the ring since start.
    pub frames_captured: AtomicU64,
    /// Mono frames lost because the ring was full.
    pub frames_lost: AtomicU64,
}

/// The producer side of the audio ring, owned by the device callback (or the WAV
/// reader). The consumer is held by the dsp thread.
pub struct CaptureWriter {
    /// Write end of the ring; the read end lives in the dsp thread.
    producer: rtrb::Producer<f32>,
    /// Interleaved channels per frame in the device's buffers.
    channels: usize,
    /// `1 / channels`, so downmixing multiplies instead of dividing.
    channel_gain: f32,
    /// Shared with the stats; only `fetch_add(Relaxed)` here.
    counters: Arc<CaptureCounters>,
}

impl CaptureWriter {
    /// Wraps a producer; `channels` is the device's interleaved channel count (≥ 1).
    pub fn new(
        producer: rtrb::Producer<f32>,
        channels: usize,
        counters: Arc<CaptureCounters>,
    ) -> Self {
        let channels = channels.max(1);
        Self {
            producer,
            channels,
            channel_gain: 1.0 / channels as f32,
            counters,
        }
    }

    /// Converts an interleaved buffer of any sample type to mono `f32` and writes it
    /// into the ring. Realtime-safe: see the module header. Returns the frames lost.
    #[inline]
    pub fn write<T>(&mut self, interleaved: &[T]) -> usize
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let n_frames = interleaved.len() / self.channels;
        let n_writable = n_frames.min(self.producer.slots());
        if n_writable > 0 {
            // `write_chunk_uninit` hands out the free slots as two slices; no allocation.
            if let Ok(chunk) = self.producer.write_chunk_uninit(n_writable) {
                let channels = self.channels;
                let gain = self.channel_gain;
                let frames = interleaved.chunks_exact(channels).take(n_writable);
                let mono = frames.map(|frame| {
                    if channels == 1 {
                        f32::from_sample(frame[0])
                    } else {
                        frame.iter().map(|s| f32::from_sample(*s)).sum::<f32>() * gain
                    }
                });
                chunk.fill_from_iter(mono);
            }
        }
        let n_lost = n_frames - n_writable;
        self.counters
            .frames_captured
            .fetch_add(n_writable as u64, Ordering::Relaxed);
        if n_lost > 0 {
            self.counters
                .frames_lost
                .fetch_add(n_lost as u64, Ordering::Relaxed);
        }
        n_lost
    }

    /// Writes mono `f32` frames, waiting while the ring is full instead of dropping.
    /// For file input only (never on a realtime thread): unpaced reading must not
    /// lose audio, so it waits for the dsp thread. Returns `false` when the reader
    /// side is gone.
    pub fn write_all_blocking(&mut self, mono: &[f32]) -> bool {
        let mut rest = mono;
        while !rest.is_empty() {
            if self.producer.is_abandoned() {
                return false;
            }
            let n = rest.len().min(self.producer.slots());
            if n == 0 {
                std::thread::sleep(FULL_RING_WAIT);
                continue;
            }
            if let Ok(chunk) = self.producer.write_chunk_uninit(n) {
                chunk.fill_from_iter(rest[..n].iter().copied());
            }
            self.counters
                .frames_captured
                .fetch_add(n as u64, Ordering::Relaxed);
            rest = &rest[n..];
        }
        true
    }
}

/// How long the file reader waits for the dsp thread to make room in a full
/// ring (a few 10 ms blocks of the dsp thread's work).
const FULL_RING_WAIT: std::time::Duration = std::time::Duration::from_millis(2);
/// The smallest ring, whatever the rate: room for a few device buffers.
const MIN_RING_FRAMES: usize = 1024;

/// Creates the ring for one capture stream, sized for `seconds` of audio at
/// `sample_rate`. Called before the stream starts: this is the only allocation.
pub fn ring(sample_rate: u32, seconds: f32) -> (rtrb::Producer<f32>, rtrb::Consumer<f32>) {
    let capacity = ((sample_rate as f32 * seconds).ceil() as usize).max(MIN_RING_FRAMES);
    rtrb::RingBuffer::new(capacity)
}
