//! Raw command-line flags of `sottod` (clap derive). Checked and resolved into a
//! [`crate::config::Config`] in one place.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, CommandFactory, Parser};

/// `--bus`: which bus to publish on (resolved to [`crate::config::BusKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BusArg {
    /// The user's session bus (desktops).
    Session,
    /// The system bus (appliances; needs the installed policy).
    System,
    /// No D-Bus at all: events go to stdout as JSON lines (--json implied).
    /// For files on a machine without a bus (a server over SSH).
    None,
}

/// `--end-of-speech` (resolved to [`crate::endpoint::EndOfSpeech`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EndOfSpeechArg {
    /// Sooner after a finished sentence, later after a cut-off one.
    Adaptive,
    /// Always --silence-ms.
    Fixed,
}

/// `--mode` (resolved to [`crate::config::Mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Every utterance is transcribed and published.
    Always,
    /// Only utterances that begin with --wake-phrase are published (the
    /// phrase stripped); the others end as Dropped "not-addressed".
    Wake,
    /// The microphone is closed until a client calls StartUtterance; all
    /// it captures until EndUtterance is one utterance.
    PushToTalk,
}

/// On-device speech-to-text daemon.
///
/// Listens to a microphone, finds speech, transcribes it locally with
/// whisper.cpp and publishes every utterance and transcript as a D-Bus signal
/// of org.sotto.Sotto1 (and, with --json, as one JSON object per line on
/// stdout). Every setting can also be given as an environment variable named
/// after its flag (SOTTO_MODEL, SOTTO_SILENCE_MS, SOTTO_PARTIALS=true, ...);
/// the services read them from /etc/default/sotto (system) and
/// ~/.config/sotto/env (user). A flag on the command line wins.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sottod",
    version,
    max_term_width = 100,
    allow_negative_numbers = true
)]
pub struct Cli {
    /// Capture device: a name, or part of one, as --list-devices prints it
    /// [default: the system's default input]
    #[arg(long, env = "SOTTO_DEVICE", value_name = "NAME")]
    pub device: Option<String>,

    /// Print every input device with its default rate, channels and sample format, then exit
    #[arg(long)]
    pub list_devices: bool,

    /// Sound server to capture through (also limits --device and --list-devices to it): auto is
    /// PipeWire when its server is reachable, then PulseAudio, then ALSA. A device's full name
    /// (pipewire:NAME, pulseaudio:NAME, alsa:NAME) chooses its host too
    #[arg(
        long,
        env = "SOTTO_HOST",
        value_enum,
        default_value = "auto",
        value_name = "HOST"
    )]
    pub host: crate::audio::device::AudioHost,

    /// Read this WAV file instead of a microphone (PCM 8/16/24/32-bit or float,
    /// any rate and channels), paced in real time; exits when it ends
    #[arg(long, env = "SOTTO_INPUT_FILE", value_name = "WAV")]
    pub input_file: Option<PathBuf>,

    /// With --input-file: read as fast as possible instead of in real time
    #[arg(long, requires = "input_file", env = "SOTTO_NO_PACE", value_parser = BoolishValueParser::new())]
    pub no_pace: bool,

    /// Whisper model: a ggml file (any whisper.cpp model: tiny … large, quantised or not), or a
    /// name from the catalogue (tiny.en, tiny.en-q8_0, tiny.en-q5_0, base, base-q8_0, base-q5_0;
    /// `models/fetch.sh NAME` fetches it), found as ggml-NAME.bin in the model folders:
    /// ./models, the executable's project's models/, ~/.local/share/sotto/models
    /// ($XDG_DATA_HOME), PREFIX/share/sotto/models (PREFIX: the executable's, /usr/local, /usr)
    /// [default: ggml-tiny.en.bin from those folders]
    #[arg(long, env = "SOTTO_MODEL", value_name = "PATH|NAME")]
    pub model: Option<PathBuf>,

    /// Spoken language as an ISO 639-1 code (e.g. en, de), or auto: detected per utterance
    /// (multilingual models; costs one more encoder pass per decode). English-only models
    /// accept only en [default: en; auto with --languages]
    #[arg(long, env = "SOTTO_LANGUAGE", value_name = "CODE|auto")]
    pub language: Option<String>,

    /// With --language auto: the languages detection may choose from, comma-separated
    /// (e.g. en,de,fr)
    #[arg(long, env = "SOTTO_LANGUAGES", value_name = "CODES")]
    pub languages: Option<String>,

    /// Write English whatever language is spoken (Whisper's translate task; multilingual
    /// models)
    #[arg(long, env = "SOTTO_TRANSLATE", value_parser = BoolishValueParser::new())]
    pub translate: bool,

    /// Words to expect, passed to Whisper as its initial prompt, so names and
    /// jargon come out spelled this way (e.g. "Zorblat, Kubernetes, Dr.
    /// Okafor"; at most 600 characters, a final period is added). Every
    /// decode gets it; a long prompt costs decode time
    #[arg(
        long,
        env = "SOTTO_PROMPT",
        value_name = "TEXT",
        conflicts_with = "prompt_file"
    )]
    pub prompt: Option<String>,

    /// --prompt read from a UTF-8 text file (read once, at start)
    #[arg(long, env = "SOTTO_PROMPT_FILE", value_name = "PATH")]
    pub prompt_file: Option<PathBuf>,

    /// Threads per decode: a number, or auto (the cores, at most 4; a thread
    /// whose peer is descheduled sleeps instead of spinning, so every core
    /// helps even on a busy machine)
    #[arg(
        long,
        env = "SOTTO_THREADS",
        value_name = "N|auto",
        default_value = "auto"
    )]
    pub threads: String,

    /// A 16 ms frame whose voice probability (0..1) reaches this is speech
    #[arg(
        long,
        env = "SOTTO_VAD_THRESHOLD",
        value_name = "F",
        default_value_t = 0.5
    )]
    pub vad_threshold: f64,

    /// Milliseconds of speech before an utterance opens (shorter bursts are ignored)
    #[arg(
        long,
        env = "SOTTO_MIN_SPEECH_MS",
        value_name = "MS",
        default_value_t = 320
    )]
    pub min_speech_ms: i64,

    /// Silence in milliseconds, counted from the end of speech, that ends an utterance
    #[arg(
        long,
        env = "SOTTO_SILENCE_MS",
        value_name = "MS",
        default_value_t = 500
    )]
    pub silence_ms: i64,

    /// How the end of an utterance is found: adaptive (closes after
    /// --min-silence-ms when the words so far make a finished sentence, waits
    /// up to --max-silence-ms when they are cut off, --silence-ms otherwise;
    /// English only, other languages use fixed) or fixed (always --silence-ms)
    #[arg(
        long,
        env = "SOTTO_END_OF_SPEECH",
        value_enum,
        default_value = "adaptive"
    )]
    pub end_of_speech: EndOfSpeechArg,

    /// With --end-of-speech adaptive: the silence in milliseconds that ends a
    /// finished sentence [default: 300, or --silence-ms if that is shorter]
    #[arg(long, env = "SOTTO_MIN_SILENCE_MS", value_name = "MS")]
    pub min_silence_ms: Option<i64>,

    /// With --end-of-speech adaptive: the silence in milliseconds that ends a
    /// cut-off one [default: 900, at most --max-latency-ms - 100, at least --silence-ms]
    #[arg(long, env = "SOTTO_MAX_SILENCE_MS", value_name = "MS")]
    pub max_silence_ms: Option<i64>,

    /// Milliseconds of audio before the speech onset given to the model
    #[arg(
        long,
        env = "SOTTO_PRE_ROLL_MS",
        value_name = "MS",
        default_value_t = 320
    )]
    pub pre_roll_ms: i64,

    /// Longest utterance in milliseconds; longer speech is cut and continues as a new utterance
    #[arg(
        long,
        env = "SOTTO_MAX_UTTERANCE_MS",
        value_name = "MS",
        default_value_t = 20_000
    )]
    pub max_utterance_ms: i64,

    /// Latest a transcript may be published, in milliseconds after the end of its
    /// speech; later ones are dropped with reason "deadline". Must be above
    /// --silence-ms (and --max-silence-ms with --end-of-speech adaptive)
    #[arg(
        long,
        env = "SOTTO_MAX_LATENCY_MS",
        value_name = "MS",
        default_value_t = 5_000
    )]
    pub max_latency_ms: i64,

    /// Which utterances are published: always (every one), wake (only those
    /// that begin with --wake-phrase) or push-to-talk (the microphone opens
    /// only between the StartUtterance and EndUtterance calls, and what it
    /// hears is one utterance) [default: always, or wake with --wake-phrase]
    #[arg(long, env = "SOTTO_MODE", value_enum)]
    pub mode: Option<ModeArg>,

    /// The words that address sottod (implies --mode wake), matched however
    /// Whisper spells and punctuates them and stripped from the published
    /// text; said alone, they open a follow-up window (--follow-up-ms)
    #[arg(long, env = "SOTTO_WAKE_PHRASE", value_name = "TEXT")]
    pub wake_phrase: Option<String>,

    /// After the wake phrase said alone: the next utterance that starts within
    /// this many milliseconds of its end is published whole
    #[arg(
        long,
        env = "SOTTO_FOLLOW_UP_MS",
        value_name = "MS",
        default_value_t = 4_000
    )]
    pub follow_up_ms: i64,

    /// While an utterance is open, decode the audio so far about every 500 ms
    /// (less often when decodes are slow) and publish Partial(id, text,
    /// stable): its first `stable` characters never change in a later
    /// Partial. Never delays the final transcript (an interim decode is
    /// skipped or stopped when other work comes). With push-to-talk: partials
    /// of the held utterance; with --wake-phrase: only those that begin with
    /// the phrase (stripped)
    #[arg(long, env = "SOTTO_PARTIALS", value_parser = BoolishValueParser::new())]
    pub partials: bool,

    /// Bus to publish on (none: no D-Bus, JSON lines on stdout)
    #[arg(long, env = "SOTTO_BUS", value_enum, default_value = "session")]
    pub bus: BusArg,

    /// Also print every event as one JSON object per line on stdout (implied
    /// by --bus none)
    #[arg(long, env = "SOTTO_JSON", value_parser = BoolishValueParser::new())]
    pub json: bool,

    /// More log output on stderr (-v debug, transcript text included; -vv
    /// also sottod's trace and the debug messages of the libraries it uses;
    /// as a variable, the count: SOTTO_VERBOSE=1)
    #[arg(short, long, env = "SOTTO_VERBOSE", action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less log output on stderr (errors only)
    #[arg(short, long, env = "SOTTO_QUIET", value_parser = BoolishValueParser::new())]
    pub quiet: bool,
}

/// Prints a clap error as one line naming the problem and the fix (help and
/// version print normally) and returns the exit code; for sottod, a flag
/// whose value came from a variable is named with it.
pub fn exit_for_clap_error(error: clap::Error, program: &str) -> std::process::ExitCode {
    sotto_client::clap_error::exit_for(error, program, |line| {
        if program == "sottod" {
            name_env_sources(line)
        } else {
            line.to_owned()
        }
    })
}

/// `message` with each flag in it that got its value from an environment
/// variable (the variable is set and the flag is not on the command line)
/// followed by "(from VARIABLE)": an error caused by a forgotten export then
/// says where to look.
pub fn name_env_sources(message: &str) -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let from_env: Vec<(String, String)> = Cli::command()
        .get_arguments()
        .filter_map(|a| {
            let long = format!("--{}", a.get_long()?);
            let var = a.get_env()?.to_string_lossy().into_owned();
            let on_command_line = args
                .iter()
                .any(|x| *x == long || x.starts_with(&format!("{long}=")));
            (std::env::var_os(&var).is_some() && !on_command_line).then_some((long, var))
        })
        .collect();
    annotate_flags(message, &from_env)
}

/// Puts " (from VAR)" after the first whole-word occurrence of each flag.
fn annotate_flags(message: &str, flags: &[(String, String)]) -> String {
    let mut out = message.to_owned();
    for (flag, var) in flags {
        let word_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
        let found = out.match_indices(flag.as_str()).map(|(i, _)| i).find(|&i| {
            let before = out[..i].chars().next_back();
            let after = out[i + flag.len()..].chars().next();
            !before.is_some_and(word_char) && !after.is_some_and(word_char)
        });
        if let Some(i) = found {
            out.insert_str(i + flag.len(), &format!(" (from {var})"));
        }
    }
    out
}

pub use sotto_client::args::{ClientArgs, ClientCommand};

/// Convert a CTranslate2 Whisper model (model.bin, vocabulary.txt or .json, config.json,
/// as faster-whisper uses) to a ggml file that whisper.cpp and sottod load, or
/// quantise a ggml model.
#[derive(Debug, Parser)]
#[command(name = "sotto-convert", version, max_term_width = 100)]
pub struct ConvertArgs {
    /// Folder with the CTranslate2 model (model.bin, and vocabulary.txt or vocabulary.json);
    /// with --quantize, a ggml model file may be given instead
    pub model_dir: PathBuf,
    /// The ggml file to write (replaced atomically)
    pub output: PathBuf,
    /// Quantise the weight matrices as whisper.cpp's quantize tool does: q8_0 (about half the
    /// size of f16) or q5_0 (about a third)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub quantize: Option<QuantArg>,
}

/// `--quantize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantArg {
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q5_0")]
    Q5_0,
}

impl From<QuantArg> for crate::model::quantize::Quant {
    fn from(q: QuantArg) -> Self {
        match q {
            QuantArg::Q8_0 => Self::Q8_0,
            QuantArg::Q5_0 => Self::Q5_0,
        }
    }
}

/// The environment file the services read (`/etc/default/sotto`, the user's
/// `~/.config/sotto/env`), made from sottod's flags: every variable, its
/// flag's help and its default, commented out. `systemd/sotto.default` is
/// this text; `sotto-gendocs` writes it.
pub fn env_file() -> String {
    let mut out = String::from(
        "# Settings of the sotto service (sottod): /etc/default/sotto for the system\n\
         # unit, ~/.config/sotto/env for the user unit. Each VARIABLE=value line sets\n\
         # the sottod flag it is named after; uncomment a line and change its value,\n\
         # then: systemctl restart sotto (or systemctl --user restart sotto).\n\
         # The system unit sets SOTTO_BUS=system and SOTTO_MODEL to the installed\n\
         # model; lines here override both. A flag in ExecStart would win over its\n\
         # line. Flags that take no value take true or false (or 1/0, yes/no).\n\
         # Made from `sottod --help`, which says the same.\n",
    );
    for arg in Cli::command().get_arguments() {
        let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let value = match arg.get_value_names() {
            Some(names) if arg.get_action().takes_values() => format!(
                " {}",
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            _ => String::new(),
        };
        out.push('\n');
        for line in wrap(&format!("--{long}{value}: {help}"), 76) {
            out.push_str("# ");
            out.push_str(&line);
            out.push('\n');
        }
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_owned())
            .collect();
        if !possible.is_empty() && !matches!(arg.get_action(), ArgAction::SetTrue) {
            out.push_str(&format!("# one of: {}\n", possible.join(", ")));
        }
        let mut default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if default.is_empty() {
            match arg.get_action() {
                ArgAction::SetTrue => default.push("false".into()),
                ArgAction::Count => default.push("0".into()),
                _ => {}
            }
        }
        out.push_str(&format!(
            "#{}={}\n",
            var.to_string_lossy(),
            default.join(",")
        ));
    }
    out
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_variable_and_the_shipped_file_lists_them() {
        // Commands, not settings: a service must not list devices and exit.
        let commands = ["list_devices", "help", "version"];
        for arg in Cli::command().get_arguments() {
            let id = arg.get_id().as_str();
            if commands.contains(&id) {
                assert!(arg.get_env().is_none(), "--{id} is a command");
                continue;
            }
            let var = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{id} has no SOTTO_ variable"));
            assert_eq!(
                var.to_string_lossy(),
                format!("SOTTO_{}", id.to_uppercase()),
                "named after its flag"
            );
        }
        assert_eq!(
            include_str!("../systemd/sotto.default"),
            env_file(),
            "systemd/sotto.default is out of date: `make env-file` writes it again"
        );
    }

    #[test]
    fn the_model_help_names_every_catalogue_model() {
        let command = Cli::command();
        let model = command
            .get_arguments()
            .find(|a| a.get_id() == "model")
            .expect("--model");
        let help = model.get_help().expect("help").to_string();
        let listed = help
            .split_once("catalogue (")
            .and_then(|(_, rest)| rest.split_once(';'))
            .map(|(list, _)| list.split(", ").collect::<Vec<_>>())
            .expect("the help lists the names");
        assert_eq!(listed, crate::config::catalogue_names(), "{help}");
    }

    #[test]
    fn only_whole_flags_are_annotated() {
        let flags = [("--silence-ms".to_owned(), "SOTTO_SILENCE_MS".to_owned())];
        assert_eq!(
            annotate_flags("--max-silence-ms must exceed --silence-ms", &flags),
            "--max-silence-ms must exceed --silence-ms (from SOTTO_SILENCE_MS)"
        );
        assert_eq!(annotate_flags("nothing here", &flags), "nothing here");
    }
}
