//! The VAD's energy gate changes nothing but the cost: over every shared clip
//! (speech, noisy, non-speech), each after a quiet stretch that closes the
//! gate, the gated audio path gives the same utterances as the path whose VAD
//! scores every frame, to the sample.

use clap::Parser;
use sotto::dsp::segmenter::{Segment, SegmenterSettings};
use sotto::dsp::vad::{FRAME_SAMPLES, GATE_FLOOR_DBFS};
use sotto::dsp::Frontend;
use sotto_testkit::*;

/// sottod's own segmenter settings, from its defaults.
pub(crate) fn default_settings() -> SegmenterSettings {
    let model = model_path();
    let cli = sotto::cli::Cli::try_parse_from(["sottod", "--model", model.to_str().unwrap()])
        .expect("the defaults parse");
    sotto::config::Config::from_cli(&cli)
        .expect("the defaults are valid")
        .segmenter
}

/// What an utterance is, for the comparison: its id, start and end, and its
/// samples.
type Heard = (u64, u64, u64, Vec<f32>);

fn utterances(mut frontend: Frontend, audio: &[f32]) -> (Vec<Heard>, u64) {
    let mut heard = Vec::new();
    let mut on_segment = |s: Segment| {
        if let Segment::Ended(u) = s {
            heard.push((u.id, u.start_ms, u.end_ms, u.samples));
        }
    };
    frontend.begin_stream(16_000, 0);
    // In blocks of an odd size, as a ring delivers them.
    for block in audio.chunks(1_000) {
        frontend.push(block, &mut on_segment);
    }
    frontend.end_stream(&mut on_segment);
    (heard, frontend.frames_gated())
}

/// Deterministic white noise at `dbfs` RMS.
fn noise(dbfs: f32, n: usize, seed: &mut u32) -> impl Iterator<Item = f32> + '_ {
    let amplitude = 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
    (0..n).map(move |_| {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        amplitude * ((*seed >> 8) as f32 / (1 << 23) as f32 - 1.0)
    })
}

#[test]
fn the_energy_gate_gives_the_same_utterances_as_scoring_every_frame() {
    let mut audio = Vec::new();
    let mut seed = 1;
    // Each clip's category and where it ends in the audio (ms).
    let mut clip_ends = Vec::new();
    for clip in manifest() {
        // A quiet room 20 dB under the gate's floor (the gate closes), the
        // clip, and a noisier room 10 dB over it (the gate stays open).
        audio.extend(noise(GATE_FLOOR_DBFS - 20.0, 24_000, &mut seed));
        audio.extend(read_wav(&testdata().join(&clip.file)).samples);
        audio.extend(noise(GATE_FLOOR_DBFS + 10.0, 8_000, &mut seed));
        clip_ends.push((clip.category, audio.len() as u64 / 16));
    }
    audio.extend(std::iter::repeat_n(0.0, 16_000));
    let settings = default_settings();
    let (gated, n_gated) = utterances(Frontend::new(settings), &audio);
    let (reference, n_ungated) = utterances(Frontend::ungated(settings), &audio);
    let n_frames = audio.len() / FRAME_SAMPLES;
    println!(
        "{} clips, {n_frames} frames: {} utterances; the gate kept {n_gated} frames ({:.1} %) from the model",
        clip_ends.len(),
        reference.len(),
        100.0 * n_gated as f64 / n_frames as f64
    );
    assert_eq!(n_ungated, 0);
    assert_eq!(
        gated.len(),
        reference.len(),
        "as many utterances with the gate as without"
    );
    assert!(
        reference.len() >= 25,
        "every speech clip is heard: {}",
        reference.len()
    );
    let category = |start_ms: u64| {
        let (category, _) = clip_ends.iter().find(|(_, end)| start_ms < *end).unwrap();
        category.as_str()
    };
    let mut moved = 0;
    for (g, r) in gated.iter().zip(&reference) {
        let (id, what) = (r.0, category(r.1));
        if what == "speech" || what.starts_with("noisy") {
            // What is decoded: the same samples, so the same words.
            assert_eq!(
                (g.1, g.2),
                (r.1, r.2),
                "utterance {id} ({what}): boundaries"
            );
            assert!(g.3 == r.3, "utterance {id} ({what}): other samples");
        } else if (g.1, g.2) != (r.1, r.2) {
            // earshot's score depends on all it has heard (its recurrent
            // state never quite settles), so after a long gap its onset on
            // a noise may fall one frame apart; the model judges no words
            // in either.
            println!(
                "utterance {id} ({what}): gated {:?}, every frame {:?}",
                (g.1, g.2),
                (r.1, r.2)
            );
            let frame = sotto::dsp::vad::FRAME_MS;
            assert!(
                g.1.abs_diff(r.1) <= frame && g.2.abs_diff(r.2) <= frame,
                "utterance {id} ({what}) moved by more than a frame"
            );
            moved += 1;
        }
    }
    println!("{moved} non-speech utterance(s) moved by one frame");
    // The quiet stretches are a seventh of the audio; the gate must have
    // skipped most of them.
    assert!(
        n_gated as f64 > 0.1 * n_frames as f64,
        "the gate skipped only {n_gated} of {n_frames} frames"
    );
}
