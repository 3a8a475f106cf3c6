//! Any device rate to 16 kHz mono, in fixed chunks, with buffers allocated once.
//!
//! Rates that are a whole multiple of 16 kHz (48, 32, 96 kHz: most devices) go
//! through rubato's windowed-sinc resampler, whose output samples then fall
//! exactly on input samples: one 64-tap dot product per output sample, 1.7×
//! cheaper than the FFT resampler here and delayed by 32 input samples instead
//! of a chunk. Other rates (44.1, 22.05 kHz) use rubato's synchronous FFT
//! resampler, in chunks of its smallest block of at least 10 ms.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Indexing, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

use crate::pipeline::WHISPER_RATE as TARGET_RATE;

/// The FFT resampler's input per chunk: the smallest whole number of its
/// minimum block (`rate / gcd(rate, 16 kHz)`: 441 frames at 44.1 and 22.05
/// kHz) that lasts at least 10 ms. Audio waits in the resampler until a chunk
/// is full, so the chunk's length is added to the end of every utterance; the
/// FFT itself is one block either way (its size, and so its filter, set by
/// the block).
pub fn fft_chunk_frames(input_rate: u32) -> usize {
    let (mut a, mut b) = (input_rate, TARGET_RATE);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let block = (input_rate / a) as usize;
    (input_rate as usize).div_ceil(100).div_ceil(block) * block
}
/// Input per sinc chunk: 10 ms (its cost does not depend on the chunk).
const SINC_CHUNK_MS: u32 = 10;
/// Chunks of silence fed at the end to push the delayed tail out: the delay is
/// at most a chunk or two, so this bound is only a guard against a loop.
const MAX_FLUSH_CHUNKS: usize = 16;
/// Taps of the sinc filter; the cut-off is rubato's recommendation for this length.
const SINC_LEN: usize = 64;

/// Streams mono audio at `input_rate` to 16 kHz. `push` takes any number of
/// frames; output comes in chunks through a callback. A 16 kHz input passes through.
pub struct Resampler {
    inner: Option<Inner>,
}

struct Inner {
    /// rubato's windowed-sinc or FFT resampler, whichever the rate takes.
    engine: Box<dyn rubato::Resampler<f32> + Send>,
    /// Input waiting for a full chunk; capacity fixed at creation.
    pending: Vec<f32>,
    /// Output of one chunk; capacity fixed at creation.
    output: Vec<f32>,
    /// Output frames still to discard: the resampler's start-up delay, so the
    /// output's first frame is the input's first frame in time.
    delay_left: usize,
    /// Input frames taken and output frames given since the last reset, so
    /// `finish` can give exactly `input × ratio` in all.
    frames_in: u64,
    frames_out: u64,
}

impl Resampler {
    /// A resampler from `input_rate` Hz to 16 kHz.
    pub fn new(input_rate: u32) -> Self {
        if input_rate == TARGET_RATE {
            return Self { inner: None };
        }
        let engine: Box<dyn rubato::Resampler<f32> + Send> = if input_rate % TARGET_RATE == 0 {
            let parameters = SincInterpolationParameters {
                sinc_len: SINC_LEN,
                f_cutoff: None,
                oversampling_factor: 1,
                interpolation: SincInterpolationType::Nearest,
                window: WindowFunction::BlackmanHarris2,
            };
            Box::new(
                Async::<f32>::new_sinc(
                    f64::from(TARGET_RATE) / f64::from(input_rate),
                    1.0,
                    &parameters,
                    (input_rate * SINC_CHUNK_MS / 1000) as usize,
                    1,
                    FixedAsync::Input,
                )
                .expect("an integer ratio and a fixed chunk"),
            )
        } else {
            Box::new(
                Fft::<f32>::new(
                    input_rate as usize,
                    TARGET_RATE as usize,
                    fft_chunk_frames(input_rate),
                    1,
                    FixedSync::Input,
                )
                .expect("rates are non-zero and the chunk size is fixed"),
            )
        };
        let output = vec![0.0; engine.output_frames_max()];
        let delay_left = engine.output_delay();
        Self {
            inner: Some(Inner {
                pending: Vec::with_capacity(engine.input_frames_max()),
                output,
                delay_left,
                frames_in: 0,
                frames_out: 0,
                engine,
            }),
        }
    }

    /// Feeds input frames; calls `out` with each block of 16 kHz frames produced.
    pub fn push(&mut self, mut input: &[f32], out: &mut impl FnMut(&[f32])) {
        let Some(inner) = &mut self.inner else {
            out(input);
            return;
        };
        while !input.is_empty() {
            let next = inner.engine.input_frames_next();
            if inner.pending.is_empty() && input.len() >= next {
                // A whole chunk in the input: resampled in place, not copied.
                let (chunk, rest) = input.split_at(next);
                inner.frames_in += next as u64;
                inner.run(chunk, None, out);
                input = rest;
                continue;
            }
            let needed = next - inner.pending.len();
            let take = needed.min(input.len());
            inner.pending.extend_from_slice(&input[..take]);
            inner.frames_in += take as u64;
            input = &input[take..];
            if inner.pending.len() == inner.engine.input_frames_next() {
                inner.process(None, out);
            }
        }
    }

    /// Flushes what is buffered (the tail, plus the resampler's delay of silence)
    /// so that the output covers the whole input; then the resampler is reset.
    pub fn finish(&mut self, out: &mut impl FnMut(&[f32])) {
        let Some(inner) = &mut self.inner else { return };
        let total_out = (inner.frames_in as f64 * inner.engine.resample_ratio()).ceil() as u64;
        let mut remaining_out = total_out.saturating_sub(inner.frames_out) as usize;
        let mut partial = inner.pending.len();
        // The tail, then silence until the delayed end of the input has come out.
        let mut guard = 0;
        while remaining_out > 0 && guard < MAX_FLUSH_CHUNKS {
            inner.pending.resize(inner.engine.input_frames_next(), 0.0);
            inner.process(Some(partial), &mut |block: &[f32]| {
                let n = block.len().min(remaining_out);
                remaining_out -= n;
                if n > 0 {
                    out(&block[..n]);
                }
            });
            partial = 0;
            guard += 1;
        }
        inner.engine.reset();
        inner.pending.clear();
        inner.delay_left = inner.engine.output_delay();
        inner.frames_in = 0;
        inner.frames_out = 0;
    }
}

impl Inner {
    /// Resamples the chunk waiting in `pending` and empties it.
    fn process(&mut self, partial_len: Option<usize>, out: &mut impl FnMut(&[f32])) -> usize {
        let pending = std::mem::take(&mut self.pending);
        let n = self.run(&pending, partial_len, out);
        self.pending = pending;
        self.pending.clear();
        n
    }

    /// Resamples one chunk, exactly `input_frames_next()` frames of `chunk`.
    fn run(
        &mut self,
        chunk: &[f32],
        partial_len: Option<usize>,
        out: &mut impl FnMut(&[f32]),
    ) -> usize {
        let n_in = self.engine.input_frames_next();
        let input = InterleavedSlice::new(&chunk[..n_in], 1, n_in).expect("a whole chunk");
        let n_out_max = self.output.len();
        let mut output = InterleavedSlice::new_mut(&mut self.output[..], 1, n_out_max)
            .expect("output holds one chunk");
        let indexing = partial_len.map(|n| Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: Some(n),
            active_channels_mask: None,
        });
        let (_, n_out) = self
            .engine
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .expect("buffers sized from the resampler's own limits");
        let skip = self.delay_left.min(n_out);
        self.delay_left -= skip;
        if n_out > skip {
            out(&self.output[skip..n_out]);
        }
        self.frames_out += (n_out - skip) as u64;
        n_out - skip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f32, seconds: f32, amplitude: f32) -> Vec<f32> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .map(|i| amplitude * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    fn resample_all(rate: u32, input: &[f32], push_size: usize) -> Vec<f32> {
        let mut r = Resampler::new(rate);
        let mut out = Vec::new();
        for block in input.chunks(push_size) {
            r.push(block, &mut |b| out.extend_from_slice(b));
        }
        r.finish(&mut |b| out.extend_from_slice(b));
        out
    }

    /// Frequency by counting upward zero crossings in the steady middle.
    fn frequency(samples: &[f32], rate: u32) -> f32 {
        let mid = &samples[samples.len() / 4..samples.len() * 3 / 4];
        let crossings = mid.windows(2).filter(|w| w[0] <= 0.0 && w[1] > 0.0).count();
        crossings as f32 * rate as f32 / mid.len() as f32
    }

    fn rms(samples: &[f32]) -> f32 {
        let mid = &samples[samples.len() / 4..samples.len() * 3 / 4];
        (mid.iter().map(|s| s * s).sum::<f32>() / mid.len() as f32).sqrt()
    }

    #[test]
    fn keeps_a_1khz_tone_frequency_level_and_length_from_44100_and_48000() {
        for rate in [44_100, 48_000] {
            let input = tone(rate, 1000.0, 2.0, 0.5);
            let out = resample_all(rate, &input, 441);
            let expected_len = (input.len() as f64 * 16_000.0 / rate as f64).ceil() as usize;
            assert!(
                out.len().abs_diff(expected_len) <= 1,
                "{rate}: {} frames out, expected {expected_len}",
                out.len()
            );
            let f = frequency(&out, TARGET_RATE);
            assert!((f - 1000.0).abs() < 5.0, "{rate}: frequency {f}");
            let level = rms(&out);
            let want = 0.5 / 2f32.sqrt();
            assert!(
                (level - want).abs() / want < 0.02,
                "{rate}: rms {level}, want {want}"
            );
        }
    }

    #[test]
    fn output_is_aligned_in_time_with_the_input() {
        // A click at 0.5 s must come out at 0.5 s: the start-up delay is removed.
        let rate = 48_000;
        let mut input = vec![0.0f32; rate as usize];
        input[rate as usize / 2] = 1.0;
        let out = resample_all(rate, &input, 480);
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| i)
            .unwrap();
        assert!(
            peak.abs_diff(8_000) <= 2,
            "click at frame {peak}, expected 8000"
        );
    }

    #[test]
    fn how_the_input_is_cut_changes_nothing_in_the_output() {
        // Whole chunks in a push are resampled in place, parts of one wait
        // in a buffer: both ways give the same samples, to the bit.
        for rate in [44_100, 48_000] {
            let input: Vec<f32> = tone(rate, 440.0, 0.7, 0.4)
                .iter()
                .zip(tone(rate, 3_100.0, 0.7, 0.2))
                .map(|(a, b)| a + b)
                .collect();
            let whole = resample_all(rate, &input, input.len());
            for push_size in [1, 7, 480, 1000, 1024, 4096] {
                let out = resample_all(rate, &input, push_size);
                assert!(
                    out.len() == whole.len()
                        && out
                            .iter()
                            .zip(&whole)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{rate} Hz in pushes of {push_size}: the output differs"
                );
            }
        }
    }

    #[test]
    fn the_fft_resampler_holds_back_no_more_than_its_smallest_block() {
        // 10 ms at 44.1 kHz; 22.05 kHz's smallest block is 20 ms.
        assert_eq!(fft_chunk_frames(44_100), 441);
        assert_eq!(fft_chunk_frames(22_050), 441);
        assert_eq!(fft_chunk_frames(24_000), 240);
        assert_eq!(fft_chunk_frames(8_000), 80);
        // 10 ms of 44.1 kHz in, its 16 kHz out at once (less the filter's
        // start-up delay, trimmed from the first chunk only).
        let mut r = Resampler::new(44_100);
        let mut out = 0;
        for _ in 0..3 {
            r.push(&tone(44_100, 440.0, 0.01, 0.3), &mut |b| out += b.len());
        }
        let delay = 80;
        assert!(out >= 3 * 160 - delay, "{out} frames out of 30 ms");
    }

    #[test]
    fn sixteen_khz_passes_through_unchanged() {
        let input = tone(16_000, 440.0, 0.1, 0.3);
        assert_eq!(resample_all(16_000, &input, 100), input);
    }
}
