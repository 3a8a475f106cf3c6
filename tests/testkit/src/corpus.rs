//! The shared corpus (../shared/testdata): its manifest, read in one place,
//! and a long session built from its clips.

use crate::*;

/// One clip of ../shared/testdata/manifest.tsv.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Path relative to the testdata folder.
    pub file: String,
    pub seconds: f64,
    /// `speech`, `noisy…` or `nonspeech…`.
    pub category: String,
    /// The reference transcript as written.
    pub transcript: String,
    /// The same, normalised.
    pub transcript_norm: String,
}

/// Every clip of the manifest, in its order; columns are found by their header.
pub fn manifest() -> Vec<Clip> {
    let path = testdata().join("manifest.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().expect("a header line").split('\t').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("manifest.tsv has no {name} column"))
    };
    let (file, seconds, category, transcript, norm) = (
        column("file"),
        column("seconds"),
        column("category"),
        column("transcript"),
        column("transcript_norm"),
    );
    rows.filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Clip {
                file: f[file].to_string(),
                seconds: f[seconds].parse().unwrap_or(0.0),
                category: f[category].to_string(),
                transcript: f[transcript].to_string(),
                transcript_norm: f[norm].to_string(),
            }
        })
        .collect()
}

/// A long session built deterministically from ../shared/testdata: for each
/// clean speech clip (`speech*` in the manifest, in its order), 1 s of silence, the clip, 1 s of silence
/// and the first 6 s of a non-speech clip; the first `clips` speech clips (all
/// with `None`) make one pass, repeated until `min_seconds` (0: one pass).
pub struct SharedSession {
    /// 16 kHz mono.
    pub audio: Audio,
    /// (normalised transcript, start ms, end ms) of each speech clip.
    pub speech: Vec<(String, u64, u64)>,
    /// (start ms, end ms) of each non-speech clip.
    pub nonspeech: Vec<(u64, u64)>,
    /// Length of one pass over the clips, in seconds.
    pub cycle_seconds: f64,
}

pub fn shared_session(min_seconds: f64, clips: Option<usize>) -> SharedSession {
    let root = testdata();
    let dir = scratch();
    let load = |file: &str| {
        let out = dir.path().join("clip.wav");
        sox(
            &root.join(file),
            &out,
            &["-r", "16000", "-c", "1", "-b", "16"],
        );
        read_wav(&out)
    };
    let mut speech_clips = Vec::new();
    let mut other_clips = Vec::new();
    for clip in manifest() {
        match clip.category.as_str() {
            c if c.starts_with("speech") => {
                speech_clips.push((load(&clip.file), clip.transcript_norm.clone()))
            }
            c if c.starts_with("nonspeech") => {
                let mut a = load(&clip.file);
                a.samples.truncate(6 * 16_000);
                other_clips.push(a);
            }
            _ => {}
        }
    }
    assert!(!speech_clips.is_empty() && !other_clips.is_empty());
    speech_clips.truncate(clips.unwrap_or(usize::MAX));
    let mut s = SharedSession {
        audio: Audio {
            rate: 16_000,
            samples: Vec::new(),
        },
        speech: Vec::new(),
        nonspeech: Vec::new(),
        cycle_seconds: 0.0,
    };
    let ms = |n: usize| n as u64 * 1000 / 16_000;
    let second = vec![0.0f32; 16_000];
    'outer: loop {
        for (i, (clip, text)) in speech_clips.iter().enumerate() {
            s.audio.samples.extend_from_slice(&second);
            let at = s.audio.samples.len();
            s.audio.samples.extend_from_slice(&clip.samples);
            s.speech
                .push((text.clone(), ms(at), ms(s.audio.samples.len())));
            s.audio.samples.extend_from_slice(&second);
            let other = &other_clips[i % other_clips.len()];
            let at = s.audio.samples.len();
            s.audio.samples.extend_from_slice(&other.samples);
            s.nonspeech.push((ms(at), ms(s.audio.samples.len())));
            if min_seconds > 0.0 && s.audio.samples.len() as f64 >= min_seconds * 16_000.0 {
                break 'outer;
            }
        }
        if s.cycle_seconds == 0.0 {
            s.cycle_seconds = s.audio.samples.len() as f64 / 16_000.0;
        }
        if s.audio.samples.len() as f64 >= min_seconds * 16_000.0 {
            break;
        }
    }
    if s.cycle_seconds == 0.0 {
        s.cycle_seconds = s.audio.samples.len() as f64 / 16_000.0;
    }
    s
}
