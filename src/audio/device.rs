//! Input devices through cpal: listing, choosing by name, and the supervisor
//! thread that owns the live stream, rebuilds it when the device is lost and
//! drops it on pause.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};
use crossbeam_channel::{Receiver, Sender};

use super::capture::{self, CaptureCounters, CaptureWriter};
use super::watch::ServerWatch;
use super::{CaptureStream, SourceCommand, SourceLinks, RING_SECONDS};
use crate::event::{send_blocking, ErrorKind, Event, State};
use crate::pipeline::now_ms;

/// Errors choosing or opening a capture device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no input device matches {wanted:?}; available input devices: {available} (pass one of these names, or a part of it, to --device)")]
    NoMatch { wanted: String, available: String },
    #[error("--device {wanted:?} matches several input devices: {candidates}; give more of the name, or the full name (see --list-devices)")]
    Ambiguous { wanted: String, candidates: String },
    #[error("--device {wanted:?} matches only {name}, which produces nothing but silence; pass its full name, --device {name}, to use it anyway")]
    SilentOnly { wanted: String, name: String },
    #[error("no default input device; connect a microphone or start the sound server, or pick one with --device (see --list-devices)")]
    NoDefault,
    #[error("cannot open input device {name:?}: {reason} (check that it is free and that this user may use audio, e.g. is in group 'audio')")]
    Open { name: String, reason: String },
}

/// One input device as `--list-devices` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Stable name `host:id` (e.g. `pulseaudio:vmic.monitor`, `alsa:default`); what `--device` matches.
    pub name: String,
    /// Human description from the host.
    pub description: String,
    /// `"48000 Hz, 2 ch, f32"`, or why the default config is unknown.
    pub default_config: String,
    /// Does it offer a configuration at all? (Many ALSA plugins listed on
    /// every machine, jack, oss, lavrate…, cannot open where their backend
    /// is missing.)
    pub usable: bool,
}

impl DeviceInfo {
    /// A device that only ever produces silence (ALSA's `null`): never
    /// chosen by a partial name.
    pub fn is_silent_only(&self) -> bool {
        self.name == "alsa:null"
    }
}

/// The device a `--device` string means among `devices`: an exact name; else
/// the one device whose id after the host prefix is exactly it; else the one
/// usable device whose name or description contains it (case-insensitive),
/// leaving out devices that only produce silence. Several candidates are an
/// error listing them, never a guess.
pub fn choose<'a>(devices: &'a [DeviceInfo], wanted: &str) -> Result<usize, DeviceError> {
    if let Some(i) = devices.iter().position(|d| d.name == wanted) {
        return Ok(i);
    }
    let unique = |matches: Vec<usize>| -> Result<Option<usize>, DeviceError> {
        match matches.len() {
            0 => Ok(None),
            1 => Ok(Some(matches[0])),
            _ => Err(DeviceError::Ambiguous {
                wanted: wanted.to_string(),
                candidates: matches
                    .iter()
                    .map(|&i| devices[i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    };
    let by_id: Vec<usize> = (0..devices.len())
        .filter(|&i| {
            devices[i]
                .name
                .split_once(':')
                .is_some_and(|(_, id)| id == wanted)
        })
        .collect();
    if let Some(i) = unique(by_id)? {
        return Ok(i);
    }
    let lower = wanted.to_lowercase();
    let contains = |d: &'a DeviceInfo| {
        d.name.to_lowercase().contains(&lower) || d.description.to_lowercase().contains(&lower)
    };
    let partial: Vec<usize> = (0..devices.len())
        .filter(|&i| devices[i].usable && !devices[i].is_silent_only() && contains(&devices[i]))
        .collect();
    if let Some(i) = unique(partial)? {
        return Ok(i);
    }
    if let Some(silent) = devices.iter().find(|d| d.is_silent_only() && contains(d)) {
        return Err(DeviceError::SilentOnly {
            wanted: wanted.to_string(),
            name: silent.name.clone(),
        });
    }
    Err(DeviceError::NoMatch {
        wanted: wanted.to_string(),
        available: available_names(devices),
    })
}

/// The sound server (cpal host) to capture through: `--host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AudioHost {
    /// PipeWire when its server is reachable, then PulseAudio, then ALSA.
    #[default]
    Auto,
    /// PipeWire's native protocol.
    Pipewire,
    /// A PulseAudio server (or PipeWire's pipewire-pulse).
    Pulseaudio,
    /// ALSA devices (through the pulse plugin when a server runs).
    Alsa,
}

impl AudioHost {
    /// The cpal host this means; `None` for `Auto`.
    fn host_id(self) -> Option<cpal::HostId> {
        match self {
            AudioHost::Auto => None,
            AudioHost::Pipewire => Some(cpal::HostId::PipeWire),
            AudioHost::Pulseaudio => Some(cpal::HostId::PulseAudio),
            AudioHost::Alsa => Some(cpal::HostId::Alsa),
        }
    }

    /// The prefix of its devices' names (`pipewire:vmic`).
    fn prefix(self) -> Option<&'static str> {
        match self {
            AudioHost::Auto => None,
            AudioHost::Pipewire => Some("pipewire"),
            AudioHost::Pulseaudio => Some("pulseaudio"),
            AudioHost::Alsa => Some("alsa"),
        }
    }

    /// The host a device name's prefix names, if it has one.
    fn of_name(name: &str) -> Option<AudioHost> {
        let (prefix, _) = name.split_once(':')?;
        [AudioHost::Pipewire, AudioHost::Pulseaudio, AudioHost::Alsa]
            .into_iter()
            .find(|h| h.prefix() == Some(prefix))
    }

    /// Can this host's server be reached right now? Looked up each time
    /// (cpal caches PipeWire's answer from its first call, and a server
    /// started after sottod would never be used).
    fn reachable(self) -> bool {
        match self {
            AudioHost::Pipewire => super::watch::pipewire_socket().is_some(),
            AudioHost::Pulseaudio => super::watch::pulse_socket().is_some(),
            AudioHost::Alsa | AudioHost::Auto => true,
        }
    }
}

/// The hosts `choice` covers, in the order they are tried and listed.
fn hosts_of(choice: AudioHost) -> Vec<AudioHost> {
    match choice {
        AudioHost::Auto => vec![AudioHost::Pipewire, AudioHost::Pulseaudio, AudioHost::Alsa],
        one => vec![one],
    }
}

/// Which device to capture from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    /// The host's default input (for `Auto`: the first reachable host's).
    Default(AudioHost),
    /// The first device of the host whose name or description contains this
    /// string (an exact name wins over a substring).
    Named(AudioHost, String),
}

impl DeviceSelector {
    /// The host it captures through: a full device name's prefix narrows `Auto`.
    pub fn host(&self) -> AudioHost {
        match self {
            DeviceSelector::Default(h) => *h,
            DeviceSelector::Named(AudioHost::Auto, name) => {
                AudioHost::of_name(name).unwrap_or(AudioHost::Auto)
            }
            DeviceSelector::Named(h, _) => *h,
        }
    }
}

fn device_name(device: &cpal::Device) -> String {
    match device.id() {
        Ok(id) => id.to_string(),
        Err(_) => device.to_string(),
    }
}

fn describe_config(config: &Result<cpal::SupportedStreamConfig, cpal::Error>) -> String {
    match config {
        Ok(c) => format!(
            "{} Hz, {} ch, {}",
            c.sample_rate(),
            c.channels(),
            c.sample_format()
        ),
        Err(e) => format!("no default config ({e})"),
    }
}

/// Runs `f` with the process's stderr sent to /dev/null. Probing ALSA devices
/// makes libasound and the plugins it loads (jack, oss) print dozens of lines
/// about devices that do not exist; a one-line error must stay one line.
fn with_stderr_silenced<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: dup/open/dup2/close take and return plain descriptors and touch
    // no memory of ours. Note what this does not make safe: fd 2 is swapped
    // for the whole process, so another thread's stderr output in this window
    // is lost; it is used only at start-up and for --list-devices, never on
    // the capture thread's retries. If the swap cannot be made, `f` runs
    // with stderr as it was.
    unsafe {
        let saved = libc::dup(2);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if saved < 0 || null < 0 || libc::dup2(null, 2) < 0 {
            for fd in [saved, null] {
                if fd >= 0 {
                    libc::close(fd);
                }
            }
            return f();
        }
        libc::close(null);
        let result = f();
        libc::dup2(saved, 2);
        libc::close(saved);
        result
    }
}

/// alsa-lib's thread-local error handler: receives what alsa-lib would print
/// on stderr from this thread (`ALSA lib pcm.c:…` lines on every failed
/// open). Declared here because cpal links libasound but does not expose it.
type AlsaLocalErrorHandler = unsafe extern "C" fn(
    file: *const libc::c_char,
    line: libc::c_int,
    function: *const libc::c_char,
    err: libc::c_int,
    fmt: *const libc::c_char,
    args: *mut libc::c_void,
);

#[link(name = "asound")]
extern "C" {
    fn snd_lib_error_set_local(
        handler: Option<AlsaLocalErrorHandler>,
    ) -> Option<AlsaLocalErrorHandler>;
}

unsafe extern "C" fn ignore_alsa_error(
    _file: *const libc::c_char,
    _line: libc::c_int,
    _function: *const libc::c_char,
    _err: libc::c_int,
    _fmt: *const libc::c_char,
    _args: *mut libc::c_void,
) {
}

/// Keeps alsa-lib's messages about failed opens off stderr for the calling
/// thread. A daemon retrying a lost device every few seconds would otherwise
/// print a dozen lines per attempt; the failure itself is reported once, as an
/// event. Unlike silencing fd 2 (as listing does), this touches no other thread's output.
pub fn quiet_alsa_on_this_thread() {
    // SAFETY: sets a thread-local function pointer inside alsa-lib; the handler
    // ignores its arguments.
    unsafe {
        snd_lib_error_set_local(Some(ignore_alsa_error));
    }
}

/// Every input device of `host` (`Auto`: of every available host, PipeWire
/// first when its server is reachable, then PulseAudio, then ALSA), with its
/// default configuration.
pub fn list_devices(host: AudioHost) -> Vec<(DeviceInfo, cpal::Device)> {
    with_stderr_silenced(|| list_devices_noisy(host))
}

fn list_devices_noisy(choice: AudioHost) -> Vec<(DeviceInfo, cpal::Device)> {
    let mut out = Vec::new();
    // A server's stable node names come before ALSA's plugin names, so they
    // win a substring match.
    for which in hosts_of(choice) {
        let Some(host) = open_host(which) else {
            continue;
        };
        let Ok(devices) = host.input_devices() else {
            continue;
        };
        for device in devices {
            let description = device
                .description()
                .map(|d| d.name().to_string())
                .unwrap_or_default();
            let config = device.default_input_config();
            let info = DeviceInfo {
                name: device_name(&device),
                description,
                usable: config.is_ok(),
                default_config: describe_config(&config),
            };
            out.push((info, device));
        }
    }
    out
}

/// The usable devices' names (all of them when none is usable).
fn available_names(devices: &[DeviceInfo]) -> String {
    let usable: Vec<&str> = devices
        .iter()
        .filter(|d| d.usable)
        .map(|d| d.name.as_str())
        .collect();
    let names = if usable.is_empty() {
        devices.iter().map(|d| d.name.as_str()).collect()
    } else {
        usable
    };
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// One host, if its server is reachable and it connects.
fn open_host(which: AudioHost) -> Option<cpal::Host> {
    if !which.reachable() {
        return None;
    }
    cpal::host_from_id(which.host_id()?).ok()
}

/// The host `choice` means: for `Auto`, the first that connects of PipeWire,
/// PulseAudio and ALSA.
fn host_for(choice: AudioHost) -> Option<cpal::Host> {
    hosts_of(choice).into_iter().find_map(open_host)
}

/// The name of the host's default input device, if there is one.
pub fn default_device_name(host: AudioHost) -> Option<String> {
    with_stderr_silenced(|| {
        host_for(host)?
            .default_input_device()
            .map(|d| device_name(&d))
    })
}

/// Finds the device a selector means. `Named` matches an exact name first, then a
/// case-insensitive substring of the name or the description. For start-up
/// checks: the probing's messages are kept off stderr by silencing fd 2.
pub fn find_device(selector: &DeviceSelector) -> Result<(String, cpal::Device), DeviceError> {
    with_stderr_silenced(|| find_device_here(selector))
}

/// [`find_device`] for the capture thread's retries, which run while other
/// threads log: no process-wide fd-2 swap; alsa-lib's messages are kept off
/// stderr by the thread-local handler ([`quiet_alsa_on_this_thread`]).
fn find_device_here(selector: &DeviceSelector) -> Result<(String, cpal::Device), DeviceError> {
    match selector {
        DeviceSelector::Default(host) => {
            let device = host_for(*host)
                .and_then(|h| h.default_input_device())
                .ok_or(DeviceError::NoDefault)?;
            Ok((device_name(&device), device))
        }
        DeviceSelector::Named(_, wanted) => {
            // A full name lists only its own host: probing ALSA's plugins
            // (jack, oss) prints to stderr from libraries alsa-lib loads.
            let devices = list_devices_noisy(selector.host());
            let infos: Vec<DeviceInfo> = devices.iter().map(|(info, _)| info.clone()).collect();
            let index = choose(&infos, wanted)?;
            let (info, device) = devices.into_iter().nth(index).expect("index from choose");
            Ok((info.name, device))
        }
    }
}

/// A running stream and the flag its error callback raises.
struct OpenStream {
    _stream: cpal::Stream,
    failed: Arc<AtomicBool>,
}

fn build_typed<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut writer: CaptureWriter,
    failed: Arc<AtomicBool>,
    wake: Sender<()>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + Sample + Send + 'static,
    f32: FromSample<T>,
{
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _info: &cpal::InputCallbackInfo| {
            writer.write(data);
        },
        move |err: cpal::Error| {
            // Reports that leave the stream running (an overrun, PipeWire
            // following a new default source) are not a loss.
            if !ends_the_stream(err.kind()) {
                return;
            }
            // Called from the host's thread, possibly millions of times a second
            // (ALSA through the pulse plugin): only the first call wakes the
            // supervisor, which drops the stream and so ends the storm.
            if !failed.swap(true, Ordering::AcqRel) {
                let _ = wake.try_send(());
            }
        },
        None,
    )
}

/// Does a stream error mean the stream is gone and must be rebuilt? Not for an
/// overrun, a refused realtime promotion or a route the host already followed.
fn ends_the_stream(kind: cpal::ErrorKind) -> bool {
    !matches!(
        kind,
        cpal::ErrorKind::Xrun | cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied
    )
}

/// PipeWire's period while capturing: about this long (a power of two of
/// frames at the device's rate, within the server's quantum range). The
/// default quantum (≈21 ms) wakes the process twice as often; the period
/// changes no boundary, since they come from sample counts.
const PIPEWIRE_PERIOD_MS: u32 = 40;

/// The buffer size to ask `device` for: PipeWire's long period, the host's
/// default elsewhere.
fn buffer_size(device: &cpal::Device, supported: &cpal::SupportedStreamConfig) -> cpal::BufferSize {
    let is_pipewire = device
        .id()
        .is_ok_and(|id| id.host() == cpal::HostId::PipeWire);
    if !is_pipewire {
        return cpal::BufferSize::Default;
    }
    let frames = (supported.sample_rate() * PIPEWIRE_PERIOD_MS / 1000)
        .max(1)
        .next_power_of_two();
    match *supported.buffer_size() {
        // A max of 0: the server's clock settings are not known yet.
        cpal::SupportedBufferSize::Range { min, max } if max > 0 => {
            cpal::BufferSize::Fixed(frames.clamp(min, max))
        }
        _ => cpal::BufferSize::Fixed(frames),
    }
}

fn open_stream(
    device: &cpal::Device,
    name: &str,
    counters: &Arc<CaptureCounters>,
    wake: &Sender<()>,
) -> Result<(OpenStream, CaptureStream), DeviceError> {
    let open_err = |reason: String| DeviceError::Open {
        name: name.to_string(),
        reason,
    };
    let supported = device
        .default_input_config()
        .map_err(|e| open_err(e.to_string()))?;
    // PulseAudio: the host's default buffer size; asking for fixed 20 ms
    // fragments made its client threads wake more often, not less (measured
    // on a null-sink monitor), and larger ones changed nothing. PipeWire: a
    // long period, so an idle daemon wakes rarely.
    let mut config = supported.config();
    config.buffer_size = buffer_size(device, &supported);
    build_stream(device, &config, supported.sample_format(), counters, wake).map_err(open_err)
}

fn build_stream(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: SampleFormat,
    counters: &Arc<CaptureCounters>,
    wake: &Sender<()>,
) -> Result<(OpenStream, CaptureStream), String> {
    let config = *config;
    let (producer, consumer) = capture::ring(config.sample_rate, RING_SECONDS);
    let doorbell = capture::Doorbell::new(config.sample_rate);
    let writer = CaptureWriter::new(
        producer,
        config.channels as usize,
        counters.clone(),
        doorbell.clone(),
    );
    let failed = Arc::new(AtomicBool::new(false));
    let (f, w) = (failed.clone(), wake.clone());
    let stream = match format {
        SampleFormat::I8 => build_typed::<i8>(device, &config, writer, f, w),
        SampleFormat::I16 => build_typed::<i16>(device, &config, writer, f, w),
        SampleFormat::I24 => build_typed::<cpal::I24>(device, &config, writer, f, w),
        SampleFormat::I32 => build_typed::<i32>(device, &config, writer, f, w),
        SampleFormat::I64 => build_typed::<i64>(device, &config, writer, f, w),
        SampleFormat::U8 => build_typed::<u8>(device, &config, writer, f, w),
        SampleFormat::U16 => build_typed::<u16>(device, &config, writer, f, w),
        SampleFormat::U24 => build_typed::<cpal::U24>(device, &config, writer, f, w),
        SampleFormat::U32 => build_typed::<u32>(device, &config, writer, f, w),
        SampleFormat::U64 => build_typed::<u64>(device, &config, writer, f, w),
        SampleFormat::F32 => build_typed::<f32>(device, &config, writer, f, w),
        SampleFormat::F64 => build_typed::<f64>(device, &config, writer, f, w),
        other => return Err(format!("unsupported sample format {other}")),
    }
    .map_err(|e| e.to_string())?;
    let origin_ms = now_ms();
    stream.play().map_err(|e| e.to_string())?;
    Ok((
        OpenStream {
            _stream: stream,
            failed,
        },
        CaptureStream {
            consumer,
            sample_rate: config.sample_rate,
            origin_ms,
            doorbell,
        },
    ))
}

/// Retry delays after a device loss: quick first, then every few seconds, so a
/// daemon waiting for its microphone costs nothing measurable.
const RETRY_BACKOFF_MS: [u64; 5] = [250, 500, 1000, 2000, 4000];
/// The supervisor's wait when nothing needs retrying: it wakes on a command or
/// a device error long before this.
const NOTHING_TO_RETRY: Duration = Duration::from_secs(3600);

/// The thread that owns the live stream. It opens the device, hands each new ring
/// to the dsp thread, and on a device error drops the stream and retries with
/// backoff. Exits when the command sender is dropped; its `streams` sender then
/// closes, which tells the dsp thread to finish.
pub struct DeviceSource {
    pub selector: DeviceSelector,
    pub links: SourceLinks,
}

impl DeviceSource {
    /// Opens the device, then runs the supervisor on its own thread. A named
    /// device that cannot be found or opened is the caller's error (a typo must
    /// not look like a silent daemon). The default device may be missing at
    /// start (a service started before the session's sound server): then the
    /// supervisor starts in `no-device` and attaches when a default source
    /// appears.
    pub fn spawn(self) -> Result<JoinHandle<()>, DeviceError> {
        // The first open happens on the capture thread too, so the threads the
        // audio host starts (PulseAudio's client, ALSA's poller) carry its name.
        let (result_tx, result_rx) = crossbeam_channel::bounded::<Result<(), DeviceError>>(1);
        let handle = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                quiet_alsa_on_this_thread();
                let (wake_tx, wake_rx) = crossbeam_channel::bounded::<()>(1);
                match self.first_open(&wake_tx) {
                    Ok(stream) => {
                        let _ = result_tx.send(Ok(()));
                        self.supervise(stream, wake_tx, wake_rx);
                    }
                    Err(e) => {
                        let _ = result_tx.send(Err(e));
                    }
                }
            })
            .expect("spawn capture thread");
        match result_rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(DeviceError::NoDefault)
            }
        }
    }

    /// The stream at start, `None` for a default device that is not there yet,
    /// or the error for a named one.
    fn first_open(&self, wake_tx: &Sender<()>) -> Result<Option<OpenStream>, DeviceError> {
        let first = find_device(&self.selector).and_then(|(name, device)| {
            let (stream, capture) = open_stream(&device, &name, &self.links.counters, wake_tx)?;
            Ok((name, stream, capture))
        });
        match (first, &self.selector) {
            (Ok((name, stream, capture)), _) => {
                log::info!("capturing from {name} at {} Hz", capture.sample_rate);
                let _ = self.links.streams.send(capture);
                send_blocking(&self.links.events, Event::Device(name));
                send_blocking(&self.links.events, Event::State(State::Listening));
                Ok(Some(stream))
            }
            (Err(e), DeviceSelector::Named(..)) => Err(e),
            (Err(e), DeviceSelector::Default(_)) => {
                log::warn!("{e}");
                send_blocking(
                    &self.links.events,
                    Event::Error {
                        kind: ErrorKind::NoDevice,
                        message: "no default input device yet; sottod waits and attaches when one appears".into(),
                    },
                );
                send_blocking(&self.links.events, Event::State(State::NoDevice));
                Ok(None)
            }
        }
    }

    fn reopen(&self, wake: &Sender<()>) -> Result<OpenStream, DeviceError> {
        let (name, device) = find_device_here(&self.selector)?;
        let (stream, capture) = open_stream(&device, &name, &self.links.counters, wake)?;
        log::info!("capturing from {name} at {} Hz", capture.sample_rate);
        let _ = self.links.streams.send(capture);
        send_blocking(&self.links.events, Event::Device(name));
        Ok(stream)
    }

    /// Tries to reopen a lost device; on success announces it and returns the stream.
    /// `how` says what prompted the attempt, for the log.
    fn restore(&self, wake: &Sender<()>, attempt: usize, how: &str) -> Option<OpenStream> {
        let stream = self.reopen(wake).ok()?;
        log::info!("capture device restored after {attempt} attempts ({how})");
        send_blocking(
            &self.links.events,
            Event::Error {
                kind: ErrorKind::DeviceRestored,
                message: "the capture device is back; listening again".into(),
            },
        );
        send_blocking(&self.links.events, Event::State(State::Listening));
        Some(stream)
    }

    fn supervise(self, mut stream: Option<OpenStream>, wake_tx: Sender<()>, wake_rx: Receiver<()>) {
        quiet_alsa_on_this_thread();
        let mut paused = false;
        let mut lost = stream.is_none();
        let mut attempt = 0usize;
        // While the device is lost, the sound servers are watched for its
        // return (`watch.rs`); the backoff below is the fallback.
        let (appeared_tx, appeared_rx) = crossbeam_channel::bounded::<()>(1);
        let mut watch: Option<ServerWatch> = None;
        // A watcher that ends (its server died, or accepts and drops
        // connections) is started again at most this often: its first
        // announcement prompts a retry, which must not become a busy loop.
        let watch_every = Duration::from_millis(RETRY_BACKOFF_MS[0]);
        let mut watch_started: Option<Instant> = None;
        // The next retry by the backoff; `None` after each attempt, a loss
        // and a resume, so the wait is counted from then.
        let mut retry_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let waiting = lost && !paused;
            let mut unwatched = false;
            if waiting {
                unwatched = !watch.as_ref().is_some_and(ServerWatch::is_alive);
                if unwatched && watch_started.is_none_or(|t| t.elapsed() >= watch_every) {
                    watch = Some(ServerWatch::start(self.selector.host(), &appeared_tx));
                    watch_started = Some(now);
                    unwatched = !watch.as_ref().is_some_and(ServerWatch::is_alive);
                }
            } else {
                watch = None;
                watch_started = None;
                retry_at = None;
            }
            // While no server answers, one is looked for again every
            // `watch_every` (a socket's existence, a refused connection): a
            // server that starts or restarts is watched within 250 ms, and
            // its first announcement reopens the device, instead of the
            // next retry finding it up to 4 s later.
            let timeout = if waiting {
                let backoff = RETRY_BACKOFF_MS[attempt.min(RETRY_BACKOFF_MS.len() - 1)];
                let until_retry = retry_at
                    .get_or_insert(now + Duration::from_millis(backoff))
                    .saturating_duration_since(now);
                if unwatched {
                    until_retry.min(watch_every)
                } else {
                    until_retry
                }
            } else {
                NOTHING_TO_RETRY
            };
            crossbeam_channel::select! {
                recv(self.links.commands) -> cmd => match cmd {
                    Ok(SourceCommand::Pause(reply)) => {
                        // Dropping the stream closes the recording stream at
                        // the sound server before the caller hears back.
                        stream = None;
                        paused = true;
                        let _ = reply.send(Ok(()));
                        send_blocking(&self.links.events, Event::State(State::Paused));
                    }
                    Ok(SourceCommand::Resume(reply)) if paused => {
                        paused = false;
                        attempt = 0;
                        retry_at = None;
                        let state = match self.reopen(&wake_tx) {
                            Ok(s) => {
                                stream = Some(s);
                                let _ = reply.send(Ok(()));
                                State::Listening
                            }
                            Err(e) => {
                                stream = None;
                                let _ = reply.send(Err(format!("{e}; sottod keeps trying and listens when it opens")));
                                State::NoDevice
                            }
                        };
                        lost = stream.is_none();
                        send_blocking(&self.links.events, Event::State(state));
                    }
                    Ok(SourceCommand::Resume(reply)) => {
                        let answer = if lost {
                            Err("no capture device is open yet; sottod keeps trying and listens when one opens".to_string())
                        } else {
                            Ok(())
                        };
                        let _ = reply.send(answer);
                    }
                    // The daemon dropped its sender: stop for good.
                    Err(_) => return,
                },
                recv(wake_rx) -> _ => {
                    if stream.as_ref().is_some_and(|s| s.failed.load(Ordering::Acquire)) {
                        // Drop the stream here, never inside its callback.
                        stream = None;
                        lost = true;
                        attempt = 0;
                        retry_at = None;
                        log::warn!("capture device lost; retrying");
                        send_blocking(&self.links.events, Event::Error {
                            kind: ErrorKind::DeviceLost,
                            message: "the capture device stopped; sottod retries until it returns".into(),
                        });
                        send_blocking(&self.links.events, Event::State(State::NoDevice));
                    }
                },
                recv(appeared_rx) -> _ => {
                    // A server announced a device (or came back itself).
                    if lost && !paused {
                        attempt += 1;
                        retry_at = None;
                        stream = self.restore(&wake_tx, attempt, "announced by the sound server");
                        lost = stream.is_none();
                    }
                },
                default(timeout) => {
                    if waiting && retry_at.is_some_and(|at| Instant::now() >= at) {
                        attempt += 1;
                        retry_at = None;
                        stream = self.restore(&wake_tx, attempt, "found on a retry");
                        lost = stream.is_none();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, description: &str, usable: bool) -> DeviceInfo {
        DeviceInfo {
            name: name.into(),
            description: description.into(),
            default_config: String::new(),
            usable,
        }
    }

    fn devices() -> Vec<DeviceInfo> {
        vec![
            info("pulseaudio:vmic.monitor", "Monitor of Null Output", true),
            info("pulseaudio:vmic", "Null Output", true),
            info(
                "alsa:default",
                "Default ALSA Output (currently PulseAudio Sound Server)",
                true,
            ),
            info("alsa:pulse", "PulseAudio Sound Server", true),
            info(
                "alsa:null",
                "Discard all samples (playback) or generate zero samples (capture)",
                true,
            ),
            info("alsa:jack", "JACK Audio Connection Kit", false),
        ]
    }

    #[test]
    fn a_name_an_id_or_one_partial_match_chooses() {
        let d = devices();
        assert_eq!(
            choose(&d, "alsa:null").unwrap(),
            4,
            "a full name, even of null"
        );
        assert_eq!(
            choose(&d, "vmic.monitor").unwrap(),
            0,
            "the id after the host"
        );
        assert_eq!(
            choose(&d, "vmic").unwrap(),
            1,
            "an exact id beats the substrings"
        );
        assert_eq!(choose(&d, "Monitor").unwrap(), 0);
        assert_eq!(choose(&d, "MONITOR OF").unwrap(), 0);
    }

    #[test]
    fn several_partial_matches_are_an_error_that_lists_them() {
        let d = devices();
        let e = choose(&d, "alsa").unwrap_err().to_string();
        assert!(
            e.contains("matches several input devices: alsa:default, alsa:pulse;"),
            "null and the unusable jack are not candidates: {e}"
        );
        assert_eq!(choose(&d, "pulse").unwrap(), 3, "an exact id: alsa:pulse");
        let e = choose(&d, "pulseaudio").unwrap_err().to_string();
        assert!(
            e.contains("pulseaudio:vmic.monitor, pulseaudio:vmic, alsa:default, alsa:pulse"),
            "{e}"
        );
    }

    #[test]
    fn a_silent_only_device_is_never_chosen_by_a_part_of_its_name() {
        let d = devices();
        let e = choose(&d, "zero samples").unwrap_err().to_string();
        assert!(
            e.contains("only alsa:null, which produces nothing but silence"),
            "{e}"
        );
        assert!(e.contains("--device alsa:null"), "{e}");
        let e = choose(&d, "JACK Audio").unwrap_err().to_string();
        assert!(
            e.starts_with("no input device matches \"JACK Audio\""),
            "unusable: {e}"
        );
        assert!(
            !e.contains("alsa:jack"),
            "unusable devices are not offered: {e}"
        );
    }
}
