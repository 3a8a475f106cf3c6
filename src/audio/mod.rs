//! Audio sources: a live device through cpal, or a WAV file. Both write mono `f32`
//! into an rtrb ring that the dsp thread reads; each source runs on its own thread
//! and announces every new ring as a [`CaptureStream`].

pub mod capture;
pub mod device;
pub mod wav;

/// One uninterrupted run of captured audio: from a stream opening until it closes
/// (device lost, paused, end of file). The dsp thread reads it to the end, then
/// waits for the next one.
pub struct CaptureStream {
    /// Read end of the ring; the write end is in the device callback or WAV reader.
    pub consumer: rtrb::Consumer<f32>,
    /// Sample rate of the ring's mono frames.
    pub sample_rate: u32,
    /// Capture clock: Unix epoch milliseconds of the ring's first frame.
    pub origin_ms: u64,
}

/// What the daemon asks a source to do. Sent on a bounded channel whose receiver
/// is held by the source thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCommand {
    /// Stop capturing and release the device (the stream is dropped).
    Pause,
    /// Reopen the device after a pause.
    Resume,
    /// Stop for good: the source thread ends and its channels close.
    Stop,
}

/// Seconds of audio the ring holds. DESIGN asks for at least 2 s; 4 s leaves room
/// for a dsp thread that was descheduled on a loaded two-core machine.
pub const RING_SECONDS: f32 = 4.0;
