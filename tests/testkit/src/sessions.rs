//! Paced sessions several tests and benches play through sottod: spoken
//! commands, sentences with a pause after an unfinished word, and the shared
//! long clips.

use std::path::{Path, PathBuf};

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
