//! The "whisper" thread: takes [`Job`]s from the dsp thread, decodes them with
//! an [`Engine`] and sends one final event per closed utterance to the event
//! loop. Its decisions — drop before decoding when the deadline cannot be met,
//! reuse a decode made during the silence, map what the engine said to an
//! event — are made here, and tested with a fake engine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;

use super::decoder::{audio_ctx_for, DecodeError, DecodeOptions, Decoder, AUDIO_CTX_FLOOR};
use super::judge::{judge, Heard};
use crate::endpoint::{completeness, Completeness, EndHint};
use crate::event::{send_blocking, DropReason, ErrorKind, Event, EventSender, Timing, Transcript};
use crate::partial::Agreement;
use crate::pipeline::{
    now_ms, samples_to_ms, Job, PartialSlot, Speculation, StopDeadline, Utterance, WorkerThread,
    WHISPER_RATE,
};

/// Milliseconds kept between the end of a decode and the deadline, for
/// publishing the signal.
const PUBLISH_MARGIN_MS: u64 = 20;
/// The warm-up decode: this much silence, so the first utterance is not paid
/// for by lazy allocations.
const WARMUP_SAMPLES: usize = WHISPER_RATE as usize;

/// What turns audio into words: whisper.cpp in the daemon, a fake in tests.
pub trait Engine: Send + 'static {
    /// Decodes 16 kHz mono audio and judges it. Must stop with
    /// [`DecodeError::Aborted`] soon after `options.should_abort()` turns true.
    fn hear(&mut self, samples: &[f32], options: DecodeOptions<'_>) -> Result<Heard, DecodeError>;
}

impl Engine for Decoder {
    fn hear(&mut self, samples: &[f32], options: DecodeOptions<'_>) -> Result<Heard, DecodeError> {
        self.decode(samples, options).map(|d| judge(&d))
    }
}

/// Counters the transcriber keeps; read by the stats.
#[derive(Debug, Default)]
pub struct TranscriberCounters {
    /// Total decode wall time, ms (speculative decodes included).
    pub decode_ms: AtomicU64,
    /// Total audio of final utterances, ms.
    pub audio_ms: AtomicU64,
}

/// The whisper thread's inputs and outputs.
pub struct TranscriberSetup {
    /// Jobs from the dsp thread, which holds the sender.
    pub jobs: Receiver<Job>,
    /// Transcripts and drops to the event loop, which holds the receiver.
    pub events: EventSender,
    /// A transcript must reach the event loop within this of its `end_ms`.
    pub max_latency_ms: u64,
    /// Shared with the stats, which only read them.
    pub counters: Arc<TranscriberCounters>,
    /// Named by the dsp thread: whose tentative audio is still current.
    pub speculation: Speculation,
    /// Set by the event loop when the daemon stops.
    pub stop: StopDeadline,
    /// Threads per decode.
    pub threads: usize,
    /// Where the verdict on each speculative decode goes (the segmenter reads it).
    pub end_hint: EndHint,
    /// The spoken language, for the completeness rule.
    pub language: String,
    /// `--partials`: interim snapshots from the dsp thread (`None`: off).
    pub partials: Option<PartialSlot>,
}

/// Handle to the whisper thread. The thread ends when the job channel closes
/// (the dsp thread dropped its sender) and the queue is drained; dropping the
/// handle waits for that.
pub struct Transcriber {
    thread: WorkerThread,
}

impl Transcriber {
    /// Starts the thread. Its first act is a warm-up decode; capture starts
    /// meanwhile, and a job that arrives during the warm-up waits for it in the
    /// queue. The warm-up's time does not seed the decode-time estimate: it
    /// pays the lazy allocations and starts cold, often beside a busy start-up,
    /// so it measured 2.4x a warm decode's pace under load and dropped the
    /// first utterance of a session that the decoder then met easily.
    pub fn spawn<E: Engine>(engine: E, setup: TranscriberSetup) -> Self {
        let thread = std::thread::Builder::new()
            .name("whisper".into())
            .spawn(move || {
                let mut engine = engine;
                let warmup = vec![0.0f32; WARMUP_SAMPLES];
                let started = Instant::now();
                let _ = engine.hear(&warmup, DecodeOptions::with_ctx(AUDIO_CTX_FLOOR));
                let warm_ms = started.elapsed().as_secs_f64() * 1000.0;
                log::debug!("warm-up decode took {warm_ms:.0} ms");
                Worker::new(engine, setup, None).run()
            })
            .expect("spawn whisper thread");
        Self {
            thread: WorkerThread::new(thread),
        }
    }

    /// Waits for the thread to drain its queue and end.
    pub fn join(self) {
        self.thread.join();
    }

    /// Leaves the thread running (the process exits without it).
    pub fn detach(mut self) {
        self.thread.detach();
    }
}

/// A finished speculative decode, kept until its utterance closes.
struct Kept {
    id: u64,
    samples: usize,
    heard: Heard,
    started_ms: u64,
    ended_ms: u64,
    threads: usize,
}

/// How an utterance's decode went.
struct Outcome {
    result: Result<Heard, DecodeError>,
    started_ms: u64,
    ended_ms: u64,
    threads: usize,
}

/// The whisper thread's state.
pub struct Worker<E> {
    engine: E,
    setup: TranscriberSetup,
    /// The fastest decode seen, in milliseconds per encoder frame of context
    /// (`None` until a decode has finished). A decode is skipped only when
    /// even this pace would miss the deadline: the miss is then certain.
    /// Before any decode nothing is certain, so the first one always runs
    /// (and is aborted at the deadline if it must be). An average would not
    /// do: a slow spell raises it, the drops it causes are never decoded, and
    /// nothing would bring it back down.
    fastest_ms_per_ctx_frame: Option<f64>,
    kept: Option<Kept>,
    /// The interim decodes of the open utterance.
    agreement: Agreement,
}

impl<E: Engine> Worker<E> {
    /// A worker whose fastest decode so far ran at `ms_per_ctx_frame` (`None`:
    /// none has run yet).
    pub fn new(engine: E, setup: TranscriberSetup, ms_per_ctx_frame: Option<f64>) -> Self {
        Self {
            engine,
            setup,
            fastest_ms_per_ctx_frame: ms_per_ctx_frame,
            kept: None,
            agreement: Agreement::default(),
        }
    }

    /// Works until the job channel closes and is drained.
    pub fn run(mut self) {
        let events = self.setup.events.clone();
        let emit = &mut |e| send_blocking(&events, e);
        let Some(partials) = self.setup.partials.clone() else {
            while let Ok(job) = self.setup.jobs.recv() {
                self.handle(job, emit);
            }
            return;
        };
        let jobs = self.setup.jobs.clone();
        loop {
            // Jobs first: an interim decode only runs when nothing else waits.
            match jobs.try_recv() {
                Ok(job) => {
                    self.handle(job, emit);
                    continue;
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => return,
                Err(crossbeam_channel::TryRecvError::Empty) => {}
            }
            crossbeam_channel::select! {
                recv(jobs) -> job => match job {
                    Ok(job) => self.handle(job, emit),
                    Err(_) => return,
                },
                recv(partials.wake()) -> _ => {
                    if jobs.is_empty() {
                        if let Some(snapshot) = partials.take() {
                            self.partial(snapshot, &partials, emit);
                        }
                    }
                }
            }
        }
    }

    /// An interim decode of an open utterance: stopped the moment its speech
    /// pauses or ends or any job arrives, so it never delays a final one.
    fn partial(
        &mut self,
        utterance: Utterance,
        partials: &PartialSlot,
        emit: &mut impl FnMut(Event),
    ) {
        let id = utterance.id;
        let (slot, jobs, stop) = (
            partials.clone(),
            self.setup.jobs.clone(),
            self.setup.stop.clone(),
        );
        let current = move || slot.is_current(id) && jobs.is_empty() && !stop.passed();
        if !current() {
            return;
        }
        let deadline = self.deadline(&utterance);
        let outcome = self.decode(&utterance, deadline, &current);
        partials.record_decode_ms(outcome.ended_ms - outcome.started_ms);
        if let (Ok(Heard::Text { text, .. }), true) = (outcome.result, partials.is_current(id)) {
            let p = self.agreement.update(id, &text);
            emit(Event::Partial {
                id,
                text: p.text,
                stable: p.stable,
            });
        }
    }

    /// One job; what the event loop must hear goes to `emit`.
    fn handle(&mut self, job: Job, emit: &mut impl FnMut(Event)) {
        match job {
            Job::Speculate(utterance) => self.speculate(utterance),
            Job::Final {
                utterance,
                closed_ms,
            } => self.transcribe(utterance, closed_ms, emit),
        }
    }

    /// Decodes audio that may still grow. Skipped when anything else is queued
    /// (that is newer: the utterance's close, or a later one) or when speech has
    /// already resumed; stopped the moment speech resumes.
    fn speculate(&mut self, utterance: Utterance) {
        let id = utterance.id;
        if !self.setup.speculation.is_current(id) || !self.setup.jobs.is_empty() {
            return;
        }
        let (speculation, stop) = (self.setup.speculation.clone(), self.setup.stop.clone());
        let current = move || speculation.is_current(id) && !stop.passed();
        let deadline = self.deadline(&utterance);
        let outcome = self.decode(&utterance, deadline, &current);
        if let Ok(heard) = &outcome.result {
            let verdict = match heard {
                Heard::Text {
                    text,
                    confidence,
                    language,
                } => {
                    // `--language auto`: the rule of the language heard.
                    let code = match (self.setup.language.as_str(), language) {
                        ("auto", Some(spoken)) => spoken.code.as_str(),
                        (code, _) => code,
                    };
                    completeness(text, *confidence, code)
                }
                Heard::NoSpeech { .. } => Completeness::Unsure,
            };
            // The text itself is logged where it is published (in wake
            // mode only if it is addressed).
            log::debug!("utterance {id}: speculative decode judged {verdict:?}");
            self.setup
                .end_hint
                .post(id, utterance.samples.len(), verdict);
        }
        self.kept = match outcome.result {
            Ok(heard) => Some(Kept {
                id,
                samples: utterance.samples.len(),
                heard,
                started_ms: outcome.started_ms,
                ended_ms: outcome.ended_ms,
                threads: outcome.threads,
            }),
            Err(_) => {
                log::debug!("utterance {id}: speculative decode stopped");
                None
            }
        };
    }

    fn deadline(&self, utterance: &Utterance) -> u64 {
        let max = self.setup.max_latency_ms;
        utterance.end_ms + max - PUBLISH_MARGIN_MS.min(max)
    }

    fn decode(
        &mut self,
        utterance: &Utterance,
        deadline: u64,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Outcome {
        let audio_ctx = audio_ctx_for(utterance.samples.len(), AUDIO_CTX_FLOOR);
        let threads = self.setup.threads;
        let started_ms = now_ms();
        let started = Instant::now();
        let result = self.engine.hear(
            &utterance.samples,
            DecodeOptions {
                audio_ctx,
                deadline_ms: Some(deadline),
                keep_going: Some(keep_going),
                threads: Some(threads),
            },
        );
        let decode_ms = started.elapsed().as_millis() as u64;
        self.setup
            .counters
            .decode_ms
            .fetch_add(decode_ms, Ordering::Relaxed);
        if result.is_ok() {
            let observed = decode_ms as f64 / f64::from(audio_ctx);
            self.fastest_ms_per_ctx_frame = Some(
                self.fastest_ms_per_ctx_frame
                    .map_or(observed, |fastest| fastest.min(observed)),
            );
        }
        Outcome {
            result,
            started_ms,
            ended_ms: started_ms + decode_ms,
            threads,
        }
    }

    /// A closed utterance: exactly one final event (a transcript or a drop).
    fn transcribe(&mut self, utterance: Utterance, closed_ms: u64, emit: &mut impl FnMut(Event)) {
        let id = utterance.id;
        self.setup
            .counters
            .audio_ms
            .fetch_add(samples_to_ms(utterance.samples.len()), Ordering::Relaxed);
        let dropped = |reason| Event::Dropped { id, reason };
        let kept = self
            .kept
            .take()
            .filter(|s| s.id == id && s.samples == utterance.samples.len());
        let (outcome, speculative) = match kept {
            // The same samples (a tentative utterance is a prefix of the open
            // buffer, so equal length means equal audio): the same text.
            Some(s) => {
                let outcome = Outcome {
                    result: Ok(s.heard),
                    started_ms: s.started_ms,
                    ended_ms: s.ended_ms,
                    threads: s.threads,
                };
                (outcome, true)
            }
            None => {
                let deadline = self.deadline(&utterance);
                let audio_ctx = audio_ctx_for(utterance.samples.len(), AUDIO_CTX_FLOOR);
                let expected_ms = self
                    .fastest_ms_per_ctx_frame
                    .map_or(0, |pace| (pace * f64::from(audio_ctx)) as u64);
                // A stop is never judged by an estimate: unless its moment has
                // come, the decode starts and is aborted if the moment comes
                // first.
                let now = now_ms();
                if self.setup.stop.passed_at(now) {
                    log::info!("utterance {id}: dropped, sottod is stopping");
                    return emit(dropped(DropReason::Shutdown));
                }
                if now + expected_ms > deadline {
                    log::info!("utterance {id}: dropped before decoding, {expected_ms} ms decode would miss the deadline");
                    return emit(dropped(DropReason::Deadline));
                }
                let stop = self.setup.stop.clone();
                let running = move || !stop.passed();
                (self.decode(&utterance, deadline, &running), false)
            }
        };
        let decode_ms = outcome.ended_ms - outcome.started_ms;
        let event = match outcome.result {
            Ok(Heard::Text {
                text,
                confidence,
                language,
            }) => {
                log::info!(
                    "utterance {id}: {} chars in {decode_ms} ms on {} thread(s){}",
                    text.len(),
                    outcome.threads,
                    if speculative {
                        ", decoded during the silence"
                    } else {
                        ""
                    }
                );
                Event::Transcript(Transcript {
                    id,
                    text,
                    start_ms: utterance.start_ms,
                    end_ms: utterance.end_ms,
                    confidence,
                    timing: Some(Timing {
                        closed_ms,
                        decode_started_ms: outcome.started_ms,
                        decode_ended_ms: outcome.ended_ms,
                        ready_ms: now_ms(),
                        speculative,
                        threads: outcome.threads,
                        end_rule: utterance.end_rule,
                    }),
                    language,
                })
            }
            Ok(Heard::NoSpeech { why }) => {
                log::info!("utterance {id}: no speech ({why})");
                dropped(DropReason::NoSpeech)
            }
            Err(DecodeError::Aborted) if self.setup.stop.passed() => {
                log::info!(
                    "utterance {id}: decode stopped after {decode_ms} ms, sottod is stopping"
                );
                dropped(DropReason::Shutdown)
            }
            Err(DecodeError::Aborted) => {
                log::info!("utterance {id}: decode aborted at the deadline after {decode_ms} ms");
                dropped(DropReason::Deadline)
            }
            Err(e @ DecodeError::Whisper(_)) => {
                emit(Event::Error {
                    kind: ErrorKind::Engine,
                    message: format!("utterance {id}: {e}"),
                });
                dropped(DropReason::Error)
            }
        };
        emit(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::EndRule;
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// How the fake engine answers one call.
    enum Answer {
        /// At once.
        Hear(Heard),
        /// Fails as whisper.cpp can.
        Fail(&'static str),
        /// Takes this long whatever the options say (a slow spell), then hears words.
        Take(Duration),
        /// Works until aborted (a slow machine, deterministically): a decode
        /// that is never aborted ends after `CAP` with this text, which the
        /// tests then see as a wrong answer.
        UntilAborted,
    }

    const CAP: Duration = Duration::from_secs(20);

    /// A scripted engine that counts its calls and its aborts.
    struct Fake {
        answers: VecDeque<Answer>,
        calls: Arc<AtomicUsize>,
        aborts: Arc<AtomicUsize>,
    }

    impl Engine for Fake {
        fn hear(&mut self, _: &[f32], options: DecodeOptions<'_>) -> Result<Heard, DecodeError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match self
                .answers
                .pop_front()
                .expect("the test scripted this call")
            {
                Answer::Hear(h) => Ok(h),
                Answer::Fail(why) => Err(DecodeError::Whisper(why.into())),
                Answer::Take(d) => {
                    std::thread::sleep(d);
                    Ok(words("slow"))
                }
                Answer::UntilAborted => {
                    let t = Instant::now();
                    while t.elapsed() < CAP {
                        if options.should_abort() {
                            self.aborts.fetch_add(1, Ordering::SeqCst);
                            return Err(DecodeError::Aborted);
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Ok(words("never aborted"))
                }
            }
        }
    }

    fn words(text: &str) -> Heard {
        Heard::Text {
            text: text.into(),
            confidence: 0.9,
            language: None,
        }
    }

    /// A worker over a fake, with its job sender kept open (so `speculate`
    /// sees an empty queue) and the stop deadline it obeys.
    struct Rig {
        worker: Worker<Fake>,
        calls: Arc<AtomicUsize>,
        aborts: Arc<AtomicUsize>,
        speculation: Speculation,
        stop: StopDeadline,
        _jobs: crossbeam_channel::Sender<Job>,
    }

    fn rig(answers: Vec<Answer>, max_latency_ms: u64, ms_per_ctx_frame: f64) -> Rig {
        rig_with(answers, max_latency_ms, Some(ms_per_ctx_frame))
    }

    fn rig_with(answers: Vec<Answer>, max_latency_ms: u64, ms_per_ctx_frame: Option<f64>) -> Rig {
        let (fake, calls, aborts) = fake(answers);
        let (setup, jobs_tx, _) = setup(max_latency_ms);
        Rig {
            speculation: setup.speculation.clone(),
            stop: setup.stop.clone(),
            worker: Worker::new(fake, setup, ms_per_ctx_frame),
            calls,
            aborts,
            _jobs: jobs_tx,
        }
    }

    type Counter = Arc<AtomicUsize>;

    /// A fake engine and its call and abort counters.
    fn fake(answers: Vec<Answer>) -> (Fake, Counter, Counter) {
        let (calls, aborts) = (Counter::default(), Counter::default());
        let fake = Fake {
            answers: answers.into(),
            calls: Arc::clone(&calls),
            aborts: Arc::clone(&aborts),
        };
        (fake, calls, aborts)
    }

    /// A setup with the ends its channels need: the job sender and the
    /// event receiver.
    fn setup(
        max_latency_ms: u64,
    ) -> (
        TranscriberSetup,
        crossbeam_channel::Sender<Job>,
        tokio::sync::mpsc::Receiver<Event>,
    ) {
        let (jobs_tx, jobs) = crossbeam_channel::bounded(4);
        let (events, events_rx) = tokio::sync::mpsc::channel(4);
        let setup = TranscriberSetup {
            jobs,
            events,
            max_latency_ms,
            counters: Arc::default(),
            speculation: Speculation::default(),
            stop: StopDeadline::default(),
            threads: 1,
            end_hint: EndHint::default(),
            language: "en".into(),
            partials: None,
        };
        (setup, jobs_tx, events_rx)
    }

    #[test]
    fn an_interim_decode_stops_when_a_job_comes_or_its_speech_pauses() {
        let mut r = rig(
            vec![
                Answer::UntilAborted,
                Answer::UntilAborted,
                Answer::Hear(words("Turn on")),
            ],
            // A deadline far off: only the job or the pause can stop it.
            600_000,
            1.0,
        );
        let slot = PartialSlot::default();
        let mut events = Vec::new();
        // A job arrives mid-decode: the interim decode gives way.
        slot.offer(utterance(1));
        let jobs = r._jobs.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            jobs.send(Job::Speculate(utterance(1))).unwrap();
        });
        let snapshot = slot.take().unwrap();
        r.worker.partial(snapshot, &slot, &mut |e| events.push(e));
        sender.join().unwrap();
        assert_eq!(r.aborts.load(Ordering::SeqCst), 1);
        while r.worker.setup.jobs.try_recv().is_ok() {}
        // Its speech pauses mid-decode: stopped too.
        slot.offer(utterance(1));
        let snapshot = slot.take().unwrap();
        let withdraw = slot.clone();
        let pauser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            withdraw.withdraw(1);
        });
        r.worker.partial(snapshot, &slot, &mut |e| events.push(e));
        pauser.join().unwrap();
        assert_eq!(r.aborts.load(Ordering::SeqCst), 2);
        assert!(
            events.is_empty(),
            "a stopped decode publishes nothing: {events:?}"
        );
        // Withdrawn before it starts: not even decoded.
        slot.offer(utterance(2));
        slot.withdraw(2);
        assert!(slot.take().is_none());
        // A finished one becomes a Partial.
        slot.offer(utterance(3));
        let snapshot = slot.take().unwrap();
        r.worker.partial(snapshot, &slot, &mut |e| events.push(e));
        assert_eq!(
            events,
            [Event::Partial {
                id: 3,
                text: "Turn on".into(),
                stable: 0
            }]
        );
        assert_eq!(r.calls.load(Ordering::SeqCst), 3);
    }

    /// A one-second utterance that ended now.
    fn utterance(id: u64) -> Utterance {
        let end_ms = now_ms();
        Utterance {
            id,
            samples: vec![0.0; WHISPER_RATE as usize],
            start_ms: end_ms - 1_000,
            end_ms,
            end_rule: EndRule::Silence,
        }
    }

    impl Rig {
        fn run(&mut self, job: Job) -> Vec<Event> {
            let mut out = Vec::new();
            self.worker.handle(job, &mut |e| out.push(e));
            out
        }

        fn close(&mut self, utterance: Utterance) -> Vec<Event> {
            self.run(Job::Final {
                utterance,
                closed_ms: now_ms(),
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn dropped(id: u64, reason: DropReason) -> Vec<Event> {
        vec![Event::Dropped { id, reason }]
    }

    #[test]
    fn a_decode_certain_to_miss_the_deadline_is_dropped_without_decoding() {
        // 100 ms per context frame: 38 s expected for 384 frames, bound 5 s.
        let mut r = rig(vec![Answer::Hear(words("late"))], 5_000, 100.0);
        assert_eq!(r.close(utterance(1)), dropped(1, DropReason::Deadline));
        assert_eq!(r.calls(), 0, "the engine was not asked");
    }

    #[test]
    fn a_slow_warm_up_does_not_drop_the_first_utterance() {
        // The warm-up takes 1.5 s (cold, on a busy machine) and the
        // utterance, which waited for it, has 3 s. Taken as the pace, the
        // warm-up would expect another 1.5 s and drop it unseen; the decode
        // itself is quick.
        let (fake, calls, _) = fake(vec![
            Answer::Take(Duration::from_millis(1_500)),
            Answer::Hear(words("Lights on.")),
        ]);
        let (setup, jobs, mut events) = setup(3_000);
        let transcriber = Transcriber::spawn(fake, setup);
        jobs.send(Job::Final {
            utterance: utterance(1),
            closed_ms: now_ms(),
        })
        .unwrap();
        drop(jobs);
        let event = events.blocking_recv();
        assert!(
            matches!(&event, Some(Event::Transcript(t)) if t.text == "Lights on."),
            "{event:?}"
        );
        transcriber.join();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the warm-up and the decode"
        );
    }

    #[test]
    fn before_any_decode_nothing_is_dropped_unseen() {
        // No pace known yet and a deadline that a slow decode would miss:
        // the decode runs and is aborted at the deadline, not skipped.
        let mut r = rig_with(vec![Answer::UntilAborted], 300, None);
        assert_eq!(r.close(utterance(1)), dropped(1, DropReason::Deadline));
        assert_eq!(r.calls(), 1, "decoded, then aborted");
        assert_eq!(r.aborts.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_slow_spell_does_not_lock_the_worker_into_dropping() {
        // One decode takes 1.5 s (the machine was busy); the next utterance has
        // 380 ms. An average of past decodes would now expect ~450 ms and drop
        // it, and every one after it, unseen; the fastest pace seen (the
        // first, 0 ms) says the deadline can still be met, so it is decoded.
        let mut r = rig(
            vec![
                Answer::Take(Duration::from_millis(1_500)),
                Answer::Hear(words("Lights on.")),
            ],
            400,
            0.0,
        );
        let first = r.close(utterance(1));
        assert!(matches!(&first[..], [Event::Transcript(_)]), "{first:?}");
        let second = r.close(utterance(2));
        assert!(
            matches!(&second[..], [Event::Transcript(t)] if t.text == "Lights on."),
            "{second:?}"
        );
        assert_eq!(r.calls(), 2);
    }

    #[test]
    fn a_slow_decode_is_aborted_at_the_deadline() {
        let mut r = rig(vec![Answer::UntilAborted], 300, 0.0);
        assert_eq!(r.close(utterance(1)), dropped(1, DropReason::Deadline));
        assert_eq!(r.aborts.load(Ordering::SeqCst), 1, "aborted, not finished");
    }

    #[test]
    fn words_become_a_transcript_with_its_timing() {
        let mut r = rig(vec![Answer::Hear(words("Turn on the lights."))], 5_000, 0.0);
        let u = utterance(3);
        let (start_ms, end_ms) = (u.start_ms, u.end_ms);
        let events = r.close(u);
        let [Event::Transcript(t)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!((t.id, t.text.as_str()), (3, "Turn on the lights."));
        assert_eq!((t.start_ms, t.end_ms), (start_ms, end_ms));
        let timing = t.timing.expect("the daemon knows the timing");
        assert!(!timing.speculative);
        assert!(timing.closed_ms <= timing.decode_started_ms);
        assert!(timing.decode_ended_ms <= timing.ready_ms);
    }

    #[test]
    fn no_speech_is_dropped_as_no_speech() {
        let mut r = rig(
            vec![Answer::Hear(Heard::NoSpeech { why: "hum".into() })],
            5_000,
            0.0,
        );
        assert_eq!(r.close(utterance(1)), dropped(1, DropReason::NoSpeech));
    }

    #[test]
    fn an_engine_failure_is_an_error_not_silence() {
        let mut r = rig(vec![Answer::Fail("failed to encode")], 5_000, 0.0);
        let events = r.close(utterance(4));
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(
            matches!(&events[0], Event::Error { kind: ErrorKind::Engine, message } if message.contains("failed to encode")),
            "{events:?}"
        );
        assert_eq!(
            events[1],
            Event::Dropped {
                id: 4,
                reason: DropReason::Error
            }
        );
    }

    #[test]
    fn a_decode_made_during_the_silence_is_published_without_decoding_again() {
        let mut r = rig(vec![Answer::Hear(words("Stop."))], 5_000, 0.0);
        r.speculation.name(5);
        assert!(r.run(Job::Speculate(utterance(5))).is_empty());
        let events = r.close(utterance(5));
        let [Event::Transcript(t)] = &events[..] else {
            panic!("{events:?}")
        };
        assert!(t.timing.is_some_and(|t| t.speculative));
        assert_eq!(t.text, "Stop.");
        assert_eq!(r.calls(), 1, "one decode for both jobs");
    }

    #[test]
    fn a_speculation_on_other_audio_is_not_reused() {
        let mut r = rig(
            vec![
                Answer::Hear(words("Stop")),
                Answer::Hear(words("Stop the music.")),
            ],
            5_000,
            0.0,
        );
        r.speculation.name(6);
        r.run(Job::Speculate(utterance(6)));
        let mut longer = utterance(6);
        longer.samples.extend_from_slice(&[0.0; 1600]);
        let events = r.close(longer);
        assert!(
            matches!(&events[..], [Event::Transcript(t)] if t.text == "Stop the music." && !t.timing.is_some_and(|t| t.speculative)),
            "{events:?}"
        );
        assert_eq!(r.calls(), 2);
    }

    #[test]
    fn stale_tentative_audio_is_not_decoded() {
        let mut r = rig(vec![], 5_000, 0.0);
        r.speculation.name(8);
        r.speculation.withdraw(8);
        assert!(r.run(Job::Speculate(utterance(8))).is_empty());
        assert_eq!(r.calls(), 0);
    }

    #[test]
    fn speech_resuming_stops_a_speculative_decode() {
        let mut r = rig(
            vec![Answer::UntilAborted, Answer::Hear(words("Go on."))],
            60_000,
            0.0,
        );
        r.speculation.name(9);
        let withdraw = r.speculation.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            withdraw.withdraw(9);
        });
        r.run(Job::Speculate(utterance(9)));
        t.join().unwrap();
        assert_eq!(r.aborts.load(Ordering::SeqCst), 1);
        let events = r.close(utterance(9));
        assert!(
            matches!(&events[..], [Event::Transcript(t)] if !t.timing.is_some_and(|t| t.speculative)),
            "{events:?}"
        );
    }

    #[test]
    fn after_the_stop_deadline_nothing_more_is_decoded() {
        let mut r = rig(vec![Answer::Hear(words("late"))], 5_000, 0.0);
        r.stop.set(now_ms() - 1);
        assert_eq!(r.close(utterance(1)), dropped(1, DropReason::Shutdown));
        assert_eq!(r.calls(), 0);
    }

    #[test]
    fn a_stop_soon_does_not_drop_what_may_still_fit() {
        // The fastest decode seen (0.5 ms per context frame: ~100 ms here)
        // would end after the stop's moment, but estimates can be wrong: the
        // decode runs, and it fits.
        let mut r = rig(vec![Answer::Hear(words("in time"))], 5_000, 0.5);
        r.stop.set(now_ms() + 20);
        let events = r.close(utterance(3));
        assert!(matches!(&events[..], [Event::Transcript(_)]), "{events:?}");
        assert_eq!(r.calls(), 1);
    }

    #[test]
    fn a_stop_during_a_decode_drops_it_as_shutdown() {
        let mut r = rig(vec![Answer::UntilAborted], 60_000, 0.0);
        let stop = r.stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            stop.set(now_ms());
        });
        assert_eq!(r.close(utterance(2)), dropped(2, DropReason::Shutdown));
        t.join().unwrap();
    }
}
