//! The shared corpus's clips as the decode benches use them: 16 kHz mono
//! samples and the reference text.

#![allow(dead_code)]

use std::path::Path;

use sotto::transcribe::Heard;
use sotto_testkit::manifest;

pub struct Clip {
    pub name: String,
    pub samples: Vec<f32>,
    pub reference: String,
}

/// Every clip under `root` whose category starts with one of `categories`.
pub fn clips(root: &Path, categories: &[&str]) -> Vec<Clip> {
    manifest()
        .into_iter()
        .filter(|c| categories.iter().any(|k| c.category.starts_with(k)))
        .map(|c| {
            let path = root.join(&c.file);
            let mut r = hound::WavReader::open(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; the WER corpus needs every clip", path.display())
            });
            let spec = r.spec();
            assert_eq!((spec.sample_rate, spec.channels), (16_000, 1), "{}", c.file);
            let samples = r
                .samples::<i16>()
                .map(|s| f32::from(s.expect("a readable sample")) / 32768.0)
                .collect();
            Clip {
                name: c.file,
                samples,
                reference: c.transcript,
            }
        })
        .collect()
}

/// The words heard, empty for none.
pub fn text(heard: Heard) -> String {
    match heard {
        Heard::Text { text, .. } => text,
        Heard::NoSpeech { .. } => String::new(),
    }
}
