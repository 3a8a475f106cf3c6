//! Audio path benchmark: 48 kHz stereo f32 through the capture callback's
//! downmix into the ring, then resampling, VAD and segmentation — on one core,
//! in × real time; and the callback's cost per 10 ms buffer (median, max).
//!
//! `cargo bench --bench audio_path` (the ratio is against the audio's own
//! duration, measured in the same process). Uses ../shared/testdata speech and
//! silence when present, otherwise a synthetic signal.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto::audio::capture::{ring, CaptureCounters, CaptureWriter};
use sotto::dsp::segmenter::{Segment, SegmenterSettings};
use sotto::dsp::Frontend;

#[path = "common/report.rs"]
mod report;
use report::{row, smoke, write_part};

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
    if smoke() {
        mono.truncate(RATE * 10);
    }
    if mono.len() >= RATE * 10 {
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
        end_of_speech: sotto::endpoint::EndOfSpeech::Fixed,
        min_silence_ms: 250,
        max_silence_ms: 900,
    };

    let rounds = if smoke() { 1 } else { 3 };
    // The daemon's path (VAD behind its energy gate) and the same path
    // scoring every frame, alternately, best of each.
    let (mut best, mut ungated_best) = (f64::MAX, f64::MAX);
    let (mut utterances, mut gated_share) = (0, 0.0);
    let mut callback_ns: Vec<u64> = Vec::new();
    for round in 0..rounds {
        let gated = run_path(&stereo, Frontend::new(settings), round == 0);
        best = best.min(gated.elapsed);
        (utterances, gated_share) = (gated.utterances, gated.gated_share);
        if round == 0 {
            callback_ns = gated.callback_ns;
        }
        let ungated = run_path(&stereo, Frontend::ungated(settings), false);
        ungated_best = ungated_best.min(ungated.elapsed);
        assert_eq!(
            ungated.utterances, gated.utterances,
            "the gate changed the utterances"
        );
    }
    // Where the time goes: the resampler alone, and the VAD alone on the
    // resampled audio, each best of the same number of rounds.
    let mut resampled = Vec::new();
    let mut resample_best = f64::MAX;
    for _ in 0..rounds {
        resampled.clear();
        let mut r = sotto::dsp::resample::Resampler::new(RATE as u32);
        let t = Instant::now();
        for block in mono.chunks(4096) {
            r.push(block, &mut |out| resampled.extend_from_slice(out));
        }
        r.finish(&mut |out| resampled.extend_from_slice(out));
        resample_best = resample_best.min(t.elapsed().as_secs_f64());
    }
    let mut vad_best = f64::MAX;
    for _ in 0..rounds {
        let mut vad = sotto::dsp::vad::Vad::ungated();
        let t = Instant::now();
        let mut sum = 0.0f32;
        for frame in resampled.chunks_exact(sotto::dsp::vad::FRAME_SAMPLES) {
            sum += vad.score(frame.try_into().unwrap());
        }
        std::hint::black_box(sum);
        vad_best = vad_best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "stages alone: resampler {:.0}× real time, VAD (every frame) {:.0}× real time",
        seconds / resample_best,
        seconds / vad_best
    );
    let ungated_speed = seconds / ungated_best;
    callback_ns.sort_unstable();
    let median = callback_ns[callback_ns.len() / 2];
    let max = *callback_ns.last().unwrap();
    println!("audio: {seconds:.1} s of 48 kHz stereo f32 ({what}), {utterances} utterances, best of {rounds}");
    let speed = seconds / best;
    let (median_us, max_us) = (median as f64 / 1000.0, max as f64 / 1000.0);
    write_part(
        "audio_path",
        &[
            row(
                "audio path (downmix, ring, resample, VAD, segmenter), one core",
                format!("{speed:.0}× real time ({:.3} % of a core)", 100.0 / speed),
                "≥ 2000×",
                Some(speed >= 2000.0),
            ),
            row(
                "audio path with the VAD scoring every frame (no energy gate), same run",
                format!(
                    "{ungated_speed:.0}× real time; the gate kept {:.1} % of the frames from the model",
                    100.0 * gated_share
                ),
                "",
                None,
            ),
            row(
                "callback per 10 ms buffer (480 stereo f32 frames), median / max",
                format!("{median_us:.2} µs / {max_us:.1} µs"),
                "median ≤ 5 µs, no allocation",
                Some(median_us <= 5.0),
            ),
        ],
        serde_json::json!({
            "audio_seconds": seconds, "source": what, "utterances": utterances,
            "x_real_time": speed, "ungated_x_real_time": ungated_speed, "gated_share": gated_share,
            "callback_median_us": median_us, "callback_max_us": max_us,
            "resampler_x_real_time": seconds / resample_best, "vad_x_real_time": seconds / vad_best,
        }),
    );
}

/// One pass of the audio path.
struct PathRun {
    elapsed: f64,
    utterances: usize,
    /// Share of the VAD frames the energy gate kept from the model.
    gated_share: f64,
    /// Each write's time, when asked for.
    callback_ns: Vec<u64>,
}

/// `stereo` through the callback's writer, the ring and `frontend`, on this
/// thread, as the daemon runs it. Every 100 ms is first copied into a device
/// buffer, untimed: that is the sound server's delivery, and it leaves the
/// audio in the cache as a real callback finds it (reading the 52 MB source
/// straight from memory would time the machine's memory bandwidth instead).
/// Then its ten 10 ms buffers go through the callback's writer, each followed
/// by the dsp thread's read, timed together.
fn run_path(stereo: &[f32], mut frontend: Frontend, time_callback: bool) -> PathRun {
    const BUFFERS_PER_DELIVERY: usize = 10;
    let counters = Arc::new(CaptureCounters::default());
    let (producer, mut consumer) = ring(RATE as u32, 4.0);
    let mut writer = CaptureWriter::new(
        producer,
        2,
        counters,
        sotto::audio::capture::Doorbell::new(RATE as u32),
    );
    frontend.begin_stream(RATE as u32, 0);
    let mut utterances = 0;
    let mut callback_ns = Vec::new();
    let mut device = vec![0.0f32; BUFFER_FRAMES * 2 * BUFFERS_PER_DELIVERY];
    let mut elapsed = Duration::ZERO;
    for delivery in stereo.chunks(device.len()) {
        let device = &mut device[..delivery.len()];
        device.copy_from_slice(delivery);
        let started = Instant::now();
        for buffer in device.chunks(BUFFER_FRAMES * 2) {
            let t = time_callback.then(Instant::now);
            writer.write(buffer);
            if let Some(t) = t {
                callback_ns.push(t.elapsed().as_nanos() as u64);
            }
            while let Ok(chunk) = consumer.read_chunk(consumer.slots().min(4096)) {
                if chunk.is_empty() {
                    break;
                }
                let (a, b) = chunk.as_slices();
                for part in [a, b] {
                    frontend.push(part, &mut |s| {
                        utterances += usize::from(matches!(s, Segment::Started { .. }))
                    });
                }
                chunk.commit_all();
            }
        }
        elapsed += started.elapsed();
    }
    let t = Instant::now();
    frontend.end_stream(&mut |_| {});
    let elapsed = (elapsed + t.elapsed()).as_secs_f64();
    let frames = stereo.len() / 2 / (RATE / 16_000) / sotto::dsp::vad::FRAME_SAMPLES;
    PathRun {
        elapsed,
        utterances,
        gated_share: frontend.frames_gated() as f64 / frames.max(1) as f64,
        callback_ns,
    }
}
