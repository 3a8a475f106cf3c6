//! `run`: checks the input, takes the bus name, loads the model, starts the
//! [`Pipeline`] (every worker, owned by one value) and runs the [`EventLoop`]
//! until the input ends or the shutdown future resolves. Tests drive it with
//! their own shutdown future.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;

use crate::audio::device::{find_device, DeviceSelector};
use crate::audio::wav::WavInput;
use crate::audio::{SourceControl, SourceHandle, SourceInput, STREAM_QUEUE};
use crate::bus::{Served, Service};
use crate::config::Mode;
use crate::config::{Config, Input};
use crate::dsp::Dsp;
use crate::endpoint::EndHint;
use crate::event::{DropReason, Event, EventSender, State, Transcript};
use crate::listen::{Listeners, Unheard};
use crate::notify::Notifier;
use crate::pipeline::{now_ms, Hold, PartialSlot, Speculation, StopDeadline, WorkerThread};
use crate::stats::{lock, SharedCounters, Stats};
use crate::transcribe::{Decoder, Transcriber, TranscriberSetup};
use crate::wake::{Verdict, WakeRule};

/// Events waiting for the event loop. Small: the loop only formats and sends.
const EVENT_QUEUE: usize = 256;
/// After SIGTERM, an utterance still open or queued may finish decoding for
/// this long; later it is dropped with reason `shutdown`. A decode of the
/// few seconds open at a stop takes 0.2-0.5 s on 2 cores, but on a machine
/// whose cores are stolen by its neighbours it has taken 1.4 s: 3 s keeps the
/// sentence in that case too, and a stop with nothing open is not delayed.
const SHUTDOWN_GRACE_MS: u64 = 3_000;
/// After SIGTERM, the process exits within this even if a worker hangs.
const SHUTDOWN_LIMIT: Duration = Duration::from_millis(3_600);
/// Utterances waiting for the decoder. A queue longer than this could not be
/// decoded within any sensible latency bound; more are dropped as `overload`.
const UTTERANCE_QUEUE: usize = 4;

/// The state the event loop publishes, and where it sends it.
struct Publisher {
    /// `None` with `--bus none`.
    bus: Option<Service>,
    json: bool,
    /// Is the input on the wall clock (a microphone, a paced file)? With
    /// `--no-pace` latencies mean nothing and are left out of the JSON.
    paced: bool,
    max_latency_ms: u64,
    /// Shared with `GetStats`; locked only to record or copy.
    stats: Arc<Mutex<Stats>>,
    source_state: State,
    hearing: bool,
    /// Callers of `Listen`, shared with the D-Bus object.
    listeners: Arc<Mutex<Listeners>>,
    /// Wake mode: which transcripts are addressed.
    wake: Option<WakeRule>,
    /// Utterances started and not yet ended by a transcript or a drop, with
    /// whether their `SpeechEnded` was published: what a stop that cannot wait
    /// for the workers must still end, so the invariant holds on every path.
    open: std::collections::BTreeMap<u64, bool>,
}

impl Publisher {
    /// The published `State`: the source's, or `hearing` while an utterance is open.
    fn state(&self) -> State {
        match (self.source_state, self.hearing) {
            (State::Listening, true) => State::Hearing,
            (s, _) => s,
        }
    }

    /// Ends every utterance still open as `Dropped(shutdown)` (after its
    /// `SpeechEnded`, stamped now, if that was not published yet).
    async fn end_open_utterances(&mut self) {
        for (id, ended) in std::mem::take(&mut self.open) {
            if !ended {
                self.publish(Event::SpeechEnded {
                    id,
                    end_ms: now_ms(),
                })
                .await;
            }
            self.publish(Event::Dropped {
                id,
                reason: DropReason::Shutdown,
            })
            .await;
        }
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, Listeners> {
        // Plain bookkeeping: a panic elsewhere cannot leave it torn.
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wake mode: is transcript `t` addressed? `Some` with the text to
    /// publish (the phrase stripped; `Woken` already published), `None` when
    /// it is not (its text then goes nowhere). A `Listen` caller waiting for
    /// it addresses it too.
    async fn address(&mut self, mut t: Transcript) -> Option<Transcript> {
        let Some(rule) = &mut self.wake else {
            return Some(t);
        };
        match rule.judge(&t.text, t.start_ms, t.end_ms) {
            Verdict::Woken { text } => {
                t.text = text;
                lock(&self.stats).woken += 1;
                log::info!("utterance {}: woken", t.id);
                self.emit(Event::Woken { id: t.id }, 0).await;
                Some(t)
            }
            Verdict::FollowUp => {
                log::info!("utterance {}: follows the wake phrase", t.id);
                Some(t)
            }
            Verdict::NotAddressed if self.listeners().claims(t.id) => Some(t),
            Verdict::NotAddressed => None,
        }
    }

    /// A Partial as it may be published: only while its utterance is open
    /// and before its `SpeechEnded` (an interim decode may finish just
    /// after), and in wake mode only once it begins with the phrase (which
    /// is stripped); `None` holds it back.
    fn partial(&self, id: u64, text: String, stable: u32) -> Option<Event> {
        if self.open.get(&id) != Some(&false) {
            return None;
        }
        let Some(rule) = &self.wake else {
            return Some(Event::Partial { id, text, stable });
        };
        let rest = rule.phrase().strip(&text)?.rest;
        let cut = text.chars().count() - rest.chars().count();
        Some(Event::Partial {
            id,
            stable: stable.saturating_sub(cut as u32),
            text: rest,
        })
    }

    /// Publishes an event from a worker: a transcript is first addressed
    /// (wake mode) and held to its latency bound.
    async fn publish(&mut self, event: Event) {
        let mut latency_ms = 0;
        let event = match event {
            Event::Partial { id, text, stable } => match self.partial(id, text, stable) {
                Some(partial) => partial,
                None => return,
            },
            Event::Transcript(t) => match (t.id, self.address(t).await) {
                (id, None) => Event::Dropped {
                    id,
                    reason: DropReason::NotAddressed,
                },
                (_, Some(t)) => match bound_latency(t, now_ms(), self.max_latency_ms) {
                    Ok((t, latency)) => {
                        latency_ms = latency;
                        lock(&self.stats).record_transcript(latency_ms);
                        log::info!(
                            "utterance {}: transcript, latency {latency_ms} ms, decode {} ms",
                            t.id,
                            t.decode_ms()
                        );
                        log::debug!("utterance {}: {:?}", t.id, t.text);
                        Event::Transcript(t)
                    }
                    Err(late) => late,
                },
            },
            other => other,
        };
        self.emit(event, latency_ms).await;
    }

    /// Sends an event everywhere it goes: `Listen` callers, the bus, the
    /// properties, stdout with `--json`, the statistics.
    async fn emit(&mut self, event: Event, latency_ms: u64) {
        match &event {
            Event::SpeechStarted { id, .. } => {
                self.open.insert(*id, false);
                self.listeners().started(*id);
            }
            Event::SpeechEnded { id, .. } => {
                self.open.insert(*id, true);
            }
            Event::Transcript(t) => {
                self.open.remove(&t.id);
                self.listeners().finished(t.id, Ok((t.id, t.text.clone())));
            }
            Event::Dropped { id, reason } => {
                self.open.remove(id);
                lock(&self.stats).record_drop(*reason);
                self.listeners()
                    .finished(*id, Err(Unheard::Dropped(*reason)));
            }
            Event::State(s) => self.source_state = *s,
            Event::Hearing(h) => self.hearing = *h,
            Event::Error { kind, message } => log::warn!("{kind}: {message}"),
            _ => {}
        }
        if let Some(bus) = &self.bus {
            bus.publish(&event, latency_ms).await;
            if matches!(event, Event::State(_) | Event::Hearing(_)) {
                bus.set_state(self.state()).await;
            }
            if let Event::Device(name) = &event {
                bus.set_device(name).await;
            }
        }
        if self.json {
            if let Some(value) = event.to_json(self.paced.then_some(latency_ms)) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{value}");
                let _ = out.flush();
            }
        }
    }
}

/// The latency bound, applied where transcripts are published: a transcript
/// published at `now_ms` is late when more than `max_latency_ms` passed since
/// its speech ended; a late one becomes `Dropped(deadline)` (the bound is a
/// promise, not a statistic). Otherwise it comes back with its latency.
// The error is the event that takes the transcript's place, no bigger than
// the transcript that came in; once per utterance.
#[allow(clippy::result_large_err)]
fn bound_latency(
    t: Transcript,
    now_ms: u64,
    max_latency_ms: u64,
) -> Result<(Transcript, u64), Event> {
    let latency_ms = now_ms.saturating_sub(t.end_ms);
    if latency_ms > max_latency_ms {
        log::info!(
            "utterance {}: ready {latency_ms} ms after its end, past the bound",
            t.id
        );
        return Err(Event::Dropped {
            id: t.id,
            reason: DropReason::Deadline,
        });
    }
    Ok((t, latency_ms))
}

/// Every worker of a running daemon. Dropping it stops them in pipeline order:
/// the source's command queue closes and the source ends, which closes the
/// dsp thread's input, whose end closes the whisper thread's; each handle
/// waits for its thread.
pub struct Pipeline {
    // Field order is drop order: upstream first.
    source: SourceHandle,
    dsp: WorkerThread,
    whisper: Transcriber,
    /// Set at shutdown: the whisper thread stops working at this moment.
    stop: StopDeadline,
}

impl Pipeline {
    /// Starts the whisper thread, the dsp thread and the source (in that
    /// order, so nothing captured waits for a missing consumer), all sending
    /// their events to `events`.
    pub async fn start(
        config: &Config,
        input: SourceInput,
        decoder: Decoder,
        source_control: SourceControl,
        hold: Hold,
        counters: &SharedCounters,
        events: EventSender,
    ) -> anyhow::Result<Self> {
        let (utterance_tx, utterance_rx) = crossbeam_channel::bounded(UTTERANCE_QUEUE);
        let (stream_tx, stream_rx) = crossbeam_channel::bounded(STREAM_QUEUE);
        let speculation = Speculation::default();
        let stop = StopDeadline::default();
        let end_hint = EndHint::default();
        let partials = config.partials.then(PartialSlot::default);
        let whisper = Transcriber::spawn(
            decoder,
            TranscriberSetup {
                jobs: utterance_rx,
                events: events.clone(),
                max_latency_ms: config.max_latency_ms,
                counters: counters.transcriber.clone(),
                speculation: speculation.clone(),
                stop: stop.clone(),
                threads: config.threads,
                end_hint: end_hint.clone(),
                language: config.language.clone(),
                partials: partials.clone(),
            },
        );
        let dsp = Dsp {
            settings: config.segmenter,
            streams: stream_rx,
            utterances: utterance_tx,
            speculation,
            end_hint,
            hold,
            partials,
            events: events.clone(),
            counters: counters.dsp.clone(),
            wait_when_full: matches!(input, SourceInput::File { paced: false, .. }),
        }
        .spawn();
        let capture = counters.capture.clone();
        // Opening a device may block on the sound server.
        let source = on_a_thread("source-start", move || {
            SourceHandle::start(input, source_control, capture, stream_tx, events)
        })
        .await
        .context("capture start")??;
        Ok(Self {
            source,
            dsp,
            whisper,
            stop,
        })
    }

    /// Begins an orderly stop: the source's only command sender goes, so it
    /// stops, and the stop flows downstream as each stage's input closes; what
    /// is open or queued has until `at_ms` to become a transcript.
    fn begin_stop(&self, at_ms: u64) {
        self.stop.set(at_ms);
        self.source.close();
    }

    /// Leaves every worker running (a source that hangs must not keep the
    /// process alive); their events are no longer read.
    fn abandon(self) {
        let Self {
            source,
            mut dsp,
            whisper,
            ..
        } = self;
        source.detach();
        dsp.detach();
        whisper.detach();
    }
}

/// The event loop: publishes every event, keeps systemd's watchdog alive,
/// and handles the stop.
pub struct EventLoop {
    publisher: Publisher,
    events: tokio::sync::mpsc::Receiver<Event>,
    /// Joined once every worker's event sender is gone; taken by a stop
    /// that gives up on them.
    pipeline: Option<Pipeline>,
}

impl EventLoop {
    /// Runs until every worker has ended (their event senders are gone), or
    /// until `SHUTDOWN_LIMIT` after `shutdown` resolved.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut give_up: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let notifier = Notifier::from_env();
        let mut ready_sent = false;
        // Kept alive from this loop: if the loop hangs, systemd restarts sottod.
        let mut watchdog = crate::notify::watchdog_interval().map(tokio::time::interval);
        loop {
            let state = self.publisher.source_state;
            if !ready_sent && !matches!(state, State::Starting | State::NoDevice) {
                if let Some(n) = &notifier {
                    n.send("READY=1");
                }
                log::info!("ready: model loaded and source open");
                ready_sent = true;
            }
            tokio::select! {
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                    if let Some(n) = &notifier {
                        n.send("WATCHDOG=1");
                    }
                },
                event = self.events.recv() => match event {
                    Some(event) => self.publisher.publish(event).await,
                    None => break,
                },
                () = &mut shutdown, if give_up.is_none() => {
                    log::info!("stopping");
                    if let Some(p) = &self.pipeline {
                        p.begin_stop(now_ms() + SHUTDOWN_GRACE_MS);
                    }
                    give_up = Some(Box::pin(tokio::time::sleep(SHUTDOWN_LIMIT)));
                }
                () = async { give_up.as_mut().expect("guarded").await }, if give_up.is_some() => {
                    // A source that does not stop (a sound server that hangs
                    // up mid-call) must not keep the process alive; what is
                    // still open ends as a shutdown drop.
                    log::warn!("workers did not stop within {} ms; exiting without them", SHUTDOWN_LIMIT.as_millis());
                    if let Some(p) = self.pipeline.take() {
                        p.abandon();
                    }
                    self.publisher.end_open_utterances().await;
                    return self.finish();
                }
            }
        }
        if let Some(pipeline) = self.pipeline.take() {
            // Every sender is gone, so every thread has ended or is ending.
            let _ = tokio::task::spawn_blocking(move || drop(pipeline)).await;
        }
        self.finish();
    }

    fn finish(&self) {
        self.publisher.listeners().stop_all();
        let s = lock(&self.publisher.stats).snapshot();
        log::info!(
            "done: {} utterances, {} transcripts, {} dropped",
            s.utterances,
            s.transcripts,
            s.dropped_deadline
                + s.dropped_overload
                + s.dropped_no_speech
                + s.dropped_shutdown
                + s.dropped_error
                + s.dropped_not_addressed
        );
    }
}

/// The input, checked before anything loads: a WAV file's header is read, a
/// named device must exist (a typo fails before the model loads). The
/// default device may appear later; the source waits for it.
fn open_input(input: &Input) -> anyhow::Result<SourceInput> {
    Ok(match input {
        Input::File { path, paced } => SourceInput::File {
            wav: WavInput::open(path)?,
            paced: *paced,
        },
        Input::Device(selector @ DeviceSelector::Named(..)) => {
            find_device(selector)?;
            SourceInput::Device(selector.clone())
        }
        Input::Device(selector @ DeviceSelector::Default(_)) => {
            SourceInput::Device(selector.clone())
        }
    })
}

/// The `Device` property until a device is opened.
fn device_label(input: &Input) -> String {
    match input {
        Input::File { path, .. } => format!("file:{}", path.display()),
        Input::Device(DeviceSelector::Named(_, n)) => n.clone(),
        Input::Device(DeviceSelector::Default(_)) => "default".to_string(),
    }
}

/// Push-to-talk at start: pauses the source and waits until its stream is closed.
async fn close_microphone(source: &SourceControl) -> anyhow::Result<()> {
    let answer = source
        .queue(crate::audio::SourceCommand::Pause)
        .map_err(anyhow::Error::msg)?;
    crate::audio::answer_of(answer)
        .await
        .map_err(|reason| anyhow::anyhow!("cannot close the microphone: {reason}"))
}

/// Runs blocking work on a new thread spawned from the caller's, so what it
/// spawns in turn (the source's threads) inherits the caller's priority, not
/// that of a pooled thread a bus task may have started
/// ([`crate::priority::BUS_NICE`]).
async fn on_a_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .with_context(|| format!("cannot start the {name} thread"))?;
    rx.await
        .with_context(|| format!("the {name} thread ended early"))
}

/// Runs the daemon until the input ends or `shutdown` resolves. Errors are
/// start-up errors (bad file, device, model); once running, problems become
/// events.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let input = open_input(&config.input)?;
    // The model file and its language too, before the bus: a missing bus
    // must not hide a wrong --model.
    let info = crate::model::ggml::check_model(&config.model)?;
    crate::model::ggml::check_language(&config.model, &info.hparams, &config.language)?;
    crate::model::ggml::check_translate(&config.model, &info.hparams, config.translate)?;
    // Clients in any folder can find the file the property names.
    let model_path = std::fs::canonicalize(&config.model).unwrap_or_else(|_| config.model.clone());

    // The name next: a second instance must fail before it loads anything.
    let counters = SharedCounters::default();
    let stats = Arc::new(Mutex::new(Stats::new(counters.clone())));
    let source_control = SourceControl::default();
    let listeners = Arc::new(Mutex::new(Listeners::default()));
    let hold = Hold::default();
    let served = Served {
        device: device_label(&config.input),
        model: model_path.display().to_string(),
        language: config.language.clone(),
        mode: config.mode.clone(),
        source: source_control.clone(),
        stats: stats.clone(),
        listeners: listeners.clone(),
        hold: hold.clone(),
    };
    let bus = match config.bus {
        Some(kind) => Some(Service::start(kind, served).await?),
        None => None,
    };

    let (model, language, threads, prompt) = (
        config.model.clone(),
        config.language.clone(),
        config.threads,
        config.prompt.clone(),
    );
    let (languages, translate) = (config.languages.clone(), config.translate);
    let decoder = on_a_thread("model-load", move || {
        Decoder::load(&model, &language, threads).map(|d| {
            d.with_prompt(prompt)
                .with_languages(&languages)
                .with_translate(translate)
        })
    })
    .await
    .context("model loader")??;
    log::info!(
        "model {} loaded from {}",
        decoder.model_name(),
        config.model.display()
    );

    let (event_tx, event_rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
    // Only the workers hold event senders: the loop ends when all of them are done.
    let pipeline = Pipeline::start(
        &config,
        input,
        decoder,
        source_control.clone(),
        hold,
        &counters,
        event_tx,
    )
    .await?;
    if config.mode == Mode::PushToTalk {
        // The source was opened to check it; it stays closed until a client
        // starts an utterance.
        close_microphone(&source_control).await?;
    }
    EventLoop {
        publisher: Publisher {
            bus,
            json: config.json,
            paced: !matches!(config.input, Input::File { paced: false, .. }),
            max_latency_ms: config.max_latency_ms,
            stats,
            source_state: State::Starting,
            hearing: false,
            listeners,
            wake: match &config.mode {
                Mode::Always | Mode::PushToTalk => None,
                Mode::Wake {
                    phrase,
                    follow_up_ms,
                } => Some(WakeRule::new(phrase.clone(), *follow_up_ms)),
            },
            open: BTreeMap::new(),
        },
        events: event_rx,
        pipeline: Some(pipeline),
    }
    .run(shutdown)
    .await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. SIGHUP is caught and ignored (logged), so a
/// closed terminal does not stop the daemon. The handlers are installed when
/// this is called (inside the runtime), not when the future is first polled:
/// that is after "ready", and a SIGTERM sent the moment a client sees it
/// would otherwise meet the default action and kill sottod mid-start.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    );
    async move { wait_for_shutdown(handlers).await }
}

type Handler = std::io::Result<tokio::signal::unix::Signal>;

async fn wait_for_shutdown(handlers: (Handler, Handler, Handler)) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = handlers else {
        // Without signal handlers the default actions apply; never resolve.
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => log::info!("SIGHUP ignored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timing;

    fn transcript(end_ms: u64) -> Transcript {
        Transcript {
            id: 7,
            text: "Stop.".into(),
            start_ms: end_ms - 800,
            end_ms,
            confidence: 0.9,
            timing: Some(Timing::default()),
            language: None,
        }
    }

    #[test]
    fn a_transcript_within_the_bound_is_published_with_its_latency() {
        let (t, latency) = bound_latency(transcript(10_000), 10_450, 500).unwrap();
        assert_eq!((t.id, latency), (7, 450));
        let (_, latency) = bound_latency(transcript(10_000), 10_500, 500).unwrap();
        assert_eq!(latency, 500, "exactly at the bound is in time");
    }

    #[test]
    fn a_late_transcript_becomes_a_deadline_drop() {
        let late = bound_latency(transcript(10_000), 10_501, 500).unwrap_err();
        assert_eq!(
            late,
            Event::Dropped {
                id: 7,
                reason: DropReason::Deadline
            }
        );
    }

    #[test]
    fn a_clock_behind_the_capture_clock_is_no_latency() {
        let (_, latency) = bound_latency(transcript(10_000), 9_990, 500).unwrap();
        assert_eq!(latency, 0);
    }
}
