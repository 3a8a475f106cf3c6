//! The D-Bus service `org.sotto.Sotto1` — the only module that knows D-Bus types.
//!
//! [`Sotto1`] only holds property values, the source's command queue and the
//! shared statistics: `Pause` and `Resume` queue a command for the source and
//! wait for its answer; `GetStats` copies numbers the event loop keeps
//! (nothing is computed per call). No method waits for the event loop. Every
//! call is first charged to its sender's budget ([`crate::ratelimit`]): the
//! standard interfaces' calls too, which `bus/standard.rs` serves in place of
//! zbus's.
//! The event loop owns the connection and is the only publisher of signals.
//! `Listen` waits on a channel the event loop answers ([`crate::listen`]);
//! since a method holds the object (shared) while it runs, the loop updates
//! properties through shared access too (the values sit behind their own
//! locks), so a pending `Listen` never holds up a property change.

use std::collections::HashMap;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use zbus::fdo::{RequestNameFlags, RequestNameReply};
use zbus::message::Header;
use zbus::object_server::{InterfaceRef, SignalEmitter};
use zbus::{connection, interface, Connection};
use zbus::{OwnedVariant, Variant};

use crate::audio::{Answer, Reply, SourceCommand, SourceControl};
use crate::config::{BusKind, Mode};
use crate::event::{Event, State};
use crate::listen::{Listeners, Unheard};
use crate::pipeline::Hold;
use crate::stats::Stats;

mod standard;
use standard::Budget;

/// Well-known name, object path and interface name (the contract in DESIGN.md).
pub use sotto_client::{NAME, PATH};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to the {bus} bus ({reason}); start a bus (e.g. run under dbus-run-session), choose the other one with --bus, or add --bus none to print JSON lines without D-Bus")]
    Connect { bus: &'static str, reason: String },
    #[error("another sottod already owns {NAME} on the {bus} bus; stop it first (or use `sotto status` to talk to it)")]
    NameTaken { bus: &'static str },
    #[error("the {bus} bus refused {NAME} ({reason}); on the system bus install systemd/org.sotto.Sotto1.conf and run as the sotto user")]
    Refused { bus: &'static str, reason: String },
}

/// The errors of sottod's own methods (`org.sotto.Sotto1.Error.*`).
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.sotto.Sotto1.Error")]
pub enum SottoError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// `Listen`: no utterance started within the timeout.
    Timeout(String),
    /// `Listen`: the utterance was dropped (the reason is in the message).
    Dropped(String),
    /// A method of another mode (`StartUtterance` outside push-to-talk).
    WrongMode(String),
    /// `EndUtterance` without a `StartUtterance`.
    NotStarted(String),
}

/// What a method of sottod's own may fail with: its errors, or the bus's
/// standard ones (`LimitsExceeded`, `InvalidArgs`, `Failed`), each under
/// its own name.
#[derive(Debug)]
pub enum MethodError {
    Bus(zbus::fdo::Error),
    Sotto(SottoError),
}

impl From<zbus::fdo::Error> for MethodError {
    fn from(e: zbus::fdo::Error) -> Self {
        MethodError::Bus(e)
    }
}

impl From<SottoError> for MethodError {
    fn from(e: SottoError) -> Self {
        MethodError::Sotto(e)
    }
}

impl From<zbus::Error> for MethodError {
    fn from(e: zbus::Error) -> Self {
        MethodError::Bus(e.into())
    }
}

impl zbus::DBusError for MethodError {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<zbus::Message> {
        match self {
            MethodError::Bus(e) => e.create_reply(call),
            MethodError::Sotto(e) => e.create_reply(call),
        }
    }

    fn name(&self) -> zbus::names::ErrorName<'_> {
        match self {
            MethodError::Bus(e) => e.name(),
            MethodError::Sotto(e) => e.name(),
        }
    }

    fn description(&self) -> Option<&str> {
        match self {
            MethodError::Bus(e) => e.description(),
            MethodError::Sotto(e) => e.description(),
        }
    }
}

/// Locks a value the object shares with the event loop (plain values: a
/// panic elsewhere cannot leave one torn).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The exported object: property values, the way to the source, the
/// `Listen` waiters and the shared statistics. zbus holds the object (shared)
/// while a method runs, so the event loop changes the properties through
/// their own locks, never by taking the object exclusively: no method, not
/// even a long `Listen`, holds up a property change. Pause and Resume wait
/// for the source thread itself, which answers without the loop.
pub struct Sotto1 {
    state: Mutex<State>,
    device: Mutex<String>,
    model: String,
    language: String,
    mode: Mode,
    /// Push-to-talk: set while a client holds the utterance open (the dsp
    /// thread reads it).
    hold: Hold,
    /// Push-to-talk: who needs the microphone open.
    mic: Mutex<MicUse>,
    /// Callers of `Listen`; the event loop answers them.
    listeners: Arc<Mutex<Listeners>>,
    /// The source's command queue; the pipeline opens and closes it.
    source: SourceControl,
    /// Written by the event loop, read by `GetStats`; held only to copy.
    stats: Arc<Mutex<Stats>>,
    /// Each sender's budget of calls, shared with the standard interfaces.
    budget: Arc<Budget>,
}

impl Sotto1 {
    fn push_to_talk(&self) -> bool {
        self.mode == Mode::PushToTalk
    }

    fn need_push_to_talk(&self, method: &str) -> Result<(), SottoError> {
        if self.push_to_talk() {
            return Ok(());
        }
        Err(SottoError::WrongMode(format!(
            "{method} works in push-to-talk mode, and sottod runs in {} mode; start it with --mode push-to-talk",
            self.mode.as_str()
        )))
    }

    fn need_not_push_to_talk(&self, method: &str) -> Result<(), SottoError> {
        if !self.push_to_talk() {
            return Ok(());
        }
        Err(SottoError::WrongMode(format!(
            "{method} does not apply in push-to-talk mode: the microphone opens only between StartUtterance and EndUtterance (or for a Listen)"
        )))
    }

    async fn admit(&self, header: &Header<'_>) -> zbus::fdo::Result<()> {
        self.budget.admit(header).await
    }
}

/// Push-to-talk: why the microphone is open. It opens when the first reason
/// comes and closes when the last one goes; commands are queued under the
/// lock, so the source sees them in the order the reasons changed.
#[derive(Debug, Default)]
struct MicUse {
    /// Between StartUtterance and EndUtterance.
    held: bool,
    /// Listen calls waiting.
    listens: usize,
}

impl MicUse {
    fn open(&self) -> bool {
        self.held || self.listens > 0
    }
}

/// A Listen call's claim on the microphone in push-to-talk mode: released
/// when the call ends however it ends (the source closes the stream when
/// nobody else needs it; nobody waits for that answer).
struct ListenClaim<'a>(&'a Sotto1);

impl Drop for ListenClaim<'_> {
    fn drop(&mut self) {
        let mut mic = lock(&self.0.mic);
        mic.listens -= 1;
        if !mic.open() {
            let (reply, _) = oneshot::channel();
            let _ = self.0.source.send(SourceCommand::Pause(reply));
        }
    }
}

/// Sends `command` to the source and waits (a bounded time) for its answer.
async fn ask(source: &SourceControl, command: fn(Reply) -> SourceCommand) -> zbus::fdo::Result<()> {
    answer_of(queue(source, command)?).await
}

/// Queues `command` for the source ([`SourceControl::queue`]).
fn queue(source: &SourceControl, command: fn(Reply) -> SourceCommand) -> zbus::fdo::Result<Answer> {
    source.queue(command).map_err(zbus::fdo::Error::Failed)
}

/// The source's answer ([`crate::audio::answer_of`]), as a D-Bus error.
async fn answer_of(answer: Answer) -> zbus::fdo::Result<()> {
    crate::audio::answer_of(answer)
        .await
        .map_err(zbus::fdo::Error::Failed)
}

#[interface(name = "org.sotto.Sotto1")]
impl Sotto1 {
    /// Waits for the next utterance that starts within `timeout_ms` and
    /// returns its id and text (in wake mode it need not begin with the
    /// phrase; one that does has it stripped). Fails with
    /// `org.sotto.Sotto1.Error.Timeout` when none starts in time, and with
    /// `org.sotto.Sotto1.Error.Dropped` (the reason in the message) when the
    /// utterance gives no transcript. Several callers may wait at once; each
    /// gets the same utterance.
    #[zbus(out_args("id", "text"))]
    async fn listen(
        &self,
        timeout_ms: u32,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(u64, String), MethodError> {
        self.admit(&header).await?;
        if timeout_ms == 0 {
            return Err(zbus::fdo::Error::InvalidArgs(
                "timeout_ms must be greater than 0: it is how long to wait for speech to start, e.g. 5000".into(),
            )
            .into());
        }
        let Some(mut ticket) = lock(&self.listeners).add() else {
            return Err(zbus::fdo::Error::LimitsExceeded(format!(
                "{} callers are already waiting in Listen; try again later",
                crate::listen::MAX_WAITING
            ))
            .into());
        };
        // Push-to-talk: the microphone opens for the call, and the VAD ends
        // the utterance.
        let _claim = if self.push_to_talk() {
            let opening = {
                let mut mic = lock(&self.mic);
                let opening = !mic.open();
                mic.listens += 1;
                opening.then(|| queue(&self.source, SourceCommand::Resume))
            };
            let claim = ListenClaim(self);
            if let Some(answer) = opening {
                if let Err(e) = async { answer_of(answer?).await }.await {
                    lock(&self.listeners).give_up(ticket.token);
                    return Err(e.into());
                }
            }
            Some(claim)
        } else {
            None
        };
        let timeout = tokio::time::sleep(Duration::from_millis(timeout_ms.into()));
        tokio::pin!(timeout);
        let answer = tokio::select! {
            answer = &mut ticket.answer => answer,
            () = &mut timeout => {
                if lock(&self.listeners).give_up(ticket.token) {
                    return Err(SottoError::Timeout(format!(
                        "no speech started within {timeout_ms} ms"
                    ))
                    .into());
                }
                // An utterance started in time: wait for its end.
                ticket.answer.await
            }
        };
        match answer {
            Ok(Ok(heard)) => Ok(heard),
            Ok(Err(Unheard::Dropped(reason))) => {
                Err(
                    SottoError::Dropped(format!("{}: {}", reason.as_str(), reason.explain()))
                        .into(),
                )
            }
            Ok(Err(Unheard::Stopped)) | Err(_) => Err(zbus::fdo::Error::Failed(
                "sottod stopped before an utterance ended".into(),
            )
            .into()),
        }
    }

    /// Push-to-talk: opens the microphone and starts one utterance
    /// (`SpeechStarted` comes with its first frame); everything captured
    /// until `EndUtterance` (or --max-utterance-ms) is that utterance,
    /// whatever the VAD says. Returns once the stream is open. A second call
    /// while one is held changes nothing. Fails with
    /// `org.sotto.Sotto1.Error.WrongMode` in the other modes.
    async fn start_utterance(&self, #[zbus(header)] header: Header<'_>) -> Result<(), MethodError> {
        self.admit(&header).await?;
        self.need_push_to_talk("StartUtterance")?;
        let called = Instant::now();
        let opening = {
            let mut mic = lock(&self.mic);
            if mic.held {
                return Ok(());
            }
            let opening = !mic.open();
            mic.held = true;
            self.hold.set(true);
            opening.then(|| queue(&self.source, SourceCommand::Resume))
        };
        if let Some(answer) = opening {
            if let Err(e) = async { answer_of(answer?).await }.await {
                let mut mic = lock(&self.mic);
                mic.held = false;
                self.hold.set(false);
                return Err(e.into());
            }
            log::info!(
                "push-to-talk: the microphone opened {} ms after StartUtterance",
                called.elapsed().as_millis()
            );
        }
        Ok(())
    }

    /// Push-to-talk: ends the utterance `StartUtterance` began
    /// (`SpeechEnded`, then its transcript) and closes the microphone;
    /// returns once the stream is closed. Fails with
    /// `org.sotto.Sotto1.Error.NotStarted` without a start, and with
    /// `org.sotto.Sotto1.Error.WrongMode` in the other modes.
    async fn end_utterance(&self, #[zbus(header)] header: Header<'_>) -> Result<(), MethodError> {
        self.admit(&header).await?;
        self.need_push_to_talk("EndUtterance")?;
        let closing = {
            let mut mic = lock(&self.mic);
            if !mic.held {
                return Err(SottoError::NotStarted(
                    "no utterance was started; call StartUtterance first".into(),
                )
                .into());
            }
            mic.held = false;
            self.hold.set(false);
            (!mic.open()).then(|| queue(&self.source, SourceCommand::Pause))
        };
        if let Some(answer) = closing {
            answer_of(answer?).await?;
        }
        Ok(())
    }

    /// Stops listening and releases the microphone; returns once the
    /// recording stream is closed. (In push-to-talk mode the microphone is
    /// closed anyway between utterances: `WrongMode`.)
    async fn pause(&self, #[zbus(header)] header: Header<'_>) -> Result<(), MethodError> {
        self.admit(&header).await?;
        self.need_not_push_to_talk("Pause")?;
        Ok(ask(&self.source, SourceCommand::Pause).await?)
    }

    /// Reopens the microphone after `Pause`; returns once the stream is open,
    /// or fails with the reason it could not be opened. (In push-to-talk mode
    /// `StartUtterance` opens it: `WrongMode`.)
    async fn resume(&self, #[zbus(header)] header: Header<'_>) -> Result<(), MethodError> {
        self.admit(&header).await?;
        self.need_not_push_to_talk("Resume")?;
        Ok(ask(&self.source, SourceCommand::Resume).await?)
    }

    /// Counters, latency percentiles, decode real-time factor and uptime;
    /// `early_closes` (utterances the adaptive end of speech closed before
    /// --silence-ms) and `early_closes_resumed` (of those, followed by speech
    /// within --silence-ms); `woken` and `dropped_not_addressed` (wake mode:
    /// utterances that began with the phrase, and those that did not);
    /// `calls_limited`: method calls refused for their
    /// sender's rate. Every method is limited per sender (20 calls a second,
    /// bursts of 40); over that it fails with
    /// `org.freedesktop.DBus.Error.LimitsExceeded`.
    #[zbus(out_args("stats"))]
    async fn get_stats(
        &self,
        #[zbus(header)] header: Header<'_>,
    ) -> zbus::fdo::Result<HashMap<String, OwnedVariant>> {
        self.admit(&header).await?;
        let s = crate::stats::lock(&self.stats).snapshot();
        let mut out = HashMap::new();
        let mut put = |k: &str, v: Variant<'_>| {
            out.insert(k.to_string(), v.try_to_owned().expect("plain values own"));
        };
        put("utterances", s.utterances.into());
        put("transcripts", s.transcripts.into());
        put("dropped_deadline", s.dropped_deadline.into());
        put("dropped_overload", s.dropped_overload.into());
        put("dropped_no_speech", s.dropped_no_speech.into());
        put("dropped_shutdown", s.dropped_shutdown.into());
        put("dropped_error", s.dropped_error.into());
        put("dropped_not_addressed", s.dropped_not_addressed.into());
        put("woken", s.woken.into());
        put("frames_captured", s.frames_captured.into());
        put("frames_lost", s.frames_lost.into());
        put("early_closes", s.early_closes.into());
        put("early_closes_resumed", s.early_closes_resumed.into());
        put("latency_p50_ms", s.latency_p50_ms.into());
        put("latency_p95_ms", s.latency_p95_ms.into());
        put("latency_max_ms", s.latency_max_ms.into());
        put("decode_rtf", s.decode_rtf.into());
        put("uptime_s", s.uptime_s.into());
        put("calls_limited", self.budget.limited().into());
        Ok(out)
    }

    /// `starting` (the model is loading), `listening`, `hearing`, `paused` or
    /// `no-device`.
    #[zbus(property)]
    async fn state(&self) -> String {
        lock(&self.state).as_str().to_string()
    }

    /// The capture device (`host:id`), or `file:PATH` for `--input-file`.
    #[zbus(property)]
    async fn device(&self) -> String {
        lock(&self.device).clone()
    }

    /// Which utterances are published: `always` (every one), `wake` (those
    /// that begin with the wake phrase) or `push-to-talk` (the microphone
    /// opens for StartUtterance … EndUtterance).
    #[zbus(property)]
    async fn mode(&self) -> String {
        self.mode.as_str().to_string()
    }

    /// The model file's path.
    #[zbus(property)]
    async fn model(&self) -> String {
        self.model.clone()
    }

    /// The spoken language code.
    #[zbus(property)]
    async fn language(&self) -> String {
        self.language.clone()
    }

    #[zbus(signal)]
    async fn speech_started(
        emitter: &SignalEmitter<'_>,
        id: u64,
        start_ms: u64,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn speech_ended(emitter: &SignalEmitter<'_>, id: u64, end_ms: u64) -> zbus::Result<()>;

    /// `--partials`: an interim decode of utterance `id`, which is still
    /// open; the first `stable` characters of `text` no later Partial of it
    /// changes. The Transcript is the final word and may differ.
    #[zbus(signal)]
    async fn partial(
        emitter: &SignalEmitter<'_>,
        id: u64,
        text: &str,
        stable: u32,
    ) -> zbus::Result<()>;

    /// Wake mode: utterance `id` began with the wake phrase; its transcript
    /// (the phrase stripped, empty for the phrase alone) follows.
    #[zbus(signal)]
    async fn woken(emitter: &SignalEmitter<'_>, id: u64) -> zbus::Result<()>;

    /// Sent just before `Transcript` of the same id: `language` (s, the
    /// ISO 639-1 code it was heard in), `language_probability` (d, 1 when
    /// the language is set, the detector's when it is detected) and
    /// `decode_ms` (u). Keys may be added, never removed.
    #[zbus(signal)]
    async fn details(
        emitter: &SignalEmitter<'_>,
        id: u64,
        details: HashMap<&str, Variant<'_>>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    #[allow(clippy::too_many_arguments)]
    async fn transcript(
        emitter: &SignalEmitter<'_>,
        id: u64,
        text: &str,
        start_ms: u64,
        end_ms: u64,
        confidence: f64,
        latency_ms: u32,
    ) -> zbus::Result<()>;

    /// An utterance that gives no transcript, with why: `deadline` (it could
    /// not be published within --max-latency-ms), `overload` (the queue was
    /// full), `no-speech` (no words in it), `shutdown` (sottod stopped first),
    /// `error` (the speech engine failed; an `Error` of kind `engine` says how)
    /// or `not-addressed` (wake mode: it did not begin with the wake phrase;
    /// its text goes nowhere).
    #[zbus(signal)]
    async fn dropped(emitter: &SignalEmitter<'_>, id: u64, reason: &str) -> zbus::Result<()>;

    /// Something a client may want to show: kind `device-lost`,
    /// `device-restored`, `no-device`, `input-file` or `engine`, and a message.
    #[zbus(signal)]
    async fn error(emitter: &SignalEmitter<'_>, kind: &str, message: &str) -> zbus::Result<()>;
}

/// The running service, held by the event loop.
pub struct Service {
    _connection: Connection,
    iface: InterfaceRef<Sotto1>,
}

/// What the service serves.
pub struct Served {
    /// The `Device` property until a device is opened.
    pub device: String,
    pub model: String,
    pub language: String,
    pub mode: Mode,
    /// Push-to-talk's hold, shared with the dsp thread.
    pub hold: Hold,
    pub source: SourceControl,
    pub stats: Arc<Mutex<Stats>>,
    pub listeners: Arc<Mutex<Listeners>>,
}

impl Service {
    /// Connects, exports the object and takes the name (refusing to queue
    /// behind another instance).
    pub async fn start(bus: BusKind, served: Served) -> Result<Self, BusError> {
        let name = bus.as_str();
        let budget = Arc::new(Budget::default());
        let object = Sotto1 {
            state: Mutex::new(State::Starting),
            device: Mutex::new(served.device),
            model: served.model,
            language: served.language,
            mode: served.mode,
            hold: served.hold,
            mic: Mutex::default(),
            listeners: served.listeners,
            source: served.source,
            stats: served.stats,
            budget: Arc::clone(&budget),
        };
        let builder = match bus {
            BusKind::Session => connection::Builder::session(),
            BusKind::System => connection::Builder::system(),
        };
        let connect = |e: zbus::Error| BusError::Connect {
            bus: name,
            reason: e.to_string(),
        };
        let connection = builder
            .serve_at(PATH, object)
            .build()
            .await
            .map_err(connect)?;
        // zbus's own standard interfaces give way to the budgeted ones before
        // the name is taken, so no client can reach them.
        let server = connection.object_server();
        standard::install(server, &budget).await.map_err(connect)?;
        match connection
            .request_name_with_flags(NAME, RequestNameFlags::DO_NOT_QUEUE)
            .await
        {
            Ok(RequestNameReply::PrimaryOwner) | Ok(RequestNameReply::AlreadyOwner) => {}
            Ok(_) | Err(zbus::Error::NameTaken) => return Err(BusError::NameTaken { bus: name }),
            Err(e) => {
                return Err(BusError::Refused {
                    bus: name,
                    reason: e.to_string(),
                })
            }
        }
        let iface = server.interface::<_, Sotto1>(PATH).await.map_err(connect)?;
        Ok(Self {
            _connection: connection,
            iface,
        })
    }

    /// Emits the signal for an event (latency already stamped), or updates
    /// `State`. Failures to send are logged, never fatal.
    pub async fn publish(&self, event: &Event, latency_ms: u64) {
        let e = self.iface.signal_emitter();
        let result = match event {
            Event::SpeechStarted { id, start_ms } => {
                Sotto1::speech_started(e, *id, *start_ms).await
            }
            Event::SpeechEnded { id, end_ms } => Sotto1::speech_ended(e, *id, *end_ms).await,
            Event::Woken { id } => Sotto1::woken(e, *id).await,
            Event::Partial { id, text, stable } => Sotto1::partial(e, *id, text, *stable).await,
            Event::Transcript(t) => {
                let mut details: HashMap<&str, Variant<'_>> = HashMap::new();
                if let Some(spoken) = &t.language {
                    details.insert("language", spoken.code.as_str().into());
                    details.insert("language_probability", spoken.probability.into());
                }
                let decode_ms = u32::try_from(t.decode_ms()).unwrap_or(u32::MAX);
                details.insert("decode_ms", decode_ms.into());
                if let Err(e) = Sotto1::details(e, t.id, details).await {
                    log::warn!("could not emit Details: {e}");
                }
                let latency = u32::try_from(latency_ms).unwrap_or(u32::MAX);
                Sotto1::transcript(
                    e,
                    t.id,
                    &t.text,
                    t.start_ms,
                    t.end_ms,
                    t.confidence,
                    latency,
                )
                .await
            }
            Event::Dropped { id, reason } => Sotto1::dropped(e, *id, reason.as_str()).await,
            Event::Error { kind, message } => Sotto1::error(e, kind.as_str(), message).await,
            Event::State(_) | Event::Hearing(_) | Event::Device(_) => Ok(()),
        };
        if let Err(err) = result {
            log::warn!("D-Bus signal not sent: {err}");
        }
    }

    /// Sets the `Device` property and emits `PropertiesChanged` when it changes.
    pub async fn set_device(&self, device: &str) {
        let iface = self.iface.get().await;
        let changed = {
            let mut current = lock(&iface.device);
            let changed = *current != device;
            if changed {
                *current = device.to_string();
            }
            changed
        };
        if changed {
            if let Err(err) = iface.device_changed(self.iface.signal_emitter()).await {
                log::warn!("D-Bus PropertiesChanged not sent: {err}");
            }
        }
    }

    /// Sets the `State` property and emits `PropertiesChanged` when it changes.
    pub async fn set_state(&self, state: State) {
        let iface = self.iface.get().await;
        let changed = std::mem::replace(&mut *lock(&iface.state), state) != state;
        if changed {
            if let Err(err) = iface.state_changed(self.iface.signal_emitter()).await {
                log::warn!("D-Bus PropertiesChanged not sent: {err}");
            }
        }
    }
}
