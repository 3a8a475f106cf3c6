//! Watching the sound servers for capture devices that appear, so a lost
//! microphone is reopened the moment it is back instead of at the next retry.
//!
//! One thread per reachable server, blocked on its socket while nothing
//! changes (no wake-ups of its own): PipeWire's registry announces every new
//! node, PulseAudio's subscription every new or changed source and every
//! change of the server's defaults. Each announcement pokes the supervisor
//! through a bounded(1) channel; the supervisor then tries to reopen at once.
//! A watcher whose server goes away ends; the supervisor starts a new one
//! while the device is still lost, every 250 ms while none is connected, so
//! a server that restarts (or starts after sottod) is watched within 250 ms
//! and its announcement reopens the device. The retry backoff stays as the
//! fallback.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::device::AudioHost;

/// Running watchers; dropping it stops and joins them.
pub struct ServerWatch {
    pipewire: Option<PipeWireWatch>,
    pulse: Option<PulseWatch>,
}

impl ServerWatch {
    /// Starts a watcher on every server `host` may capture from that answers
    /// now; each sends on `appeared` when a device may have appeared (and
    /// once at start: the server itself may be what just came back).
    pub fn start(host: AudioHost, appeared: &Sender<()>) -> ServerWatch {
        let wants = |h: AudioHost| host == AudioHost::Auto || host == h;
        // ALSA's devices are the servers' through its pulse plugin, or
        // hardware, which no server announces: the backoff covers it.
        let pipewire = if wants(AudioHost::Pipewire) && pipewire_socket().is_some() {
            PipeWireWatch::start(appeared.clone())
        } else {
            None
        };
        let pulse = if wants(AudioHost::Pulseaudio) || host == AudioHost::Alsa {
            PulseWatch::start(appeared.clone())
        } else {
            None
        };
        ServerWatch { pipewire, pulse }
    }

    /// Is any watcher still connected to its server?
    pub fn is_alive(&self) -> bool {
        self.pipewire.as_ref().is_some_and(PipeWireWatch::is_alive)
            || self.pulse.as_ref().is_some_and(PulseWatch::is_alive)
    }
}

/// PipeWire's socket, looked up now by cpal's own rule (cpal caches its
/// answer from the first call, so a server started later would never be seen
/// through it): `$PIPEWIRE_RUNTIME_DIR`, `$XDG_RUNTIME_DIR`, or the latter's
/// parent (where a snap's runtime dir keeps it).
pub fn pipewire_socket() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let dirs = [
        std::env::var_os("PIPEWIRE_RUNTIME_DIR").map(PathBuf::from),
        runtime.clone(),
        runtime.and_then(|r| r.parent().map(PathBuf::from)),
    ];
    dirs.into_iter()
        .flatten()
        .map(|d| d.join("pipewire-0"))
        .find(|p| p.exists())
}

/// The PulseAudio (or pipewire-pulse) socket the environment names, if it exists.
pub fn pulse_socket() -> Option<PathBuf> {
    pulseaudio::socket_path_from_env().filter(|p| p.exists())
}

/// A thread running a PipeWire main loop with a registry listener.
struct PipeWireWatch {
    stop: pipewire::channel::Sender<()>,
    alive: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PipeWireWatch {
    fn start(appeared: Sender<()>) -> Option<Self> {
        let (stop, stop_rx) = pipewire::channel::channel::<()>();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<bool>(1);
        let alive = Arc::new(AtomicBool::new(false));
        let flag = alive.clone();
        let thread = std::thread::Builder::new()
            .name("watch-pw".into())
            .spawn(move || {
                let ok = run_pipewire_watch(appeared, stop_rx, &flag, &ready_tx);
                flag.store(false, Ordering::Release);
                if !ok {
                    let _ = ready_tx.try_send(false);
                }
            })
            .ok()?;
        let started = ready_rx.recv().unwrap_or(false);
        let watch = PipeWireWatch {
            stop,
            alive,
            thread: Some(thread),
        };
        started.then_some(watch)
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

impl Drop for PipeWireWatch {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects and runs the loop until the server goes or `stop_rx` fires.
/// Returns `false` when it could not connect.
fn run_pipewire_watch(
    appeared: Sender<()>,
    stop_rx: pipewire::channel::Receiver<()>,
    alive: &AtomicBool,
    ready: &Sender<bool>,
) -> bool {
    use pipewire as pw;
    pw::init();
    let Ok(mainloop) = pw::main_loop::MainLoopRc::new(None) else {
        return false;
    };
    let Ok(context) = pw::context::ContextRc::new(&mainloop, None) else {
        return false;
    };
    let Ok(core) = context.connect_rc(None) else {
        return false;
    };
    let Ok(registry) = core.get_registry_rc() else {
        return false;
    };
    let on_node = appeared.clone();
    let _registry_listener = registry
        .add_listener_local()
        .global(move |global| {
            let is_audio_node = global.type_ == pw::types::ObjectType::Node
                && global.props.is_some_and(|p| {
                    p.get("media.class").is_some_and(|c| {
                        c.starts_with("Audio/Source") || c.starts_with("Audio/Sink")
                    })
                });
            if is_audio_node {
                let _ = on_node.try_send(());
            }
        })
        .register();
    // The server went away (or refused us): end, and let the supervisor
    // start a new watcher at its next retry.
    let quit_on_error = mainloop.clone();
    let _core_listener = core
        .add_listener_local()
        .error(move |id, _seq, _res, _message| {
            if id == pw::core::PW_ID_CORE {
                quit_on_error.quit();
            }
        })
        .register();
    let quit_on_stop = mainloop.clone();
    let _stop = stop_rx.attach(mainloop.loop_(), move |()| quit_on_stop.quit());
    alive.store(true, Ordering::Release);
    let _ = ready.try_send(true);
    let _ = appeared.try_send(());
    mainloop.run();
    true
}

/// A thread reading PulseAudio's subscription events from its own connection.
struct PulseWatch {
    /// A handle on the socket, to shut it down and so end the blocking read.
    socket: UnixStream,
    alive: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PulseWatch {
    fn start(appeared: Sender<()>) -> Option<Self> {
        let path = pulse_socket()?;
        let socket = UnixStream::connect(path).ok()?;
        let mut reader = BufReader::new(socket.try_clone().ok()?);
        let version = pulse_subscribe(&mut reader).ok()?;
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        let thread = std::thread::Builder::new()
            .name("watch-pa".into())
            .spawn(move || {
                use pulseaudio::protocol::SubscriptionEventType as T;
                use pulseaudio::protocol::{self, Command, SubscriptionEventFacility as F};
                let _ = appeared.try_send(());
                while let Ok((_, command)) = protocol::read_command_message(&mut reader, version) {
                    if let Command::SubscribeEvent(e) = command {
                        let relevant = matches!(
                            (e.event_facility, e.event_type),
                            (F::Source, T::New | T::Changed) | (F::Server, _)
                        );
                        if relevant {
                            let _ = appeared.try_send(());
                        }
                    }
                }
                flag.store(false, Ordering::Release);
            })
            .ok()?;
        Some(PulseWatch {
            socket,
            alive,
            thread: Some(thread),
        })
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

impl Drop for PulseWatch {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Authenticates, names the client and subscribes to source and server
/// events; returns the protocol version agreed.
fn pulse_subscribe(sock: &mut BufReader<UnixStream>) -> Result<u16, Box<dyn std::error::Error>> {
    use pulseaudio::protocol;
    let cookie = pulseaudio::cookie_path_from_env()
        .and_then(|path| std::fs::read(path).ok())
        .unwrap_or_default();
    let auth = protocol::AuthParams {
        version: protocol::MAX_VERSION,
        supports_shm: false,
        supports_memfd: false,
        cookie,
    };
    protocol::write_command_message(
        sock.get_mut(),
        0,
        &protocol::Command::Auth(auth),
        protocol::MAX_VERSION,
    )?;
    let (_, reply) =
        protocol::read_reply_message::<protocol::AuthReply>(sock, protocol::MAX_VERSION)?;
    let version = protocol::MAX_VERSION.min(reply.version);
    let mut props = protocol::Props::new();
    props.set(protocol::Prop::ApplicationName, c"sottod device watch");
    protocol::write_command_message(
        sock.get_mut(),
        1,
        &protocol::Command::SetClientName(props),
        version,
    )?;
    protocol::read_reply_message::<protocol::SetClientNameReply>(sock, version)?;
    protocol::write_command_message(
        sock.get_mut(),
        2,
        &protocol::Command::Subscribe(
            protocol::SubscriptionMask::SOURCE | protocol::SubscriptionMask::SERVER,
        ),
        version,
    )?;
    protocol::read_ack_message(sock)?;
    Ok(version)
}
