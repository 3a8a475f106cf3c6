//! Voice activity per 16 ms frame, with earshot (pure Rust, no allocation per frame).

/// earshot scores frames of exactly 256 samples at 16 kHz (16 ms).
pub const FRAME_SAMPLES: usize = 256;
/// Milliseconds per VAD frame.
pub const FRAME_MS: u64 = 16;

/// A voice activity detector for one audio stream.
pub struct Vad {
    detector: Box<earshot::Detector>,
    /// The frame clamped to -1..1 (earshot's contract); reused.
    clamped: [f32; FRAME_SAMPLES],
}

impl Default for Vad {
    fn default() -> Self {
        Self::new()
    }
}

impl Vad {
    pub fn new() -> Self {
        Self {
            detector: earshot::Detector::default_boxed(),
            clamped: [0.0; FRAME_SAMPLES],
        }
    }

    /// Speech probability of one 256-sample frame, in 0..1.
    pub fn score(&mut self, frame: &[f32; FRAME_SAMPLES]) -> f32 {
        for (c, s) in self.clamped.iter_mut().zip(frame) {
            *c = s.clamp(-1.0, 1.0);
        }
        self.detector.predict_f32(&self.clamped)
    }

    /// Forgets the past: for a new stream.
    pub fn reset(&mut self) {
        self.detector.reset();
    }
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
        let mut vad = Vad::new();
        let silent = [0.0f32; FRAME_SAMPLES];
        let max = (0..50).map(|_| vad.score(&silent)).fold(0.0f32, f32::max);
        assert!(max < 0.5, "silence scored {max}");
    }
}
