//! `run`: wires the source, dsp and whisper threads to the event loop, and
//! shuts them down in order. Tests drive it with their own shutdown future.

use std::future::Future;
use std::io::Write;

use anyhow::Context as _;
use crossbeam_channel::Sender;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::audio::device::DeviceSource;
use crate::audio::wav::WavInput;
use crate::audio::SourceCommand;
use crate::bus::{BusRequest, Service};
use crate::config::{Config, Input};
use crate::dsp::Dsp;
use crate::event::{DropReason, Event, State, Transcript};
use crate::pipeline::{now_ms, Speculation, StopDeadline};
use crate::stats::{SharedCounters, Stats};
use crate::transcribe::{Decoder, Transcriber, TranscriberSetup};

/// Locks the statistics; a panic elsewhere while holding them cannot leave
/// them inconsistent (plain counters), so a poisoned lock is used as is.
pub(crate) fn lock(stats: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

/// Events waiting for the event loop. Small: the loop only formats and sends.
const EVENT_QUEUE: usize = 256;
/// After SIGTERM, an utterance still open or queued may finish decoding for
/// this long; later it is dropped with reason `shutdown`.
const SHUTDOWN_GRACE_MS: u64 = 1_200;
/// After SIGTERM, the process exits within this even if a worker hangs.
const SHUTDOWN_LIMIT_MS: u64 = 1_800;
/// Utterances waiting for the decoder. A queue longer than this could not be
/// decoded within any sensible latency bound; more are dropped as `overload`.
const UTTERANCE_QUEUE: usize = 4;

/// The state the event loop publishes, and where it sends it.
struct Publisher {
    bus: Service,
    json: bool,
    max_latency_ms: u64,
    /// Shared with `GetStats`; locked only to record or copy.
    stats: Arc<Mutex<Stats>>,
    source_state: State,
    hearing: bool,
}

impl Publisher {
    /// The published `State`: the source's, or `hearing` while an utterance is open.
    fn state(&self) -> State {
        match (self.source_state, self.hearing) {
            (State::Listening, true) => State::Hearing,
            (s, _) => s,
        }
    }

    async fn publish(&mut self, event: Event) {
        let mut latency_ms = 0;
        let event = match event {
            Event::Transcript(t) => match bound_latency(t, now_ms(), self.max_latency_ms) {
                Ok((t, latency)) => {
                    latency_ms = latency;
                    lock(&self.stats).record_transcript(latency_ms);
                    log::info!(
                        "utterance {}: transcript, latency {latency_ms} ms, decode {} ms",
                        t.id,
                        t.decode_ms()
                    );
                    Event::Transcript(t)
                }
                Err(late) => late,
            },
            other => other,
        };
        match &event {
            Event::Dropped { reason, .. } => lock(&self.stats).record_drop(*reason),
            Event::State(s) => self.source_state = *s,
            Event::Hearing(h) => self.hearing = *h,
            Event::Error { kind, message } => log::warn!("{kind}: {message}"),
            _ => {}
        }
        self.bus.publish(&event, latency_ms).await;
        if matches!(event, Event::State(_) | Event::Hearing(_)) {
            self.bus.set_state(self.state()).await;
        }
        if let Event::Device(name) = &event {
            self.bus.set_device(name).await;
        }
        if self.json {
            if let Some(value) = event.to_json(latency_ms) {
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

/// Runs the daemon until the input ends or `shutdown` resolves. Errors are
/// start-up errors (bad file, device, model); once running, problems become
/// events.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // Cheap checks first, so a typo fails before the model loads.
    let wav = match &config.input {
        Input::File { path, .. } => Some(WavInput::open(path)?),
        Input::Device(selector @ crate::audio::device::DeviceSelector::Named(_)) => {
            crate::audio::device::find_device(selector)?;
            None
        }
        // The default device may appear later; the source waits for it.
        Input::Device(crate::audio::device::DeviceSelector::Default) => None,
    };

    // The name next: a second instance must fail before it loads anything.
    let (request_tx, mut request_rx) = tokio::sync::mpsc::channel(16);
    let device_name = match &config.input {
        Input::File { path, .. } => format!("file:{}", path.display()),
        Input::Device(crate::audio::device::DeviceSelector::Named(n)) => n.clone(),
        Input::Device(crate::audio::device::DeviceSelector::Default) => "default".to_string(),
    };
    let model_label = config.model.display().to_string();
    let counters = SharedCounters::default();
    let stats = Arc::new(Mutex::new(Stats::new(counters.clone())));
    let bus = Service::start(
        config.bus,
        device_name,
        model_label,
        config.language.clone(),
        request_tx,
        stats.clone(),
    )
    .await?;

    let (model, language, threads) = (
        config.model.clone(),
        config.language.clone(),
        config.threads,
    );
    let decoder = tokio::task::spawn_blocking(move || Decoder::load(&model, &language, threads))
        .await
        .context("model loader")??;
    log::info!(
        "model {} loaded from {}",
        decoder.model_name(),
        config.model.display()
    );

    let (event_tx, mut event_rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
    let (utterance_tx, utterance_rx) = crossbeam_channel::bounded(UTTERANCE_QUEUE);
    let (stream_tx, stream_rx) = crossbeam_channel::bounded(2);
    let (command_tx, command_rx) = crossbeam_channel::bounded::<SourceCommand>(8);

    let max_latency_ms = config.max_latency_ms;
    let speculation = Speculation::default();
    let stop_at = StopDeadline::default();
    let setup = TranscriberSetup {
        jobs: utterance_rx,
        events: event_tx.clone(),
        max_latency_ms,
        counters: counters.transcriber.clone(),
        speculation: speculation.clone(),
        stop: stop_at.clone(),
    };
    let transcriber = Transcriber::spawn(decoder, setup);

    let dsp = Dsp {
        settings: config.segmenter,
        streams: stream_rx,
        utterances: utterance_tx,
        speculation,
        events: event_tx.clone(),
        counters: counters.dsp.clone(),
        wait_when_full: matches!(config.input, Input::File { paced: false, .. }),
    }
    .spawn();

    let source = match (&config.input, wav) {
        (Input::File { paced, .. }, Some(wav)) => {
            log::info!(
                "reading {:.1} s of audio from the input file",
                wav.seconds()
            );
            wav.spawn(
                *paced,
                counters.capture.clone(),
                stream_tx,
                event_tx.clone(),
                command_rx,
            )
        }
        (Input::Device(selector), _) => {
            let source = DeviceSource {
                selector: selector.clone(),
                counters: counters.capture.clone(),
                streams: stream_tx,
                events: event_tx.clone(),
                commands: command_rx,
            };
            tokio::task::spawn_blocking(move || source.spawn())
                .await
                .context("capture start")??
        }
        (Input::File { .. }, None) => unreachable!("file input is opened above"),
    };
    // Only the workers hold senders now: the loop ends when all of them are done.
    drop(event_tx);

    let mut publisher = Publisher {
        bus,
        json: config.json,
        max_latency_ms,
        stats,
        source_state: State::Starting,
        hearing: false,
    };
    tokio::pin!(shutdown);
    let mut stopping = false;
    let mut give_up: std::pin::Pin<Box<tokio::time::Sleep>> =
        Box::pin(tokio::time::sleep(std::time::Duration::MAX));
    let notifier = crate::notify::Notifier::from_env();
    let mut ready_sent = false;
    // Kept alive from this loop: if the loop hangs, systemd restarts sottod.
    let mut watchdog = crate::notify::watchdog_interval().map(tokio::time::interval);
    loop {
        if !ready_sent && !matches!(publisher.source_state, State::Starting | State::NoDevice) {
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
            event = event_rx.recv() => match event {
                Some(event) => publisher.publish(event).await,
                None => break,
            },
            Some(request) = request_rx.recv() => match request {
                BusRequest::Pause => { let _ = command_tx.try_send(SourceCommand::Pause); }
                BusRequest::Resume => { let _ = command_tx.try_send(SourceCommand::Resume); }
            },
            () = &mut shutdown, if !stopping => {
                stopping = true;
                log::info!("stopping");
                // What is still open or queued gets this long to become a
                // transcript; then it is dropped with reason `shutdown`.
                stop_at.set(now_ms() + SHUTDOWN_GRACE_MS);
                stop_source(&command_tx);
                give_up = Box::pin(tokio::time::sleep(std::time::Duration::from_millis(SHUTDOWN_LIMIT_MS)));
            }
            () = &mut give_up, if stopping => {
                // A source that does not stop (a sound server that hangs up
                // mid-call) must not keep the process alive.
                log::warn!("workers did not stop within {SHUTDOWN_LIMIT_MS} ms; exiting without them");
                return Ok(());
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || {
        let _ = source.join();
        let _ = dsp.join();
        transcriber.join();
    })
    .await;
    let s = lock(&publisher.stats).snapshot();
    log::info!(
        "done: {} utterances, {} transcripts, {} dropped",
        s.utterances,
        s.transcripts,
        s.dropped_deadline
            + s.dropped_overload
            + s.dropped_no_speech
            + s.dropped_shutdown
            + s.dropped_error
    );
    Ok(())
}

fn stop_source(commands: &Sender<SourceCommand>) {
    let _ = commands.try_send(SourceCommand::Stop);
}

/// Resolves on SIGINT or SIGTERM. SIGHUP is caught and ignored (logged), so a
/// closed terminal does not stop the daemon.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
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
