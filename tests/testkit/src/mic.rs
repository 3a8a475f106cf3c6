//! A virtual microphone: a private PulseAudio server, or a private PipeWire
//! server (with wireplumber and pipewire-pulse), whose null sink's monitor is
//! the capture device (see TESTING.md).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::*;

/// Which sound server a [`VirtualMic`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    PulseAudio,
    /// PipeWire with wireplumber and pipewire-pulse (so PulseAudio clients,
    /// pactl and paplay among them, work too).
    PipeWire,
}

impl Server {
    /// The microphone's full device name on this server's own cpal host.
    pub fn device(self) -> &'static str {
        match self {
            Server::PulseAudio => "pulseaudio:vmic.monitor",
            Server::PipeWire => "pipewire:vmic",
        }
    }

    /// The name sottod reports for the default input on this server.
    pub fn default_device(self) -> &'static str {
        match self {
            Server::PulseAudio => "pulseaudio:vmic.monitor",
            Server::PipeWire => "pipewire:input_default",
        }
    }
}

/// A private sound server with a null sink whose monitor is the microphone
/// (see TESTING.md). Stopped and cleaned up on drop.
pub struct VirtualMic {
    pub dir: tempfile::TempDir,
    pub server: Server,
    /// The server's processes, while they run (PipeWire: the server, then
    /// wireplumber and pipewire-pulse).
    children: Vec<Child>,
    /// The bus sottod publishes on in these tests (PipeWire's session bus too).
    pub bus: PrivateBus,
}

impl VirtualMic {
    /// A PulseAudio virtual microphone.
    pub fn start() -> Self {
        Self::start_on(Server::PulseAudio)
    }

    /// A virtual microphone on `server`.
    pub fn start_on(server: Server) -> Self {
        let mut mic = Self::without_server_on(server);
        mic.start_server();
        mic
    }

    /// A PulseAudio microphone's environment with no sound server running yet.
    pub fn without_server() -> Self {
        Self::without_server_on(Server::PulseAudio)
    }

    /// The microphone's environment with no sound server running yet.
    pub fn without_server_on(server: Server) -> Self {
        let dir = scratch();
        let d = dir.path();
        for sub in ["home", "runtime", "config"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("runtime"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        // pipewire-pulse refuses a client that sends no cookie (libpulse's
        // clients read this file; so does cpal's PulseAudio host).
        let cookie: Vec<u8> = (0..256u32).map(|i| (i * 37 % 251) as u8).collect();
        std::fs::write(d.join("cookie"), cookie).unwrap();
        let pa = d.join("default.pa");
        std::fs::write(
            &pa,
            format!(
                "load-module module-native-protocol-unix auth-anonymous=1 socket={}/native\n\
                 load-module module-null-sink sink_name=vmic rate=48000 channels=1 norewinds=1\n\
                 set-default-sink vmic\nset-default-source vmic.monitor\n",
                d.display()
            ),
        )
        .unwrap();
        VirtualMic {
            dir,
            server,
            children: Vec::new(),
            bus: PrivateBus::start(),
        }
    }

    /// Starts the server (null sink `vmic`, default source `vmic.monitor`)
    /// and waits until it answers.
    pub fn start_server(&mut self) {
        assert!(self.children.is_empty(), "the server already runs");
        match self.server {
            Server::PulseAudio => self.start_pulseaudio(),
            Server::PipeWire => self.start_pipewire(),
        }
    }

    /// The PulseAudio (or pipewire-pulse) socket.
    fn pulse_socket(&self) -> std::path::PathBuf {
        match self.server {
            Server::PulseAudio => self.dir.path().join("native"),
            Server::PipeWire => self.dir.path().join("runtime/pulse/native"),
        }
    }

    /// PULSE_RUNTIME_PATH: where pipewire-pulse puts its socket (`native`).
    fn pulse_runtime(&self) -> std::path::PathBuf {
        match self.server {
            Server::PulseAudio => self.dir.path().join("runtime"),
            Server::PipeWire => self.dir.path().join("runtime/pulse"),
        }
    }

    fn spawn_server(&mut self, program: &str, args: &[&str]) {
        let mut cmd = self.command(program);
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start {program} ({e}); scripts/install-deps.sh installs it")
        });
        self.children.push(child);
    }

    /// Waits until `pactl info` answers (PulseAudio, or pipewire-pulse).
    fn wait_for_pactl(&mut self, what: &str) {
        let start = Instant::now();
        loop {
            let ok = self
                .command("pactl")
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ok.map(|s| s.success()).unwrap_or(false) {
                return;
            }
            if let Some(gone) = self
                .children
                .iter_mut()
                .position(|c| c.try_wait().ok().flatten().is_some())
            {
                panic!("{what}: process {gone} of the server exited at start");
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{what} did not come up within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// PipeWire, wireplumber and pipewire-pulse on the mic's private session
    /// bus, then the null sink through pipewire-pulse.
    fn start_pipewire(&mut self) {
        self.spawn_server("pipewire", &[]);
        let socket = self.dir.path().join("runtime/pipewire-0");
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "pipewire did not create its socket within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn_server("wireplumber", &[]);
        self.spawn_server("pipewire-pulse", &[]);
        self.wait_for_pactl("pipewire-pulse");
        self.plug_in();
    }

    fn start_pulseaudio(&mut self) {
        let d = self.dir.path();
        let pa = d.join("default.pa");
        let mut cmd = Command::new("pulseaudio");
        cmd.args([
            "--daemonize=no",
            "--system=false",
            "--exit-idle-time=-1",
            "-n",
            "-F",
        ])
        .arg(&pa)
        .args([
            "--use-pid-file=no",
            "--realtime=no",
            "--high-priority=no",
            "--disable-shm=yes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        self.env_into(&mut cmd);
        let child = cmd
            .spawn()
            .expect("pulseaudio must be installed (scripts/install-deps.sh)");
        self.children.push(child);
        self.wait_for_pactl("pulseaudio");
    }

    /// Kills the server outright (SIGKILL: a crash, not a clean exit).
    pub fn kill_server(&mut self) {
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.pulse_socket());
        let _ = std::fs::remove_file(self.dir.path().join("runtime/pipewire-0"));
    }

    /// Runs `pactl ARGS`; fails the test when it fails.
    pub fn pactl(&self, args: &[&str]) -> String {
        let out = self.command("pactl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "pactl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Removes the microphone (the null sink and its monitor) from the running server.
    pub fn unplug(&self) {
        self.pactl(&["unload-module", "module-null-sink"]);
    }

    /// Brings the microphone back and makes it the default source again.
    pub fn plug_in(&self) {
        self.pactl(&[
            "load-module",
            "module-null-sink",
            "sink_name=vmic",
            "rate=48000",
            "channels=1",
            "norewinds=1",
        ]);
        self.set_default_source();
    }

    /// `pactl set-default-source vmic.monitor`, retried for up to 10 s:
    /// pipewire-pulse answers "Not supported" until wireplumber has published
    /// the `default` metadata, and a freshly loaded sink's monitor appears a
    /// moment after `load-module` returns. Under load both can take a while.
    fn set_default_source(&self) {
        let start = Instant::now();
        loop {
            let out = self
                .command("pactl")
                .args(["set-default-source", "vmic.monitor"])
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "pactl set-default-source vmic.monitor still fails after 10 s: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Recording streams the server has open (`pactl list short source-outputs`).
    pub fn recording_streams(&self) -> usize {
        self.pactl(&["list", "short", "source-outputs"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }

    fn env_into(&self, cmd: &mut Command) {
        let d = self.dir.path();
        cmd.env("HOME", d.join("home"))
            .env("XDG_RUNTIME_DIR", d.join("runtime"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env(
                "PULSE_SERVER",
                format!("unix:{}", self.pulse_socket().display()),
            )
            .env("PULSE_COOKIE", d.join("cookie"))
            .env("PULSE_RUNTIME_PATH", self.pulse_runtime())
            .env_remove("PIPEWIRE_RUNTIME_DIR")
            .env_remove("PIPEWIRE_REMOTE");
        match self.server {
            Server::PulseAudio => cmd.env_remove("DBUS_SESSION_BUS_ADDRESS"),
            Server::PipeWire => cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address),
        };
    }

    /// Points this test process's own audio clients at this server until the
    /// guard drops (the tests run on one thread, so nothing else reads the
    /// environment meanwhile).
    pub fn apply_env(&self) -> EnvGuard {
        let d = self.dir.path();
        let vars = [
            (
                "PULSE_SERVER",
                format!("unix:{}", self.pulse_socket().display()),
            ),
            ("PULSE_COOKIE", d.join("cookie").display().to_string()),
            (
                "PULSE_RUNTIME_PATH",
                self.pulse_runtime().display().to_string(),
            ),
            ("XDG_RUNTIME_DIR", d.join("runtime").display().to_string()),
            ("XDG_CONFIG_HOME", d.join("config").display().to_string()),
            ("HOME", d.join("home").display().to_string()),
        ];
        let saved = vars
            .iter()
            .map(|(k, _)| (k.to_string(), std::env::var_os(k)))
            .collect();
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
        EnvGuard(saved)
    }

    /// A command that talks to this server.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        self.env_into(&mut c);
        c
    }

    /// sottod talking to this server, on the mic's private bus.
    pub fn sottod(&self) -> Command {
        let mut c = sottod(&self.bus);
        self.env_into(&mut c);
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address);
        c
    }

    /// Plays a file into the microphone; returns the wall clock when play began.
    pub fn play(&self, wav: &Path) -> (u64, Child) {
        let t = now_ms();
        let child = self
            .command("paplay")
            .args(["-d", "vmic"])
            .arg(wav)
            .spawn()
            .expect("paplay");
        (t, child)
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        // In reverse order: pipewire-pulse and wireplumber before PipeWire.
        while let Some(mut child) = self.children.pop() {
            kill(child.id() as i32, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut ended = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    ended = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !ended {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Restores environment variables when dropped.
pub struct EnvGuard(Vec<(String, Option<std::ffi::OsString>)>);

impl Drop for EnvGuard {
    fn drop(&mut self) {
        for (k, v) in self.0.drain(..) {
            match v {
                Some(v) => std::env::set_var(&k, v),
                None => std::env::remove_var(&k),
            }
        }
    }
}
