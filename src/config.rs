//! Validated, resolved settings: every range check and default lookup happens in
//! [`Config::from_cli`], so the rest of the daemon can trust its input.

use std::path::{Path, PathBuf};

use crate::audio::device::DeviceSelector;
use crate::cli::{BusArg, Cli, EndOfSpeechArg, ModeArg};
use crate::dsp::segmenter::SegmenterSettings;
use crate::endpoint::EndOfSpeech;
use crate::wake::WakePhrase;

/// Where audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Device(DeviceSelector),
    File { path: PathBuf, paced: bool },
}

pub use sotto_client::BusKind;

/// Which utterances are published (`--mode`, the `Mode` property).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Every one.
    Always,
    /// Those that begin with the phrase, or start within `follow_up_ms` of
    /// the end of the phrase said alone.
    Wake {
        phrase: WakePhrase,
        follow_up_ms: u64,
    },
    /// The microphone opens for `StartUtterance` … `EndUtterance`, which is
    /// one utterance.
    PushToTalk,
}

impl Mode {
    /// The mode as the `Mode` property names it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Always => "always",
            Mode::Wake { .. } => "wake",
            Mode::PushToTalk => "push-to-talk",
        }
    }
}

/// Everything the daemon needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub input: Input,
    pub model: PathBuf,
    /// An ISO 639-1 code, or `auto`.
    pub language: String,
    /// `--languages`: what `auto` may detect (empty: every language).
    pub languages: Vec<String>,
    /// `--translate`.
    pub translate: bool,
    /// `--prompt` or the text of `--prompt-file`: Whisper's initial prompt.
    pub prompt: Option<String>,
    /// Threads per decode (`--threads`, or `auto`: the cores, at most 4).
    pub threads: usize,
    pub segmenter: SegmenterSettings,
    pub max_latency_ms: u64,
    /// `None` with `--bus none`: no D-Bus, events on stdout only.
    pub bus: Option<BusKind>,
    pub mode: Mode,
    /// `--partials`: interim decodes while an utterance is open.
    pub partials: bool,
    pub json: bool,
    /// 0 errors only, 1 warnings and info (default), 2 debug (transcript text
    /// included), 3 trace.
    pub verbosity: u8,
}

/// A flag with an impossible value. The message names the flag and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// `--min-silence-ms` and `--max-silence-ms` when not given (bounded by
/// `--silence-ms`, so raising or lowering that alone keeps the order).
/// 300: on two cores the verdict lands 270–350 ms after the end of speech,
/// so a finished sentence closes as soon as it is judged. No shorter: a
/// reader's pause at a comma (320–450 ms) after a finished-looking clause
/// splits the sentence at any short silence (whisper ends the audio it is
/// given with a period), and a shorter one would split quicker pauses too
/// (`benches/endpoint.rs`, `endpoint::adaptive_splits…`).
pub const DEFAULT_MIN_SILENCE_MS: u64 = 300;
pub const DEFAULT_MAX_SILENCE_MS: u64 = 900;
/// The default `--max-silence-ms` stays this far below `--max-latency-ms`.
const MAX_SILENCE_HEADROOM_MS: u64 = 100;

/// The file name of the default model.
pub const DEFAULT_MODEL_FILE: &str = "ggml-tiny.en.bin";

/// Whisper's window is 30 s; an utterance plus its pre-roll must fit in it.
pub const WHISPER_WINDOW_MS: u64 = 30_000;

fn positive(flag: &str, value: i64, unit: &str) -> Result<u64, ConfigError> {
    if value <= 0 {
        return Err(ConfigError(format!(
            "{flag} must be greater than 0 {unit}, got {value}; give a positive value, or leave it out for the default"
        )));
    }
    Ok(value as u64)
}

fn non_negative(flag: &str, value: i64, unit: &str) -> Result<u64, ConfigError> {
    if value < 0 {
        return Err(ConfigError(format!(
            "{flag} must be 0 {unit} or more, got {value}; leave it out for the default"
        )));
    }
    Ok(value as u64)
}

/// The threads a decode gets by default (`--threads auto`): the cores, at
/// most 4; see [`crate::transcribe::threads`] for the measurements.
pub fn default_threads() -> usize {
    crate::transcribe::threads::auto_threads()
}

/// Is `code` the ISO 639-1 code of one of Whisper's languages? (whisper.cpp
/// itself would also take a full name such as "english"; the flag does not.)
pub fn is_whisper_language(code: &str) -> bool {
    code.len() == 2
        && (0..=whisper_rs::get_lang_max_id())
            .filter_map(whisper_rs::get_lang_str)
            .any(|c| c == code)
}

/// The folders models are looked for in, in order: `./models/`, the project
/// folder of a binary built in `target/<profile>/`, the user's
/// `$XDG_DATA_HOME/sotto/models` (`~/.local/share/sotto/models`), then the
/// installed copies (`PREFIX/share/sotto/models`).
pub fn model_folders() -> Vec<PathBuf> {
    let mut folders = vec![PathBuf::from("models")];
    let exe = std::env::current_exe().ok();
    if let Some(project) = exe
        .as_deref()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .and_then(Path::parent)
    {
        folders.push(project.join("models"));
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(data_home) = data_home {
        folders.push(data_home.join("sotto/models"));
    }
    if let Some(prefix) = exe.as_deref().and_then(Path::parent).and_then(Path::parent) {
        folders.push(prefix.join("share/sotto/models"));
    }
    folders.push(PathBuf::from("/usr/local/share/sotto/models"));
    folders.push(PathBuf::from("/usr/share/sotto/models"));
    folders
}

/// Places the default model is looked for, in order ([`model_folders`]).
pub fn default_model_candidates() -> Vec<PathBuf> {
    model_folders()
        .into_iter()
        .map(|f| f.join(DEFAULT_MODEL_FILE))
        .collect()
}

/// The models `models/fetch.sh` fetches by name (`models/catalogue.tsv`).
pub fn catalogue_names() -> Vec<&'static str> {
    include_str!("../models/catalogue.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split('\t').next())
        .collect()
}

/// `--model`: a path, or a catalogue name found as `ggml-NAME.bin` in one of
/// the [`model_folders`].
pub fn resolve_model(value: &Path) -> Result<PathBuf, ConfigError> {
    let Some(text) = value.to_str() else {
        return Ok(value.to_path_buf());
    };
    if value.exists() || text.contains('/') || text.ends_with(".bin") {
        return Ok(value.to_path_buf());
    }
    let names = catalogue_names();
    if !names.contains(&text) {
        return Err(ConfigError(format!(
            "--model {text} is neither a file nor a model sotto knows ({}); give the path of a ggml file, or one of those names",
            names.join(", ")
        )));
    }
    let file = format!("ggml-{text}.bin");
    model_folders()
        .into_iter()
        .map(|f| f.join(&file))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ConfigError(format!(
                "--model {text}: {file} is in none of the model folders yet; fetch it with `models/fetch.sh {text}` in sotto's source tree (or add --into ~/.local/share/sotto/models)"
            ))
        })
}

impl Config {
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let min_speech_ms = positive("--min-speech-ms", cli.min_speech_ms, "ms")?;
        let silence_ms = positive("--silence-ms", cli.silence_ms, "ms")?;
        let pre_roll_ms = non_negative("--pre-roll-ms", cli.pre_roll_ms, "ms")?;
        let max_utterance_ms = positive("--max-utterance-ms", cli.max_utterance_ms, "ms")?;
        let max_latency_ms = positive("--max-latency-ms", cli.max_latency_ms, "ms")?;
        if !(cli.vad_threshold > 0.0 && cli.vad_threshold < 1.0) {
            return Err(ConfigError(format!(
                "--vad-threshold must be between 0 and 1 (exclusive), got {}; 0.5 is the default",
                cli.vad_threshold
            )));
        }
        if min_speech_ms > max_utterance_ms {
            return Err(ConfigError(format!(
                "--min-speech-ms ({min_speech_ms}) is greater than --max-utterance-ms ({max_utterance_ms}); no utterance could ever open: lower --min-speech-ms or raise --max-utterance-ms"
            )));
        }
        if max_latency_ms <= silence_ms {
            return Err(ConfigError(format!(
                "--max-latency-ms ({max_latency_ms}) must be above --silence-ms ({silence_ms}): the end of speech is only known after the silence, so every transcript would miss its deadline; raise --max-latency-ms or lower --silence-ms"
            )));
        }
        if max_utterance_ms + pre_roll_ms > WHISPER_WINDOW_MS {
            return Err(ConfigError(format!(
                "--max-utterance-ms ({max_utterance_ms}) plus --pre-roll-ms ({pre_roll_ms}) exceeds Whisper's {WHISPER_WINDOW_MS} ms window; lower one of them"
            )));
        }
        let min_silence_ms = match cli.min_silence_ms {
            Some(ms) => positive("--min-silence-ms", ms, "ms")?,
            None => DEFAULT_MIN_SILENCE_MS.min(silence_ms),
        };
        let max_silence_ms = match cli.max_silence_ms {
            Some(ms) => positive("--max-silence-ms", ms, "ms")?,
            // Below the latency bound, which a cut-off sentence must still meet.
            None => DEFAULT_MAX_SILENCE_MS
                .min(max_latency_ms.saturating_sub(MAX_SILENCE_HEADROOM_MS))
                .max(silence_ms),
        };
        let mut end_of_speech = match cli.end_of_speech {
            EndOfSpeechArg::Adaptive => EndOfSpeech::Adaptive,
            EndOfSpeechArg::Fixed => EndOfSpeech::Fixed,
        };
        if end_of_speech == EndOfSpeech::Adaptive {
            if min_silence_ms > silence_ms || silence_ms > max_silence_ms {
                return Err(ConfigError(format!(
                    "--min-silence-ms ({min_silence_ms}), --silence-ms ({silence_ms}) and --max-silence-ms ({max_silence_ms}) must be in that order; change one, or use --end-of-speech fixed"
                )));
            }
            if max_latency_ms <= max_silence_ms {
                return Err(ConfigError(format!(
                    "--max-latency-ms ({max_latency_ms}) must be above --max-silence-ms ({max_silence_ms}): a cut-off sentence waits that long before it is decoded; raise --max-latency-ms or lower --max-silence-ms"
                )));
            }
        }
        let threads = match cli.threads.trim() {
            "auto" => default_threads(),
            n => match n.parse::<i64>() {
                Ok(n) if (1..=64).contains(&n) => n as usize,
                _ => {
                    return Err(ConfigError(format!(
                        "--threads must be auto or a number from 1 to 64, got {:?}; leave it out for auto",
                        cli.threads
                    )))
                }
            },
        };
        let language = match (&cli.language, &cli.languages) {
            (None, Some(_)) => "auto".to_string(),
            (None, None) => "en".to_string(),
            (Some(l), _) => l.trim().to_lowercase(),
        };
        if language != "auto" && !is_whisper_language(&language) {
            return Err(ConfigError(format!(
                "--language must be an ISO 639-1 code of a language Whisper knows (en, de, fr, es, zh, …) or auto, got {:?}",
                cli.language.as_deref().unwrap_or_default()
            )));
        }
        let languages = match &cli.languages {
            None => Vec::new(),
            Some(_) if language != "auto" => {
                return Err(ConfigError(format!(
                    "--languages limits what --language auto detects, but --language is {language}; leave --language out (or give auto), or leave --languages out"
                )))
            }
            Some(list) => {
                let codes: Vec<String> = list
                    .split(',')
                    .map(|c| c.trim().to_lowercase())
                    .filter(|c| !c.is_empty())
                    .collect();
                if codes.is_empty() {
                    return Err(ConfigError(
                        "--languages is empty; give ISO 639-1 codes separated by commas, e.g. en,de,fr".into(),
                    ));
                }
                if let Some(bad) = codes.iter().find(|c| !is_whisper_language(c)) {
                    return Err(ConfigError(format!(
                        "--languages: {bad:?} is not an ISO 639-1 code of a language Whisper knows; give codes such as en,de,fr"
                    )));
                }
                codes
            }
        };
        // The completeness rule has English word lists only.
        if !crate::endpoint::has_word_lists(&language) {
            end_of_speech = EndOfSpeech::Fixed;
        }
        let input = match &cli.input_file {
            Some(path) => {
                if cli.device.is_some() {
                    return Err(ConfigError(
                        "--device and --input-file exclude each other; give one of them".into(),
                    ));
                }
                if cli.host != crate::audio::device::AudioHost::Auto {
                    return Err(ConfigError(
                        "--host and --input-file exclude each other: a file is read without a sound server; leave --host out".into(),
                    ));
                }
                Input::File {
                    path: path.clone(),
                    paced: !cli.no_pace,
                }
            }
            None => Input::Device(match &cli.device {
                Some(name) if !name.trim().is_empty() => DeviceSelector::Named(cli.host, name.trim().to_string()),
                Some(_) => {
                    return Err(ConfigError(
                        "--device is empty; give a name from --list-devices, or leave it out for the default input".into(),
                    ))
                }
                None => DeviceSelector::Default(cli.host),
            }),
        };
        let model = match &cli.model {
            Some(value) => resolve_model(value)?,
            None => default_model_candidates()
                .into_iter()
                .find(|p| p.is_file())
                .unwrap_or_else(|| Path::new("models").join(DEFAULT_MODEL_FILE)),
        };
        let follow_up_ms = positive("--follow-up-ms", cli.follow_up_ms, "ms")?;
        let mode = match (cli.mode, &cli.wake_phrase) {
            (None | Some(ModeArg::Wake), Some(text)) => Mode::Wake {
                phrase: WakePhrase::new(text).map_err(ConfigError)?,
                follow_up_ms,
            },
            (Some(ModeArg::Wake), None) => {
                return Err(ConfigError(
                    "--mode wake needs --wake-phrase; give the words that address sottod, e.g. --wake-phrase \"hey computer\"".into(),
                ))
            }
            (Some(ModeArg::Always), Some(_)) => {
                return Err(ConfigError(
                    "--wake-phrase needs --mode wake, but --mode is always; leave --mode out (the phrase implies wake), or leave the phrase out".into(),
                ))
            }
            (Some(ModeArg::PushToTalk), Some(_)) => {
                return Err(ConfigError(
                    "--wake-phrase needs --mode wake, but --mode is push-to-talk (a key already says who is addressed); leave one of them out".into(),
                ))
            }
            (Some(ModeArg::PushToTalk), None) => Mode::PushToTalk,
            (None | Some(ModeArg::Always), None) => Mode::Always,
        };
        let bus = match cli.bus {
            BusArg::Session => Some(BusKind::Session),
            BusArg::System => Some(BusKind::System),
            BusArg::None => None,
        };
        if bus.is_none() && mode == Mode::PushToTalk {
            return Err(ConfigError(
                "--mode push-to-talk needs a bus (StartUtterance and EndUtterance are D-Bus methods); use --bus session or --bus system".into(),
            ));
        }
        let verbosity = if cli.quiet { 0 } else { 1 + cli.verbose };
        Ok(Config {
            input,
            model,
            language,
            languages,
            translate: cli.translate,
            prompt: prompt(cli)?,
            threads,
            segmenter: SegmenterSettings {
                vad_threshold: cli.vad_threshold as f32,
                min_speech_ms,
                pre_roll_ms,
                silence_ms,
                max_utterance_ms,
                end_of_speech,
                min_silence_ms,
                max_silence_ms,
            },
            max_latency_ms,
            bus,
            mode,
            partials: cli.partials,
            json: cli.json || bus.is_none(),
            verbosity,
        })
    }
}

/// A prompt longer than this is more than the names and words it is for:
/// whisper.cpp keeps at most half its 448-token text context of it, and
/// every decode pays for it.
pub const MAX_PROMPT_CHARS: usize = 600;

/// `--prompt` or `--prompt-file`, checked (some words, no NUL, not too
/// long), its white space collapsed and a final stop added.
fn prompt(cli: &Cli) -> Result<Option<String>, ConfigError> {
    let (text, flag) = match (&cli.prompt, &cli.prompt_file) {
        (Some(text), _) => (text.clone(), "--prompt".to_string()),
        (None, Some(path)) => {
            let bytes = std::fs::read(path).map_err(|e| {
                ConfigError(format!(
                    "--prompt-file {}: cannot read it ({e}); give a text file with the words to expect",
                    path.display()
                ))
            })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                ConfigError(format!(
                    "--prompt-file {} is not UTF-8 text; save it as UTF-8 (iconv -t UTF-8)",
                    path.display()
                ))
            })?;
            (text, format!("--prompt-file {}", path.display()))
        }
        (None, None) => return Ok(None),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return Err(ConfigError(format!(
            "{flag} has no words; give the names and terms to expect, or leave it out"
        )));
    }
    if text.contains('\0') {
        return Err(ConfigError(format!(
            "{flag} contains a NUL character; give plain text"
        )));
    }
    let chars = text.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(ConfigError(format!(
            "{flag} is {chars} characters, more than {MAX_PROMPT_CHARS}; keep it to the names and terms to expect (Whisper uses at most 224 tokens of it)"
        )));
    }
    // Whisper continues the prompt's style: one without a final stop makes
    // transcripts without one, which the adaptive end of speech reads.
    let ends_a_sentence = text.ends_with(['.', '!', '?']);
    Ok(Some(if ends_a_sentence {
        text
    } else {
        format!("{text}.")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn config(args: &[&str]) -> Config {
        let cli = Cli::try_parse_from(std::iter::once("sottod").chain(args.iter().copied()))
            .expect("flags parse");
        Config::from_cli(&cli).expect("valid flags")
    }

    #[test]
    fn the_adaptive_silences_follow_silence_ms_unless_given() {
        let s = config(&[]).segmenter;
        assert_eq!(
            (s.min_silence_ms, s.silence_ms, s.max_silence_ms),
            (300, 500, 900)
        );
        assert_eq!(s.end_of_speech, EndOfSpeech::Adaptive);
        let s = config(&["--silence-ms", "2000"]).segmenter;
        assert_eq!((s.min_silence_ms, s.max_silence_ms), (300, 2000));
        let s = config(&["--silence-ms", "200"]).segmenter;
        assert_eq!((s.min_silence_ms, s.max_silence_ms), (200, 900));
        let s = config(&["--max-latency-ms", "800"]).segmenter;
        assert_eq!(s.max_silence_ms, 700, "below the latency bound");
        let s = config(&["--language", "de", "--model", "x.bin"]).segmenter;
        assert_eq!(s.end_of_speech, EndOfSpeech::Fixed, "no German word lists");
    }

    #[test]
    fn a_prompt_is_collapsed_and_ends_a_sentence() {
        assert_eq!(config(&[]).prompt, None);
        let p = config(&["--prompt", "  Zorblat,\n Kubernetes "]).prompt;
        assert_eq!(p.as_deref(), Some("Zorblat, Kubernetes."));
        let p = config(&["--prompt", "Dr. Okafor?"]).prompt;
        assert_eq!(p.as_deref(), Some("Dr. Okafor?"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("words.txt");
        std::fs::write(&file, "Quindaro\nVexmora\n").unwrap();
        let p = config(&["--prompt-file", file.to_str().unwrap()]).prompt;
        assert_eq!(p.as_deref(), Some("Quindaro Vexmora."));
    }

    #[test]
    fn bus_none_implies_json_lines() {
        let c = config(&[]);
        assert_eq!((c.bus, c.json), (Some(BusKind::Session), false));
        let c = config(&["--bus", "system", "--json"]);
        assert_eq!((c.bus, c.json), (Some(BusKind::System), true));
        let c = config(&["--bus", "none"]);
        assert_eq!((c.bus, c.json), (None, true));
    }

    #[test]
    fn a_wake_phrase_implies_wake_mode() {
        assert_eq!(config(&[]).mode, Mode::Always);
        let Mode::Wake {
            phrase,
            follow_up_ms,
        } = config(&["--wake-phrase", "Hey Computer"]).mode
        else {
            panic!("wake mode")
        };
        assert_eq!((phrase.as_str(), follow_up_ms), ("Hey Computer", 4_000));
        let mode = config(&[
            "--mode",
            "wake",
            "--wake-phrase",
            "jarvis",
            "--follow-up-ms",
            "2500",
        ])
        .mode;
        assert!(matches!(
            mode,
            Mode::Wake {
                follow_up_ms: 2_500,
                ..
            }
        ));
    }

    #[test]
    fn threads_are_auto_unless_given() {
        assert_eq!(config(&[]).threads, default_threads());
        assert_eq!(config(&["--threads", "3"]).threads, 3);
    }
}
