//! Generated speech (espeak-ng), sox conversions, WAV files and sessions of
//! sentences with known boundaries.

use std::path::Path;
use std::process::Command;

use crate::*;

/// Mono f32 audio at a rate.
#[derive(Clone)]
pub struct Audio {
    pub rate: u32,
    pub samples: Vec<f32>,
}

pub fn read_wav(path: &Path) -> Audio {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let ch = spec.channels as usize;
    let raw: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.unwrap() as f32 * scale)
                .collect()
        }
    };
    let samples = raw
        .chunks(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect();
    Audio {
        rate: spec.sample_rate,
        samples,
    }
}

pub fn write_wav(path: &Path, audio: &Audio) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in &audio.samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// Speech from espeak-ng (default voice), at its own rate (22050 Hz).
pub fn speak(text: &str) -> Audio {
    speak_as("en-us", text)
}

/// Speech from espeak-ng in `voice` (e.g. `en-us`, `en-gb+f3`), at 22050 Hz.
pub fn speak_as(voice: &str, text: &str) -> Audio {
    speak_at(voice, 175, text)
}

/// [`speak_as`] at `wpm` words a minute (espeak-ng's default is 175).
pub fn speak_at(voice: &str, wpm: u32, text: &str) -> Audio {
    let dir = scratch();
    let path = dir.path().join("s.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &wpm.to_string(), "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .expect("espeak-ng must be installed (scripts/install-deps.sh)");
    assert!(status.success(), "espeak-ng failed");
    read_wav(&path)
}

/// Converts with sox (`args` are the output options).
pub fn sox(input: &Path, output: &Path, args: &[&str]) {
    let status = Command::new("sox")
        .arg(input)
        .args(args)
        .arg(output)
        .status()
        .expect("sox must be installed (scripts/install-deps.sh)");
    assert!(status.success(), "sox failed");
}

/// First and last sample above a small level: where the voice really is.
pub fn voiced_span(audio: &Audio) -> (usize, usize) {
    let level = 0.02;
    let first = audio
        .samples
        .iter()
        .position(|s| s.abs() > level)
        .unwrap_or(0);
    let last = audio
        .samples
        .iter()
        .rposition(|s| s.abs() > level)
        .unwrap_or(0);
    (first, last + 1)
}

/// A session built from pieces, remembering where each sentence's voice is.
pub struct Session {
    pub audio: Audio,
    /// (text, start ms, end ms) from the start of the file.
    pub truth: Vec<(String, u64, u64)>,
}

impl Session {
    pub fn new(rate: u32) -> Self {
        Session {
            audio: Audio {
                rate,
                samples: Vec::new(),
            },
            truth: Vec::new(),
        }
    }
    pub fn silence(&mut self, seconds: f32) -> &mut Self {
        let n = (seconds * self.audio.rate as f32) as usize;
        self.audio.samples.extend(std::iter::repeat_n(0.0, n));
        self
    }
    pub fn say(&mut self, text: &str) -> &mut Self {
        self.say_as("en-us", text)
    }
    /// Says `text` in espeak-ng's `voice`.
    pub fn say_as(&mut self, voice: &str, text: &str) -> &mut Self {
        self.say_at(voice, 175, text)
    }

    /// Says `text` in espeak-ng's `voice` at `wpm` words a minute.
    pub fn say_at(&mut self, voice: &str, wpm: u32, text: &str) -> &mut Self {
        let speech = speak_at(voice, wpm, text);
        assert_eq!(
            speech.rate, self.audio.rate,
            "session rate must match espeak's"
        );
        let (a, b) = voiced_span(&speech);
        let offset = self.audio.samples.len();
        let ms = |i: usize| (i as u64 * 1000) / self.audio.rate as u64;
        self.truth
            .push((text.to_string(), ms(offset + a), ms(offset + b)));
        self.audio.samples.extend_from_slice(&speech.samples);
        self
    }
    /// Speaks `text` exactly `gap` seconds after the end of the last voice:
    /// espeak-ng's own padding is cut on both sides.
    pub fn say_after(&mut self, gap: f32, text: &str) -> &mut Self {
        let last_end = self.truth.last().expect("something was said").2;
        let keep = (last_end * self.audio.rate as u64 / 1000) as usize;
        self.audio.samples.truncate(keep);
        self.silence(gap);
        let speech = speak(text);
        let (a, b) = voiced_span(&speech);
        let offset = self.audio.samples.len();
        let ms = |i: usize| (i as u64 * 1000) / self.audio.rate as u64;
        self.truth
            .push((text.to_string(), ms(offset), ms(offset + b - a)));
        self.audio.samples.extend_from_slice(&speech.samples[a..]);
        self
    }

    pub fn write(&self, path: &Path) {
        write_wav(path, &self.audio);
    }
}

/// Espeak's output rate.
pub const ESPEAK_RATE: u32 = 22_050;
