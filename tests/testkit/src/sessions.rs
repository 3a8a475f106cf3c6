//! Paced sessions several tests and benches play through sottod: spoken
//! commands, sentences with a pause after an unfinished word, and the shared
//! long clips.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::*;

/// Six spoken commands.
pub const COMMANDS: [&str; 6] = [
    "turn on the kitchen lights",
    "what time is it",
    "play some music",
    "set a timer for ten minutes",
    "stop the music",
    "open the front door",
];

/// The first `n` commands, 2 s apart, after `lead` seconds of silence, as
/// `commands.wav` in `dir`.
pub fn commands_wav(dir: &Path, lead: f32, n: usize) -> PathBuf {
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(lead);
    for text in &COMMANDS[..n] {
        s.say(text).silence(2.0);
    }
    let wav = dir.join("commands.wav");
    s.write(&wav);
    wav
}

/// (first part, pause in seconds, rest): each pause follows a word after which
/// the sentence cannot end.
pub const PAUSED: [(&str, f32, &str); 6] = [
    ("turn on the", 0.40, "kitchen lights"),
    ("set a timer for", 0.55, "ten minutes"),
    ("send a message to", 0.60, "my brother"),
    ("what is the weather like in", 0.30, "paris"),
    ("add eggs milk and", 0.50, "bread to the list"),
    ("remind me to call the", 0.80, "dentist tomorrow"),
];

/// The paused sentences, 2 s apart, each followed by a complete command, as
/// `paused.wav` in `dir`; and the number of sentences.
pub fn paused_wav(dir: &Path) -> (PathBuf, usize) {
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(1.0);
    for (first, pause, rest) in PAUSED {
        s.say(first).say_after(pause, rest).silence(2.0);
        s.say("stop the music").silence(2.0);
    }
    let wav = dir.join("paused.wav");
    s.write(&wav);
    (wav, PAUSED.len() * 2)
}

/// How many shared clips the end-of-speech test and bench play. The first
/// eight hold five readers' pauses of 320–390 ms after a clause that looks
/// finished ("…of my antecedents, nor of…"), which a short close splits.
pub const ENDPOINT_CLIPS: usize = 8;

/// The first `n` shared speech clips, 1.5 s apart, as `clips.wav` (16 kHz) in
/// `dir`; and how many there are.
pub fn clips_wav(dir: &Path, n: usize) -> (PathBuf, usize) {
    let root = testdata();
    let mut audio = Audio {
        rate: 16_000,
        samples: vec![0.0; 16_000],
    };
    let clips: Vec<Clip> = manifest()
        .into_iter()
        .filter(|c| c.category == "speech")
        .take(n)
        .collect();
    for c in &clips {
        let clip = read_wav(&root.join(&c.file));
        assert_eq!(clip.rate, 16_000, "{}", c.file);
        audio.samples.extend_from_slice(&clip.samples);
        audio.samples.extend(std::iter::repeat_n(0.0, 24_000));
    }
    let wav = dir.join("clips.wav");
    write_wav(&wav, &audio);
    (wav, clips.len())
}

/// Commands said after the phrase, and sentences nobody addresses (each with
/// a word of its own, so its text can be searched for everywhere).
pub const WAKE_COMMANDS: [&str; 10] = [
    "turn on the kitchen lights",
    "what time is it",
    "play some music",
    "set a timer for ten minutes",
    "stop the alarm",
    "open the garage door",
    "call my mother",
    "turn the volume down",
    "what is the weather tomorrow",
    "lock the front door",
];
pub const WAKE_CHATTER: [(&str, &str); 12] = [
    ("the zebra crossed the road", "zebra"),
    ("we had lasagna for dinner", "lasagna"),
    ("my neighbour owns a porcupine", "porcupine"),
    ("the violin needs new strings", "violin"),
    ("she painted the fence yellow", "fence"),
    ("bring the umbrella tonight", "umbrella"),
    ("the museum opens on sunday", "museum"),
    ("he fixed the bicycle chain", "bicycle"),
    ("the pancakes were delicious", "pancakes"),
    ("our garden has tomatoes", "tomatoes"),
    // The two nearest the phrase (letters 0.18 and 0.27 off it as tiny.en
    // writes them).
    ("he computed the total", "total"),
    ("a computer is on the desk", "desk"),
];
pub const WAKE_VOICES: [&str; 2] = ["en-us", "en-gb+m3"];
pub const WAKE_PHRASE: &str = "hey computer";

/// The session: every command after the phrase and every chatter sentence, in
/// both voices; then the phrase alone and a command after it.
/// Returns it with, per sentence, whether it is addressed.
pub fn wake_session() -> (Session, Vec<bool>) {
    let mut s = Session::new(ESPEAK_RATE);
    let mut addressed = Vec::new();
    s.silence(1.0);
    for voice in WAKE_VOICES {
        for command in WAKE_COMMANDS {
            s.say_as(voice, &format!("{WAKE_PHRASE}, {command}"))
                .silence(1.2);
            addressed.push(true);
        }
        for (chatter, _) in WAKE_CHATTER {
            s.say_as(voice, chatter).silence(1.2);
            addressed.push(false);
        }
    }
    s.say(WAKE_PHRASE).silence(1.0);
    addressed.push(true);
    s.say("switch off the radio").silence(1.5);
    addressed.push(true);
    (s, addressed)
}

/// For each sentence of `s`, the events of the utterance that overlaps it most.
pub fn per_sentence<'a>(s: &Session, events: &'a [Value], origin: u64) -> Vec<Vec<&'a Value>> {
    let utts = utterances(events);
    s.truth
        .iter()
        .map(|(_, a, b)| {
            let (a, b) = (origin + a, origin + b);
            let best = utts
                .iter()
                .map(|(id, start, end)| (*id, (*end).min(b).saturating_sub((*start).max(a))))
                .filter(|(_, overlap)| *overlap > 0)
                .max_by_key(|(_, overlap)| *overlap);
            match best {
                Some((id, _)) => events
                    .iter()
                    .filter(|e| e["id"].as_u64() == Some(id))
                    .collect(),
                None => Vec::new(),
            }
        })
        .collect()
}
