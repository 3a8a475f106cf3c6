//! A virtual microphone: a private PulseAudio server whose null sink's
//! monitor is the capture device (see TESTING.md).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::*;

/// A private PulseAudio server with a null sink whose monitor is the microphone
/// (see TESTING.md). Stopped and cleaned up on drop.
pub struct VirtualMic {
    pub dir: tempfile::TempDir,
    /// The server, while it runs.
    child: Option<Child>,
    /// The bus sottod publishes on in these tests.
    pub bus: PrivateBus,
}

impl VirtualMic {
    pub fn start() -> Self {
        let mut mic = Self::without_server();
        mic.start_server();
        mic
    }

    /// The microphone's environment with no sound server running yet.
    pub fn without_server() -> Self {
        let dir = scratch();
        let d = dir.path();
        for sub in ["home", "runtime", "config"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
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
            child: None,
            bus: PrivateBus::start(),
        }
    }

    /// Starts the PulseAudio server (null sink `vmic`, default source
    /// `vmic.monitor`) and waits until it answers.
    pub fn start_server(&mut self) {
        assert!(self.child.is_none(), "the server already runs");
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
        Self::env_into(d, &mut cmd);
        let child = cmd
            .spawn()
            .expect("pulseaudio must be installed (scripts/install-deps.sh)");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ok = self
                .command("pactl")
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ok.map(|s| s.success()).unwrap_or(false) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "pulseaudio did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server outright (SIGKILL: a crash, not a clean exit).
    pub fn kill_server(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.path().join("native"));
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
        self.pactl(&["set-default-source", "vmic.monitor"]);
    }

    /// Recording streams the server has open (`pactl list short source-outputs`).
    pub fn recording_streams(&self) -> usize {
        self.pactl(&["list", "short", "source-outputs"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }

    fn env_into(d: &Path, cmd: &mut Command) {
        cmd.env("HOME", d.join("home"))
            .env("XDG_RUNTIME_DIR", d.join("runtime"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("PULSE_SERVER", format!("unix:{}/native", d.display()))
            .env("PULSE_COOKIE", d.join("cookie"))
            .env("PULSE_RUNTIME_PATH", d.join("runtime"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
    }

    /// Points this test process's own audio clients at this server until the
    /// guard drops (the tests run on one thread, so nothing else reads the
    /// environment meanwhile).
    pub fn apply_env(&self) -> EnvGuard {
        let d = self.dir.path();
        let vars = [
            ("PULSE_SERVER", format!("unix:{}/native", d.display())),
            ("PULSE_COOKIE", d.join("cookie").display().to_string()),
            (
                "PULSE_RUNTIME_PATH",
                d.join("runtime").display().to_string(),
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
        Self::env_into(self.dir.path(), &mut c);
        c
    }

    /// sottod talking to this server, on the mic's private bus.
    pub fn sottod(&self) -> Command {
        let mut c = sottod(&self.bus);
        Self::env_into(self.dir.path(), &mut c);
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
        let Some(child) = self.child.as_mut() else {
            return;
        };
        kill(child.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
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
