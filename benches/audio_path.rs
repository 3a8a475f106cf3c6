//! Audio path benchmark: 48 kHz stereo f32 through the capture callback's
//! downmix into the ring, then resampling, VAD and segmentation — on one core,
//! in × real time; and the callback's cost per 10 ms buffer (median, max).
//!
//! `cargo bench --bench audio_path` (the ratio is against the audio's own
//! duration, measured in the same process). Uses ../shared/testdata speech and
//! silence when present, otherwise a synthetic signal.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sotto::audio::capture::{ring, CaptureCounters, CaptureWriter};
use sotto::dsp::segmenter::{Segment, SegmenterSettings};
use sotto::dsp::Frontend;

const RATE: usize = 48_000;
const BUFFER_FRAMES: usize = RATE / 100; // 10 ms

fn source_audio() -> (Vec<f32>, &'static str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/speech");
    let mut mono = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let Ok(mut r) = hound::WavReader::open(&p) else {
                continue;
            };
            let spec = r.spec();
            if spec.sample_rate != 16_000 || spec.channels != 1 {
                continue;
            }
            // Upsample 16 kHz → 48 kHz by repetition; content, not fidelity, matters here.
            for s in r.samples::<i16>().flatten() {
                let v = f32::from(s) / 32768.0;
                mono.extend_from_slice(&[v, v, v]);
            }
            mono.extend(std::iter::repeat_n(0.0, RATE)); // a second of silence
        }
    }
    if mono.len() > RATE * 10 {
        return (mono, "shared speech clips");
    }
    let synthetic = (0..RATE * 60)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            let gate = if (t as u32) % 3 == 0 { 0.0 } else { 0.3 };
            gate * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
        })
        .collect();
    (synthetic, "synthetic tone bursts")
}

fn main() {
    let (mono, what) = source_audio();
    let stereo: Vec<f32> = mono.iter().flat_map(|s| [*s, *s * 0.9]).collect();
    let seconds = mono.len() as f64 / RATE as f64;
    let settings = SegmenterSettings {
        vad_threshold: 0.5,
        min_speech_ms: 320,
        pre_roll_ms: 320,
        silence_ms: 500,
        max_utterance_ms: 20_000,
    };

    let mut best = f64::MAX;
    let mut utterances = 0;
    let mut callback_ns: Vec<u64> = Vec::new();
    for round in 0..3 {
        let counters = Arc::new(CaptureCounters::default());
        let (producer, mut consumer) = ring(RATE as u32, 4.0);
        let mut writer = CaptureWriter::new(producer, 2, counters.clone());
        let mut frontend = Frontend::new(settings);
        frontend.begin_stream(RATE as u32, 0);
        let mut block = vec![0.0f32; 4096];
        let mut n_utts = 0;
        let started = Instant::now();
        for buffer in stereo.chunks(BUFFER_FRAMES * 2) {
            let t = Instant::now();
            writer.write(buffer);
            if round == 0 {
                callback_ns.push(t.elapsed().as_nanos() as u64);
            }
            while let Ok(chunk) = consumer.read_chunk(consumer.slots().min(block.len())) {
                if chunk.is_empty() {
                    break;
                }
                let n = chunk.len();
                let (a, b) = chunk.as_slices();
                block[..a.len()].copy_from_slice(a);
                block[a.len()..n].copy_from_slice(b);
                chunk.commit_all();
                frontend.push(&block[..n], &mut |s| {
                    n_utts += usize::from(matches!(s, Segment::Started { .. }))
                });
            }
        }
        frontend.end_stream(&mut |_| {});
        let elapsed = started.elapsed().as_secs_f64();
        best = best.min(elapsed);
        utterances = n_utts;
    }
    callback_ns.sort_unstable();
    let median = callback_ns[callback_ns.len() / 2];
    let max = *callback_ns.last().unwrap();
    println!("audio: {seconds:.1} s of 48 kHz stereo f32 ({what}), {utterances} utterances");
    println!("| figure | value |");
    println!("|---|---|");
    println!("| audio path (downmix, ring, resample, VAD, segmenter), one core | {:.0}× real time ({:.3} % of a core) |", seconds / best, 100.0 * best / seconds);
    println!(
        "| callback per 10 ms buffer (480 stereo frames), median | {:.2} µs |",
        median as f64 / 1000.0
    );
    println!(
        "| callback per 10 ms buffer, max | {:.2} µs |",
        max as f64 / 1000.0
    );
}
