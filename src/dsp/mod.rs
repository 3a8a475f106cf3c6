//! The "dsp" thread: reads each capture ring, resamples to 16 kHz, scores voice
//! activity per 16 ms frame and segments utterances.

pub mod resample;
pub mod segmenter;
pub mod vad;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::audio::CaptureStream;
use crate::endpoint::{EndHint, EndRule};
use crate::event::{send_blocking, DropReason, Event, EventSender};
use crate::pipeline::{now_ms, Hold, Job, PartialSlot, Speculation, WorkerThread, WHISPER_RATE};
use resample::Resampler;
use segmenter::{Segment, Segmenter, SegmenterSettings};
use vad::{Framer, Vad};

/// `--partials`: an interim decode about this often (ms of speech)…
pub const PARTIAL_EVERY_MS: u64 = 500;
/// …but never more often than this many times the last one's decode time
/// (tenths), so interim decodes leave the decoder free most of the time.
const PARTIAL_DECODE_SHARE_TENTHS: u64 = 15;

/// Samples read from the ring per step (any size works; this bounds the work
/// between two checks of the ring).
const READ_BLOCK: usize = 4096;

/// Counters the dsp thread keeps; read by the stats.
#[derive(Debug, Default)]
pub struct DspCounters {
    /// Utterances opened.
    pub utterances: AtomicU64,
    /// Utterances the adaptive rule closed before `--silence-ms`.
    pub early_closes: AtomicU64,
    /// Of those, how many were followed by speech within `--silence-ms`.
    pub early_closes_resumed: AtomicU64,
}

/// The dsp thread's inputs and outputs.
pub struct Dsp {
    pub settings: SegmenterSettings,
    /// Capture rings, one per stream, from the source thread (which holds the sender).
    pub streams: Receiver<CaptureStream>,
    /// Closed and tentative utterances to the transcriber, which holds the
    /// receiver. Bounded: when it is full a closed utterance is dropped with
    /// reason `overload` (a tentative one is simply not speculated on).
    pub utterances: Sender<Job>,
    /// Names the utterance whose tentative audio is current; the transcriber
    /// holds a clone and stops a speculative decode that is no longer current.
    pub speculation: Speculation,
    /// The whisper thread's verdicts on tentative utterances.
    pub end_hint: EndHint,
    /// Push-to-talk: a client holds the utterance open.
    pub hold: Hold,
    /// `--partials`: where interim snapshots go (`None`: off).
    pub partials: Option<PartialSlot>,
    /// Events to the event loop.
    pub events: EventSender,
    pub counters: Arc<DspCounters>,
    /// Wait for room in the utterance queue instead of dropping (`--no-pace`
    /// file input: the file waits for the decoder, nothing is lost). Live
    /// capture never waits: a full queue drops with `overload`.
    pub wait_when_full: bool,
}

impl Dsp {
    /// Runs on its own thread until the source closes its stream channel and the
    /// last ring is drained; then the utterance and event senders drop.
    pub fn spawn(self) -> WorkerThread {
        WorkerThread::new(
            std::thread::Builder::new()
                .name("dsp".into())
                .spawn(move || self.run())
                .expect("spawn dsp thread"),
        )
    }

    fn run(self) {
        let mut frontend = Frontend::with_hint(self.settings, self.end_hint.clone());
        while let Ok(stream) = self.streams.recv() {
            let CaptureStream {
                mut consumer,
                sample_rate,
                origin_ms,
                doorbell,
            } = stream;
            frontend.begin_stream(sample_rate, origin_ms);
            // The writer wakes this thread when audio is waiting: every ~100 ms
            // of it while nobody speaks (an onset is timestamped from the
            // capture clock, so reading it late changes no boundary), on every
            // buffer while an utterance is open or starting.
            doorbell.answer();
            loop {
                // Check for abandonment before reading, so frames written just
                // before the writer left are still read.
                let abandoned = consumer.is_abandoned();
                let available = consumer.slots();
                if available == 0 {
                    if abandoned {
                        break;
                    }
                    doorbell.set_quiet(frontend.is_quiet());
                    doorbell.wait();
                    continue;
                }
                let n = available.min(READ_BLOCK);
                let chunk = consumer.read_chunk(n).expect("n <= available slots");
                frontend.set_hold(self.hold.is_held());
                if let Some(partials) = &self.partials {
                    let pace = partials.last_decode_ms() * PARTIAL_DECODE_SHARE_TENTHS / 10;
                    frontend.set_partial_interval_ms(PARTIAL_EVERY_MS.max(pace));
                }
                // Read in place, no copy: until the commit the writer has the
                // rest of the ring (seconds; this block is at most READ_BLOCK).
                let (first, second) = chunk.as_slices();
                frontend.push(first, &mut |s| self.handle(s));
                frontend.push(second, &mut |s| self.handle(s));
                chunk.commit_all();
                if let (Some(partials), Some(id)) = (&self.partials, frontend.pausing()) {
                    partials.withdraw(id);
                }
            }
            frontend.end_stream(&mut |s| self.handle(s));
        }
    }

    fn handle(&self, segment: Segment) {
        match segment {
            Segment::Started { id, start_ms } => {
                self.counters.utterances.fetch_add(1, Ordering::Relaxed);
                send_blocking(&self.events, Event::SpeechStarted { id, start_ms });
                send_blocking(&self.events, Event::Hearing(true));
            }
            Segment::Partial(utterance) => {
                if let Some(partials) = &self.partials {
                    partials.offer(utterance);
                }
            }
            Segment::Tentative(utterance) => {
                if let Some(partials) = &self.partials {
                    partials.withdraw(utterance.id);
                }
                self.speculation.name(utterance.id);
                // Best effort: a busy transcriber has better things to do.
                let _ = self.utterances.try_send(Job::Speculate(utterance));
            }
            Segment::Resumed { id } => self.speculation.withdraw(id),
            Segment::EarlyCloseResumed { id } => {
                log::info!("utterance {id}: closed early, and speech resumed within --silence-ms");
                self.counters
                    .early_closes_resumed
                    .fetch_add(1, Ordering::Relaxed);
            }
            Segment::Ended(utterance) => {
                if let Some(partials) = &self.partials {
                    partials.withdraw(utterance.id);
                }
                if utterance.end_rule == EndRule::Complete {
                    self.counters.early_closes.fetch_add(1, Ordering::Relaxed);
                }
                let (id, end_ms) = (utterance.id, utterance.end_ms);
                let job = Job::Final {
                    utterance,
                    closed_ms: now_ms(),
                };
                send_blocking(&self.events, Event::SpeechEnded { id, end_ms });
                send_blocking(&self.events, Event::Hearing(false));
                let sent = if self.wait_when_full {
                    self.utterances
                        .send(job)
                        .map_err(|e| TrySendError::Disconnected(e.into_inner()))
                } else {
                    self.utterances.try_send(job)
                };
                match sent {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => send_blocking(
                        &self.events,
                        Event::Dropped {
                            id,
                            reason: DropReason::Overload,
                        },
                    ),
                    Err(TrySendError::Disconnected(_)) => send_blocking(
                        &self.events,
                        Event::Dropped {
                            id,
                            reason: DropReason::Shutdown,
                        },
                    ),
                }
            }
        }
    }
}

/// The dsp thread's work without the thread: device-rate mono audio in,
/// segments out. Also what the benchmark drives.
pub struct Frontend {
    resampler: Resampler,
    framer: Framer,
    scorer: FrameScorer,
}

/// VAD and segmenter: one 16 ms frame at a time.
struct FrameScorer {
    vad: Vad,
    segmenter: Segmenter,
}

impl FrameScorer {
    fn frame(&mut self, frame: &[f32; vad::FRAME_SAMPLES], out: &mut impl FnMut(Segment)) {
        let score = self.vad.score(frame);
        self.segmenter.push(frame, score, out);
    }
}

impl Frontend {
    pub fn new(settings: SegmenterSettings) -> Self {
        Self::with_hint(settings, EndHint::default())
    }

    /// A frontend whose segmenter reads the whisper thread's verdicts from
    /// `hint` (the adaptive end of speech).
    pub fn with_hint(settings: SegmenterSettings, hint: EndHint) -> Self {
        Self::with_vad(settings, hint, Vad::new(settings.vad_threshold))
    }

    /// A frontend whose VAD scores every frame, without the energy gate: the
    /// reference the gate is measured and tested against.
    pub fn ungated(settings: SegmenterSettings) -> Self {
        Self::with_vad(settings, EndHint::default(), Vad::ungated())
    }

    fn with_vad(settings: SegmenterSettings, hint: EndHint, vad: Vad) -> Self {
        Self {
            resampler: Resampler::new(WHISPER_RATE),
            framer: Framer::default(),
            scorer: FrameScorer {
                vad,
                segmenter: Segmenter::new(settings).with_hint(hint),
            },
        }
    }

    /// VAD frames the energy gate kept from the model in this stream.
    pub fn frames_gated(&self) -> u64 {
        self.scorer.vad.frames_skipped()
    }

    /// See [`Segmenter::pausing`].
    pub fn pausing(&self) -> Option<u64> {
        self.scorer.segmenter.pausing()
    }

    /// `--partials`: see [`Segmenter::set_partial_interval_ms`].
    pub fn set_partial_interval_ms(&mut self, ms: u64) {
        self.scorer.segmenter.set_partial_interval_ms(ms);
    }

    /// Push-to-talk: see [`Segmenter::set_hold`].
    pub fn set_hold(&mut self, held: bool) {
        self.scorer.segmenter.set_hold(held);
    }

    /// No utterance is open or starting.
    pub fn is_quiet(&self) -> bool {
        self.scorer.segmenter.is_quiet()
    }

    /// Starts a stream at `sample_rate` whose first frame is at `origin_ms`.
    pub fn begin_stream(&mut self, sample_rate: u32, origin_ms: u64) {
        self.resampler = Resampler::new(sample_rate);
        self.framer = Framer::default();
        self.scorer.vad.reset();
        self.scorer.segmenter.begin_stream(origin_ms);
    }

    /// Feeds mono samples at the stream's rate.
    pub fn push(&mut self, samples: &[f32], out: &mut impl FnMut(Segment)) {
        let Self {
            resampler,
            framer,
            scorer,
        } = self;
        resampler.push(samples, &mut |block| {
            framer.push(block, &mut |frame| scorer.frame(frame, out))
        });
    }

    /// Ends the stream: flushes the resampler and frames, closes an open utterance.
    pub fn end_stream(&mut self, out: &mut impl FnMut(Segment)) {
        let Self {
            resampler,
            framer,
            scorer,
        } = self;
        resampler.finish(&mut |block| framer.push(block, &mut |frame| scorer.frame(frame, out)));
        framer.finish(&mut |frame| scorer.frame(frame, out));
        scorer.segmenter.finish(out);
    }
}
