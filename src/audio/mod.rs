//! Audio sources: a live device through cpal, or a WAV file. Both write mono `f32`
//! into an rtrb ring that the dsp thread reads; each source runs on its own thread
//! and announces every new ring as a [`CaptureStream`].

pub mod capture;
pub mod device;
pub mod watch;
pub mod wav;

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::event::EventSender;
use crate::pipeline::WorkerThread;
use capture::CaptureCounters;
use device::{DeviceError, DeviceSelector, DeviceSource};
use wav::WavInput;

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
    /// Rung by the ring's writer; the dsp thread waits on it when the ring is empty.
    pub doorbell: Arc<capture::Doorbell>,
}

/// A source's answer to a command: `Err` says why it could not be done.
pub type Reply = tokio::sync::oneshot::Sender<Result<(), String>>;
/// Where that answer comes.
pub type Answer = tokio::sync::oneshot::Receiver<Result<(), String>>;

/// How long a caller waits for a source's answer: a sound server that hangs
/// up mid-call must not hang the caller.
pub const ANSWER_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits at most [`ANSWER_LIMIT`] for the answer to a queued command.
pub async fn answer_of(answer: Answer) -> Result<(), String> {
    match tokio::time::timeout(ANSWER_LIMIT, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("the input ended before it could answer".into()),
        Err(_) => Err(format!(
            "the capture source did not answer within {} s; try again",
            ANSWER_LIMIT.as_secs()
        )),
    }
}

/// What the daemon asks a source to do. Sent on a bounded channel whose receiver
/// is held by the source thread; each command is answered once it is done. The
/// source stops when the sender is dropped (there is no stop command a full
/// queue could lose).
#[derive(Debug)]
pub enum SourceCommand {
    /// Stop capturing and release the device; answered once the stream is closed.
    Pause(Reply),
    /// Capture again after a pause; answered once the stream is open, or with
    /// why it could not be opened.
    Resume(Reply),
}

/// Seconds of audio the ring holds. DESIGN asks for at least 2 s; 4 s leaves room
/// for a dsp thread that was descheduled on a loaded two-core machine.
pub const RING_SECONDS: f32 = 4.0;

/// Commands a source may have waiting: Pause and Resume come one at a time
/// from D-Bus callers, so a few are plenty; more are refused as busy.
pub const COMMAND_QUEUE: usize = 8;
/// Rings waiting for the dsp thread: a new one is announced only after the
/// previous stream ended, so two never wait long.
pub const STREAM_QUEUE: usize = 2;

/// Where audio comes from, checked and opened (a WAV file's header is read).
pub enum SourceInput {
    Device(DeviceSelector),
    File { wav: WavInput, paced: bool },
}

/// What every source is connected to.
pub struct SourceLinks {
    /// Capture counters shared with the stats.
    pub counters: Arc<CaptureCounters>,
    /// New rings go to the dsp thread, which holds the receiver.
    pub streams: Sender<CaptureStream>,
    /// Events (state, device, errors) go to the event loop, which holds the receiver.
    pub events: EventSender,
    /// Commands (Pause, Resume); the only sender is in [`SourceControl`].
    pub commands: Receiver<SourceCommand>,
}

/// The way to a source's command queue, shared by the event loop's pipeline
/// and the D-Bus object (whose Pause and Resume wait for the source's answer
/// without involving the event loop). It holds the only sender: closing it
/// stops the source.
#[derive(Clone, Default)]
pub struct SourceControl(Arc<std::sync::Mutex<Option<Sender<SourceCommand>>>>);

impl SourceControl {
    fn sender(&self) -> std::sync::MutexGuard<'_, Option<Sender<SourceCommand>>> {
        // The guarded value is a plain Option: a panic elsewhere cannot leave it torn.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a command without waiting; `Err` says why it was not queued.
    pub fn send(&self, command: SourceCommand) -> Result<(), String> {
        use crossbeam_channel::TrySendError;
        match self.sender().as_ref() {
            None => Err("sottod is starting or stopping; try again in a moment".into()),
            Some(tx) => tx.try_send(command).map_err(|e| match e {
                TrySendError::Full(_) => {
                    "sottod is busy with earlier requests; try again in a moment".into()
                }
                TrySendError::Disconnected(_) => "the input has ended".into(),
            }),
        }
    }

    /// Queues the command `command` builds around a reply; its answer comes
    /// on the returned [`Answer`].
    pub fn queue(&self, command: fn(Reply) -> SourceCommand) -> Result<Answer, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(command(reply))?;
        Ok(answer)
    }

    fn open(&self, tx: Sender<SourceCommand>) {
        *self.sender() = Some(tx);
    }

    /// Drops the sender: the source stops.
    fn close(&self) {
        self.sender().take();
    }
}

/// A running source: its thread and its command queue. Dropping it closes the
/// queue (the source stops and closes its stream channel, which ends the dsp
/// thread in turn), then waits for the thread.
pub struct SourceHandle {
    control: SourceControl,
    thread: WorkerThread,
}

impl SourceHandle {
    /// Starts the source, reachable through `control`. A named device that
    /// cannot be opened is an error; a missing default device is not (the
    /// source waits for one).
    pub fn start(
        input: SourceInput,
        control: SourceControl,
        counters: Arc<CaptureCounters>,
        streams: Sender<CaptureStream>,
        events: EventSender,
    ) -> Result<Self, DeviceError> {
        let (commands, command_rx) = crossbeam_channel::bounded(COMMAND_QUEUE);
        let links = SourceLinks {
            counters,
            streams,
            events,
            commands: command_rx,
        };
        let thread = match input {
            SourceInput::File { wav, paced } => {
                log::info!(
                    "reading {:.1} s of audio from the input file",
                    wav.seconds()
                );
                wav.spawn(paced, links)
            }
            SourceInput::Device(selector) => DeviceSource { selector, links }.spawn()?,
        };
        control.open(commands);
        Ok(Self {
            control,
            thread: WorkerThread::new(thread),
        })
    }

    /// Closes the command queue: the source stops (the handle still waits
    /// for its thread when dropped).
    pub fn close(&self) {
        self.control.close();
    }

    /// Stops the source without waiting for its thread.
    pub fn detach(mut self) {
        self.control.close();
        self.thread.detach();
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        self.control.close();
        // `thread` drops next and waits for the source to end.
    }
}
