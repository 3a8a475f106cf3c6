//! Voice activity per 16 ms frame, with earshot (pure Rust, no allocation per
//! frame), behind an energy gate.
//!
//! The gate: earshot's model is most of the audio path's cost, and while
//! nobody speaks most frames are near silence it would score as no voice.
//! Once [`GATE_HOLD_FRAMES`] frames in a row were both quieter than
//! [`GATE_FLOOR_DBFS`] and scored well below the voiced threshold by the
//! model, the gate closes: quiet frames are no longer scored (the last score
//! stands) but kept, the newest [`GATE_REPLAY_FRAMES`] of them. The first
//! frame above the floor opens it, and the kept frames are replayed into the
//! model before that frame is scored, so the model's context (its 48 ms
//! window, three feature frames and recurrent state) is the one it would have
//! had, as nearly as it can be: earshot's recurrent state never settles to
//! exactly the same values, so after a gap longer than the replay a score
//! may differ a little. Over the shared clips, each after a quiet gap, the
//! gated and ungated VAD give the same speech and noisy-speech utterances,
//! sample for sample, and one non-speech onset one frame apart
//! (`tests/integration/gate.rs` holds this).

/// earshot scores frames of exactly 256 samples at 16 kHz (16 ms).
pub const FRAME_SAMPLES: usize = 256;
/// Milliseconds per VAD frame.
pub const FRAME_MS: u64 = 16;

/// A frame quieter than this (RMS, dB below full scale) is "clearly silent":
/// digital silence, a muted or idle microphone, a quiet room through a
/// microphone at a normal gain. Speech at any usable level is well above it.
pub const GATE_FLOOR_DBFS: f32 = -60.0;
/// The floor as a mean square, what the gate compares.
const GATE_FLOOR_MEAN_SQUARE: f32 = 1e-6; // 10^(-60/10)
/// Quiet, unvoiced frames in a row before the gate closes (128 ms): a short
/// pause between words does not close it.
pub const GATE_HOLD_FRAMES: u32 = 8;
/// Skipped frames kept and replayed into the model when the gate opens
/// (128 ms): more than the model's 48 ms window and three feature frames.
/// Its recurrent state does not settle exactly however long the replay
/// (measured: replays of 8, 32, 48 and 64 frames moved the same one
/// non-speech onset by a frame), so the short one is kept.
pub const GATE_REPLAY_FRAMES: usize = 8;
/// The gate closes only on frames the model scored below this share of the
/// voiced threshold: the model has to be sure there is no voice.
const GATE_CLOSE_SHARE: f32 = 0.5;

/// A voice activity detector for one audio stream.
pub struct Vad {
    detector: Box<earshot::Detector>,
    /// The frame clamped to -1..1 (earshot's contract); reused.
    clamped: [f32; FRAME_SAMPLES],
    gate: Gate,
}

/// The energy gate's state (see the module header).
struct Gate {
    /// A model score below this may count towards closing (0: never closes).
    close_below: f32,
    /// Quiet frames in a row that the model scored below `close_below`.
    quiet_run: u32,
    /// Closed: quiet frames are kept, not scored.
    closed: bool,
    /// The model's last score, which stands while the gate is closed.
    last_score: f32,
    /// The newest skipped frames, a ring indexed by `skipped % len`;
    /// allocated once.
    kept: Box<[[f32; FRAME_SAMPLES]; GATE_REPLAY_FRAMES]>,
    /// Frames skipped since the gate closed.
    skipped: usize,
    /// Frames skipped since the stream began.
    skipped_total: u64,
}

impl Gate {
    fn new(close_below: f32) -> Self {
        Self {
            close_below,
            quiet_run: 0,
            closed: false,
            last_score: 0.0,
            kept: Box::new([[0.0; FRAME_SAMPLES]; GATE_REPLAY_FRAMES]),
            skipped: 0,
            skipped_total: 0,
        }
    }
}

impl Vad {
    /// A detector whose gate closes only on frames the model scored well
    /// below `voiced_threshold` (the segmenter's).
    pub fn new(voiced_threshold: f32) -> Self {
        Self::with_gate(voiced_threshold * GATE_CLOSE_SHARE)
    }

    /// A detector that scores every frame: the gate's reference.
    pub fn ungated() -> Self {
        Self::with_gate(0.0)
    }

    fn with_gate(close_below: f32) -> Self {
        let mut detector = earshot::Detector::default_boxed();
        // realfft's transform (earshot's own is ~2.5× slower), planned here
        // where rubato's planner is already built in (vendor/README.md).
        detector.use_fft(earshot::realfft::RealFftPlanner::<f32>::new().plan_fft_forward(1024));
        Self {
            detector,
            clamped: [0.0; FRAME_SAMPLES],
            gate: Gate::new(close_below),
        }
    }

    /// Speech probability of one 256-sample frame, in 0..1.
    pub fn score(&mut self, frame: &[f32; FRAME_SAMPLES]) -> f32 {
        let quiet = mean_square(frame) < GATE_FLOOR_MEAN_SQUARE;
        let gate = &mut self.gate;
        if gate.closed {
            if quiet {
                gate.kept[gate.skipped % GATE_REPLAY_FRAMES] = *frame;
                gate.skipped += 1;
                gate.skipped_total += 1;
                return gate.last_score;
            }
            // Sound: the model hears the newest kept frames, oldest first,
            // and then this one, as if it had never stopped listening.
            gate.closed = false;
            let n_kept = gate.skipped.min(GATE_REPLAY_FRAMES);
            for k in gate.skipped - n_kept..gate.skipped {
                let kept = &gate.kept[k % GATE_REPLAY_FRAMES];
                predict(&mut self.detector, &mut self.clamped, kept);
            }
        }
        let score = predict(&mut self.detector, &mut self.clamped, frame);
        let gate = &mut self.gate;
        gate.quiet_run = if quiet && score < gate.close_below {
            gate.quiet_run + 1
        } else {
            0
        };
        if gate.quiet_run >= GATE_HOLD_FRAMES {
            gate.closed = true;
            gate.skipped = 0;
            gate.last_score = score;
        }
        score
    }

    /// Frames the gate kept from the model since the stream began.
    pub fn frames_skipped(&self) -> u64 {
        self.gate.skipped_total
    }

    /// Forgets the past: for a new stream.
    pub fn reset(&mut self) {
        self.detector.reset();
        let gate = &mut self.gate;
        (gate.quiet_run, gate.closed, gate.last_score) = (0, false, 0.0);
        (gate.skipped, gate.skipped_total) = (0, 0);
    }
}

/// The model's score of `frame`, clamped to -1..1 into `clamped` first.
fn predict(
    detector: &mut earshot::Detector,
    clamped: &mut [f32; FRAME_SAMPLES],
    frame: &[f32; FRAME_SAMPLES],
) -> f32 {
    for (c, s) in clamped.iter_mut().zip(frame) {
        *c = s.clamp(-1.0, 1.0);
    }
    detector.predict_f32(clamped)
}

/// In eight running sums, which the compiler keeps in one vector register (a
/// single sum is a chain of 256 dependent additions).
fn mean_square(frame: &[f32; FRAME_SAMPLES]) -> f32 {
    let mut lanes = [0.0f32; 8];
    for chunk in frame.chunks_exact(8) {
        for (lane, s) in lanes.iter_mut().zip(chunk) {
            *lane += s * s;
        }
    }
    lanes.iter().sum::<f32>() / FRAME_SAMPLES as f32
}

/// Cuts a stream of 16 kHz samples into 256-sample frames.
pub struct Framer {
    frame: [f32; FRAME_SAMPLES],
    filled: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Self {
            frame: [0.0; FRAME_SAMPLES],
            filled: 0,
        }
    }
}

impl Framer {
    /// Calls `on_frame` for every complete frame; keeps the remainder.
    pub fn push(&mut self, mut samples: &[f32], on_frame: &mut impl FnMut(&[f32; FRAME_SAMPLES])) {
        while !samples.is_empty() {
            let take = (FRAME_SAMPLES - self.filled).min(samples.len());
            self.frame[self.filled..self.filled + take].copy_from_slice(&samples[..take]);
            self.filled += take;
            samples = &samples[take..];
            if self.filled == FRAME_SAMPLES {
                on_frame(&self.frame);
                self.filled = 0;
            }
        }
    }

    /// Pads the last partial frame with silence and emits it; leaves nothing behind.
    pub fn finish(&mut self, on_frame: &mut impl FnMut(&[f32; FRAME_SAMPLES])) {
        if self.filled > 0 {
            self.frame[self.filled..].fill(0.0);
            on_frame(&self.frame);
            self.filled = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_emits_whole_frames_and_pads_the_tail() {
        let mut framer = Framer::default();
        let mut frames = Vec::new();
        let samples: Vec<f32> = (0..600).map(|i| i as f32).collect();
        for chunk in samples.chunks(77) {
            framer.push(chunk, &mut |f| frames.push(*f));
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1][0], 256.0);
        framer.finish(&mut |f| frames.push(*f));
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2][600 - 512 - 1], 599.0);
        assert_eq!(frames[2][600 - 512], 0.0);
        framer.finish(&mut |f| frames.push(*f));
        assert_eq!(frames.len(), 3, "finish twice emits nothing more");
    }

    #[test]
    fn silence_scores_low() {
        let mut vad = Vad::ungated();
        let silent = [0.0f32; FRAME_SAMPLES];
        let max = (0..50).map(|_| vad.score(&silent)).fold(0.0f32, f32::max);
        assert!(max < 0.5, "silence scored {max}");
        assert_eq!(vad.frames_skipped(), 0, "the reference scores every frame");
    }

    /// A frame of a 200 Hz tone at `dbfs` RMS, continuing from `frame_index`.
    fn tone(dbfs: f32, frame_index: usize) -> [f32; FRAME_SAMPLES] {
        let amplitude = 10f32.powf(dbfs / 20.0) * std::f32::consts::SQRT_2;
        std::array::from_fn(|i| {
            let t = (frame_index * FRAME_SAMPLES + i) as f32 / 16_000.0;
            amplitude * (2.0 * std::f32::consts::PI * 200.0 * t).sin()
        })
    }

    #[test]
    fn the_gate_closes_after_quiet_frames_and_opens_on_sound() {
        let mut vad = Vad::new(0.5);
        let quiet = tone(-70.0, 0);
        for _ in 0..GATE_HOLD_FRAMES {
            vad.score(&quiet);
        }
        assert_eq!(vad.frames_skipped(), 0, "the hold frames are scored");
        for _ in 0..100 {
            vad.score(&quiet);
        }
        // The model's first scores after a reset may be too high to count.
        let skipped = vad.frames_skipped();
        assert!(
            (90..=100).contains(&skipped),
            "then quiet frames are not: {skipped}"
        );
        vad.score(&tone(-20.0, 0));
        vad.score(&quiet);
        assert_eq!(vad.frames_skipped(), skipped, "sound opens the gate");
        vad.reset();
        assert_eq!(vad.frames_skipped(), 0);
    }

    #[test]
    fn the_gate_stays_open_above_the_floor() {
        let mut vad = Vad::new(0.5);
        for i in 0..200 {
            vad.score(&tone(GATE_FLOOR_DBFS + 3.0, i));
        }
        assert_eq!(vad.frames_skipped(), 0);
    }
}
