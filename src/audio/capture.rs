//! The code that runs on the audio device's realtime thread.
//!
//! Realtime contract — everything reachable from [`CaptureWriter::write`]:
//! - never allocates or frees memory,
//! - never takes a lock, never blocks, never sleeps, never logs, never does I/O,
//! - only converts samples to `f32`, downmixes them to mono, writes them into the
//!   pre-allocated [`rtrb`] ring, bumps relaxed atomics and rings the
//!   [`Doorbell`]: `Thread::unpark` on the dsp thread, an atomic swap plus a
//!   futex wake only when that thread is parked (no allocation, no lock; cpal's
//!   own PipeWire callback wakes its realtime-promotion thread the same way).
//!
//! While nobody speaks the doorbell rings once per ~100 ms of audio, so an
//! idle daemon's dsp thread wakes ten times a second whatever the device's
//! period; while an utterance is open it rings on every buffer, so the end of
//! speech is read as soon as the device delivers it.
//!
//! When the ring is full the newest frames are dropped and counted: the consumer
//! (the dsp thread) is late, and blocking here would make the sound server drop
//! audio anyway, with nobody counting it.
//!
//! `tests/callback_alloc.rs` drives [`CaptureWriter::write`] under an allocation
//! guard for every sample format and fails on any allocation.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use cpal::{FromSample, Sample};

/// Counters the capture side updates without locks; read by the stats.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Mono frames written into the ring since start.
    pub frames_captured: AtomicU64,
    /// Mono frames lost because the ring was full.
    pub frames_lost: AtomicU64,
}

/// How a ring's writer wakes its reader: the reader parks when the ring is
/// empty and the writer unparks it once enough audio is waiting. One per ring.
#[derive(Debug)]
pub struct Doorbell {
    /// The reading thread, set once by [`Doorbell::answer`].
    reader: OnceLock<Thread>,
    /// Frames the writer lets gather between two rings (0: every write).
    every: AtomicUsize,
    /// That number while the reader is quiet: ~100 ms of audio.
    quiet_every: usize,
    /// Rings so far (the reader's wake-ups by its writer), for the stats.
    rung: AtomicU64,
}

/// How long the reader waits for a ring before looking at its ring anyway. A
/// guard only: the writer rings whenever there is audio to read and when it
/// leaves, and there is nothing to do while a stalled device writes nothing.
pub const DOORBELL_WAIT_LIMIT: Duration = Duration::from_secs(5);

impl Doorbell {
    /// A doorbell for a ring of `sample_rate` frames a second; it rings on
    /// every write until the reader says it is quiet.
    pub fn new(sample_rate: u32) -> Arc<Self> {
        Arc::new(Self {
            reader: OnceLock::new(),
            every: AtomicUsize::new(0),
            quiet_every: (sample_rate as usize / 10).max(1),
            rung: AtomicU64::new(0),
        })
    }

    /// Makes the calling thread the one the doorbell wakes (the first call wins).
    pub fn answer(&self) {
        let _ = self.reader.set(std::thread::current());
    }

    /// Quiet: wake the reader every ~100 ms of audio; otherwise on every write.
    pub fn set_quiet(&self, quiet: bool) {
        let every = if quiet { self.quiet_every } else { 0 };
        self.every.store(every, Ordering::Relaxed);
    }

    /// How many times the writer has rung.
    pub fn rung(&self) -> u64 {
        self.rung.load(Ordering::Relaxed)
    }

    /// Parks the calling reader until the writer rings, it leaves, or
    /// [`DOORBELL_WAIT_LIMIT`] passes (a wake-up may also come early: the
    /// caller looks at its ring and waits again).
    pub fn wait(&self) {
        std::thread::park_timeout(DOORBELL_WAIT_LIMIT);
    }

    /// Wakes the reader, if one answered. Realtime-safe: see the module header.
    #[inline]
    fn ring(&self) {
        self.rung.fetch_add(1, Ordering::Relaxed);
        if let Some(reader) = self.reader.get() {
            reader.unpark();
        }
    }
}

/// Rings once more when the writer is dropped. A field declared after the
/// producer, so the ring is already abandoned when the reader wakes.
struct LastRing(Arc<Doorbell>);

impl Drop for LastRing {
    fn drop(&mut self) {
        self.0.ring();
    }
}

/// Interleaved frames of `channels` samples in `src` to their mean in `dst`,
/// one frame per slot (`src` holds exactly `dst.len()` frames). Mono and
/// stereo, nearly every device, get loops of their own that the compiler
/// vectorises; a loop over a frame of unknown width does not.
#[inline]
fn downmix<T>(src: &[T], dst: &mut [std::mem::MaybeUninit<f32>], channels: usize, gain: f32)
where
    T: Sample,
    f32: FromSample<T>,
{
    debug_assert_eq!(src.len(), dst.len() * channels);
    match channels {
        1 => {
            for (d, s) in dst.iter_mut().zip(src) {
                d.write(f32::from_sample(*s));
            }
        }
        2 => {
            for (d, f) in dst.iter_mut().zip(src.chunks_exact(2)) {
                d.write((f32::from_sample(f[0]) + f32::from_sample(f[1])) * gain);
            }
        }
        _ => {
            for (d, f) in dst.iter_mut().zip(src.chunks_exact(channels)) {
                d.write(f.iter().map(|s| f32::from_sample(*s)).sum::<f32>() * gain);
            }
        }
    }
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
    /// Frames written since the doorbell last rang.
    unrung: usize,
    /// Wakes the dsp thread; after `producer`, so dropping rings last.
    bell: LastRing,
}

impl CaptureWriter {
    /// Wraps a producer; `channels` is the device's interleaved channel count
    /// (≥ 1); `doorbell` wakes the ring's reader.
    pub fn new(
        producer: rtrb::Producer<f32>,
        channels: usize,
        counters: Arc<CaptureCounters>,
        doorbell: Arc<Doorbell>,
    ) -> Self {
        let channels = channels.max(1);
        Self {
            producer,
            channels,
            channel_gain: 1.0 / channels as f32,
            counters,
            unrung: 0,
            bell: LastRing(doorbell),
        }
    }

    /// Counts `n` frames written and rings the doorbell when enough have gathered.
    #[inline]
    fn gathered(&mut self, n: usize) {
        self.unrung = self.unrung.saturating_add(n);
        if self.unrung >= self.bell.0.every.load(Ordering::Relaxed) {
            self.unrung = 0;
            self.bell.0.ring();
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
            if let Ok(mut chunk) = self.producer.write_chunk_uninit(n_writable) {
                let (channels, gain) = (self.channels, self.channel_gain);
                let (first, second) = chunk.as_mut_slices();
                let split = first.len() * channels;
                downmix(&interleaved[..split], first, channels, gain);
                downmix(
                    &interleaved[split..n_writable * channels],
                    second,
                    channels,
                    gain,
                );
                // SAFETY: `downmix` wrote every slot of both slices: they
                // hold `n_writable` frames and were given as many.
                unsafe { chunk.commit_all() };
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
        // A full ring rings at once: its reader is late.
        self.gathered(if n_lost > 0 { usize::MAX } else { n_writable });
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
                self.gathered(usize::MAX);
                std::thread::sleep(FULL_RING_WAIT);
                continue;
            }
            if let Ok(chunk) = self.producer.write_chunk_uninit(n) {
                chunk.fill_from_iter(rest[..n].iter().copied());
            }
            self.counters
                .frames_captured
                .fetch_add(n as u64, Ordering::Relaxed);
            self.gathered(n);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(rate: u32, seconds: f32) -> (CaptureWriter, rtrb::Consumer<f32>, Arc<Doorbell>) {
        let (producer, consumer) = ring(rate, seconds);
        let bell = Doorbell::new(rate);
        let writer = CaptureWriter::new(producer, 1, Default::default(), bell.clone());
        (writer, consumer, bell)
    }

    #[test]
    fn the_doorbell_rings_every_write_until_quiet_then_every_100_ms() {
        let (mut w, _consumer, bell) = writer(48_000, 4.0);
        let buffer = [0.0f32; 480]; // 10 ms
        for _ in 0..10 {
            w.write(&buffer);
        }
        assert_eq!(
            bell.rung(),
            10,
            "every write while an utterance may be open"
        );
        bell.set_quiet(true);
        for _ in 0..100 {
            w.write(&buffer);
        }
        assert_eq!(bell.rung(), 10 + 10, "once per 100 ms of audio while quiet");
        bell.set_quiet(false);
        w.write(&buffer);
        assert_eq!(bell.rung(), 21);
    }

    #[test]
    fn frames_written_across_the_rings_end_keep_their_order_for_any_channel_count() {
        for channels in [1usize, 2, 3, 6] {
            // 1,024 slots: 1,000 frames in and out moves the write position
            // near the end, so the next write wraps to the start.
            let (producer, mut consumer) = ring(1_000, 1.0);
            let mut w =
                CaptureWriter::new(producer, channels, Default::default(), Doorbell::new(1_000));
            w.write(&vec![0.0f32; 1_000 * channels]);
            while consumer.pop().is_ok() {}
            // Frame i: channel c holds i + c, so its mean is i + (channels - 1) / 2.
            let frames = 100;
            let interleaved: Vec<f32> = (0..frames)
                .flat_map(|i| (0..channels).map(move |c| (i + c) as f32))
                .collect();
            // A trailing partial frame is not a frame.
            let mut buffer = interleaved.clone();
            buffer.extend(std::iter::repeat_n(1e6, channels - 1));
            assert_eq!(w.write(&buffer), 0);
            let got: Vec<f32> = std::iter::from_fn(|| consumer.pop().ok()).collect();
            let want: Vec<f32> = (0..frames)
                .map(|i| i as f32 + (channels - 1) as f32 / 2.0)
                .collect();
            assert_eq!(got, want, "{channels} channels");
        }
    }

    #[test]
    fn a_full_ring_and_a_leaving_writer_ring_at_once() {
        let (mut w, consumer, bell) = writer(1_000, 1.0);
        bell.set_quiet(true);
        w.write(&[0.0f32; 10]);
        assert_eq!(bell.rung(), 0);
        // 1,024 slots (the smallest ring): this write loses frames.
        assert!(w.write(&[0.0f32; 2_000]) > 0);
        assert_eq!(bell.rung(), 1, "a full ring wakes its late reader");
        drop(w);
        assert_eq!(bell.rung(), 2, "the writer's last ring");
        assert!(consumer.is_abandoned());
    }
}
