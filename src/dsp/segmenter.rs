//! Turns per-frame VAD scores into utterances: onset after `min_speech`, a
//! pre-roll of audio before it, end after `silence` of non-speech, a hard cut at
//! `max_utterance`. Pure logic on 16 ms frames; the dsp thread drives it.

use std::collections::VecDeque;

use super::vad::{FRAME_MS, FRAME_SAMPLES};
use crate::endpoint::{Completeness, EndHint, EndOfSpeech, EndRule};
pub use crate::pipeline::Utterance;

/// Segmenter settings, in milliseconds as the CLI gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmenterSettings {
    /// A frame with a VAD score at or above this is voiced.
    pub vad_threshold: f32,
    /// Voiced audio needed before an utterance opens.
    pub min_speech_ms: u64,
    /// Audio kept before the first voiced frame (feeds the model only).
    pub pre_roll_ms: u64,
    /// Non-speech that closes an utterance.
    pub silence_ms: u64,
    /// Whether the speculative decode's verdict changes the silence.
    pub end_of_speech: EndOfSpeech,
    /// With [`EndOfSpeech::Adaptive`]: the silence after a complete sentence…
    pub min_silence_ms: u64,
    /// …and after a clearly unfinished one.
    pub max_silence_ms: u64,
    /// Longest utterance, from its first voiced frame; longer speech is cut.
    pub max_utterance_ms: u64,
}

/// Unvoiced frames tolerated inside an onset before it is forgotten: speech has
/// short dips in its VAD score that must not restart the count, a click does not
/// add up to an onset.
const ONSET_GAP_FRAMES: u32 = 3;

/// Audio kept after the last voiced frame: word endings (fricatives, stops) often
/// score below the threshold, and the model needs them. The decode made during
/// the silence starts once this tail is complete, so the tail delays every
/// speculative verdict and, on a busy machine, every transcript. Measured with
/// tiny.en on the shared speech and noisy clips: 64 ms gives the words of
/// 160 ms (3.46 % / 8.75 % WER); 32 ms loses the end of a last word
/// ("delightful" → "the like that").
const POST_ROLL_MS: u64 = 64;

/// earshot scores a frame with 48 ms of audio before it and three frames of
/// context, so its score rises about one frame after the voice starts and falls
/// about four frames after it stops (measured on espeak-ng speech against the
/// waveform). Boundaries are moved back by these lags.
const ONSET_LAG_FRAMES: u64 = 1;
/// Frames of history kept beyond the pre-roll and the onset itself, so the
/// onset-lag correction never reaches past the start of what is kept.
const HISTORY_SLACK_FRAMES: u64 = 2;
const RELEASE_LAG_FRAMES: u64 = 4;
/// `--partials`: the first interim snapshot comes this soon after the open
/// (the open already has `--min-speech-ms` of speech), so the first words
/// show early; later ones follow the partial interval.
const FIRST_PARTIAL_MS: u64 = 250;

/// What the segmenter tells its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Started {
        id: u64,
        start_ms: u64,
    },
    /// The voice stopped long enough ago that the utterance's audio, tail
    /// included, is complete: if the silence holds, [`Segment::Ended`] will carry
    /// exactly these samples. A decode can start now, during the silence.
    Tentative(Utterance),
    /// Speech came back after a [`Segment::Tentative`]: that audio is stale.
    Resumed {
        id: u64,
    },
    Ended(Utterance),
    /// Speech began again within `--silence-ms` of an utterance the adaptive
    /// rule closed early: the fixed rule would have kept it open.
    EarlyCloseResumed {
        id: u64,
    },
    /// `--partials`: the open utterance's audio so far, for an interim
    /// decode (at most one per partial interval, only while it is voiced).
    Partial(Utterance),
}

struct Onset {
    first_voiced: u64,
    voiced: u32,
    gap: u32,
}

struct Open {
    id: u64,
    start_ms: u64,
    last_voiced: u64,
    /// Frame index of `samples[0]`.
    audio_start_frame: u64,
    silence_run: u32,
    samples: Vec<f32>,
    /// Samples in the last tentative utterance handed out.
    tentative_samples: Option<usize>,
    /// Push-to-talk: opened by a hold.
    held: bool,
    /// The frame of the last partial handed out (the open frame at first).
    last_partial: u64,
    /// Partials handed out.
    partials: u32,
    /// The frame at which the hold was released (the utterance's end).
    released_at: Option<u64>,
}

/// The frames of silence (counted from the VAD's release) each rule needs.
#[derive(Debug, Clone, Copy)]
struct CloseAfter {
    silence: u32,
    complete: u32,
    unfinished: u32,
}

/// The utterance segmenter. Ids start at 1 and increase by one for the daemon's
/// life, across streams.
pub struct Segmenter {
    threshold: f32,
    min_speech_frames: u32,
    pre_roll_frames: u64,
    /// Unvoiced frames after the last voiced one that close an utterance: the
    /// silence is counted from the end of speech, which the VAD reports
    /// [`RELEASE_LAG_FRAMES`] late. Per rule.
    close_after: CloseAfter,
    adaptive: bool,
    /// The whisper thread's verdicts on tentative utterances.
    hint: EndHint,
    /// After an early close: (its id, the frame before which new speech means
    /// the fixed rule would not have closed it).
    early: Option<(u64, u64)>,
    max_frames: u64,
    post_roll_frames: u64,
    /// Capture clock of frame 0 of the current stream.
    origin_ms: u64,
    /// Index of the next frame in the current stream.
    frame_index: u64,
    /// The most recent frames' audio (pre-roll + onset); fixed capacity.
    history: VecDeque<f32>,
    history_frames: usize,
    onset: Option<Onset>,
    open: Option<Open>,
    /// After a cut at max length, the next voiced frame opens at once.
    continuation: bool,
    /// Push-to-talk: a client holds an utterance open; the VAD only marks
    /// where the voice is (the trailing silence is trimmed).
    held: bool,
    /// The held utterance was cut at max length: nothing opens until the
    /// hold is released.
    hold_spent: bool,
    /// `--partials`: frames between two partials (0: none).
    partial_frames: u64,
    next_id: u64,
}

fn frames(ms: u64) -> u64 {
    ms.div_ceil(FRAME_MS)
}

impl Segmenter {
    pub fn new(settings: SegmenterSettings) -> Self {
        let min_speech_frames = frames(settings.min_speech_ms).max(1) as u32;
        let pre_roll_frames = frames(settings.pre_roll_ms);
        let post_roll_frames = frames(POST_ROLL_MS).min(frames(settings.silence_ms));
        let history_frames = (pre_roll_frames
            + u64::from(min_speech_frames)
            + u64::from(ONSET_GAP_FRAMES)
            + HISTORY_SLACK_FRAMES) as usize;
        let close_after = |ms: u64| {
            frames(ms)
                .saturating_sub(RELEASE_LAG_FRAMES)
                .max(post_roll_frames)
                .max(1) as u32
        };
        Self {
            threshold: settings.vad_threshold,
            min_speech_frames,
            pre_roll_frames,
            close_after: CloseAfter {
                silence: close_after(settings.silence_ms),
                complete: close_after(settings.min_silence_ms.min(settings.silence_ms)),
                unfinished: close_after(settings.max_silence_ms.max(settings.silence_ms)),
            },
            adaptive: settings.end_of_speech == EndOfSpeech::Adaptive,
            hint: EndHint::default(),
            early: None,
            max_frames: frames(settings.max_utterance_ms).max(1),
            post_roll_frames,
            origin_ms: 0,
            frame_index: 0,
            history: VecDeque::with_capacity(history_frames * FRAME_SAMPLES),
            history_frames,
            onset: None,
            open: None,
            continuation: false,
            held: false,
            hold_spent: false,
            partial_frames: 0,
            next_id: 1,
        }
    }

    /// Takes the whisper thread's verdicts from `hint` (adaptive end of speech).
    pub fn with_hint(mut self, hint: EndHint) -> Self {
        self.hint = hint;
        self
    }

    /// The silence `open` needs before it closes, and the rule that says so.
    fn close_rule(&self, open: &Open) -> (u32, EndRule) {
        let verdict = match open.tentative_samples {
            Some(samples) if self.adaptive => self.hint.verdict(open.id, samples),
            _ => None,
        };
        match verdict {
            Some(Completeness::Complete) => (self.close_after.complete, EndRule::Complete),
            Some(Completeness::Unfinished) => (self.close_after.unfinished, EndRule::Unfinished),
            _ => (self.close_after.silence, EndRule::Silence),
        }
    }

    /// Push-to-talk: while `held`, one utterance is open from the next frame
    /// on, whatever the VAD says; it closes at a release seen with an
    /// utterance open (after the usual silence), at the end of the stream,
    /// or at max length (then nothing opens until the hold is released).
    pub fn set_hold(&mut self, held: bool) {
        if !held {
            self.hold_spent = false;
            let at = self.frame_index;
            if let Some(open) = self.open.as_mut().filter(|o| o.held) {
                open.released_at.get_or_insert(at);
            }
        }
        self.held = held;
    }

    /// `--partials`: hand out the open utterance's audio every `ms` of it
    /// while it is voiced (0: never).
    pub fn set_partial_interval_ms(&mut self, ms: u64) {
        self.partial_frames = frames(ms);
    }

    /// A partial of the open utterance, if one is due at frame `index`.
    fn maybe_partial(&mut self, index: u64, out: &mut impl FnMut(Segment)) {
        let interval = self.partial_frames;
        let time_ms = self.time_ms(index + 1);
        let Some(open) = self.open.as_mut() else {
            return;
        };
        let due = if open.partials == 0 {
            interval.min(frames(FIRST_PARTIAL_MS))
        } else {
            interval
        };
        if interval == 0 || open.silence_run > 0 || index < open.last_partial + due {
            return;
        }
        open.last_partial = index;
        open.partials += 1;
        out(Segment::Partial(Utterance {
            id: open.id,
            samples: open.samples.clone(),
            start_ms: open.start_ms,
            end_ms: time_ms,
            end_rule: EndRule::Silence,
        }));
    }

    /// Starts a new stream whose frame 0 is at `origin_ms` on the capture clock.
    pub fn begin_stream(&mut self, origin_ms: u64) {
        self.origin_ms = origin_ms;
        self.frame_index = 0;
    }

    fn time_ms(&self, frame: u64) -> u64 {
        self.origin_ms + frame * FRAME_MS
    }

    /// Is an utterance open? (What the tests check the segmenter by.)
    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The open utterance, while its last frame was not voiced (its speech
    /// may be ending): an interim decode of it would only compete with the
    /// decode that starts at the tentative close. Never while held.
    pub fn pausing(&self) -> Option<u64> {
        self.open
            .as_ref()
            .filter(|o| o.silence_run > 0 && !self.held)
            .map(|o| o.id)
    }

    /// Nothing open and no onset counting: the last frames were silence.
    pub fn is_quiet(&self) -> bool {
        self.open.is_none() && self.onset.is_none()
    }

    /// Feeds one frame and its VAD score.
    pub fn push(
        &mut self,
        frame: &[f32; FRAME_SAMPLES],
        score: f32,
        out: &mut impl FnMut(Segment),
    ) {
        let index = self.frame_index;
        self.frame_index += 1;
        if self.history.len() + FRAME_SAMPLES > self.history_frames * FRAME_SAMPLES {
            self.history.drain(..FRAME_SAMPLES);
        }
        self.history.extend(frame.iter().copied());
        let voiced = score >= self.threshold;
        if self.held {
            self.push_held(frame, index, voiced, out);
            return;
        }

        let Some(open) = &mut self.open else {
            if voiced {
                let onset = self.onset.get_or_insert(Onset {
                    first_voiced: index,
                    voiced: 0,
                    gap: 0,
                });
                onset.voiced += 1;
                onset.gap = 0;
            } else if let Some(onset) = &mut self.onset {
                onset.gap += 1;
                if onset.gap > ONSET_GAP_FRAMES {
                    self.onset = None;
                }
            }
            let needed = if self.continuation {
                1
            } else {
                self.min_speech_frames
            };
            if self.onset.as_ref().is_some_and(|o| o.voiced >= needed) {
                self.open_utterance(index, out);
            }
            return;
        };

        open.samples.extend_from_slice(frame);
        if voiced {
            if u64::from(open.silence_run) >= self.post_roll_frames {
                out(Segment::Resumed { id: open.id });
                open.tentative_samples = None;
            }
            open.last_voiced = index;
            open.silence_run = 0;
        } else {
            open.silence_run += 1;
        }
        let open = self.open.as_ref().expect("open");
        let (close_after, rule) = self.close_rule(open);
        let open = self.open.as_mut().expect("open");
        if open.silence_run >= close_after {
            if rule == EndRule::Complete && close_after < self.close_after.silence {
                let fixed_until = open.last_voiced + 1 + u64::from(self.close_after.silence);
                self.early = Some((open.id, fixed_until));
            }
            self.close(None, rule, out);
        } else if self.origin_ms + (index + 1) * FRAME_MS - open.start_ms
            >= self.max_frames * FRAME_MS
        {
            self.close(Some(index + 1), EndRule::Cut, out);
            self.continuation = voiced;
        } else if !voiced && u64::from(open.silence_run) == self.post_roll_frames {
            // The tail is complete: from here until the close, the samples the
            // utterance will end with are exactly these.
            let (id, start_ms, last_voiced) = (open.id, open.start_ms, open.last_voiced);
            let samples = open.samples.clone();
            open.tentative_samples = Some(samples.len());
            out(Segment::Tentative(Utterance {
                id,
                samples,
                start_ms,
                end_ms: self.speech_end_ms(start_ms, last_voiced),
                end_rule: EndRule::Silence,
            }));
        }
        self.maybe_partial(index, out);
    }

    /// A frame while a client holds the utterance: opened at the first one,
    /// never closed by silence, cut at max length.
    fn push_held(
        &mut self,
        frame: &[f32; FRAME_SAMPLES],
        index: u64,
        voiced: bool,
        out: &mut impl FnMut(Segment),
    ) {
        if self.hold_spent {
            return;
        }
        let Some(open) = &mut self.open else {
            let id = self.next_id;
            self.next_id += 1;
            let start_ms = self.time_ms(index);
            let capacity = (self.max_frames + self.post_roll_frames + 1) as usize * FRAME_SAMPLES;
            let mut samples = Vec::with_capacity(capacity);
            samples.extend_from_slice(frame);
            self.onset = None;
            self.early = None;
            out(Segment::Started { id, start_ms });
            self.open = Some(Open {
                id,
                start_ms,
                last_voiced: index,
                audio_start_frame: index,
                silence_run: 0,
                samples,
                tentative_samples: None,
                held: true,
                last_partial: index,
                partials: 0,
                released_at: None,
            });
            return;
        };
        open.samples.extend_from_slice(frame);
        if voiced {
            open.last_voiced = index;
        }
        // The silence is not counted: only a release ends a held utterance.
        open.silence_run = 0;
        open.tentative_samples = None;
        if self.origin_ms + (index + 1) * FRAME_MS - open.start_ms >= self.max_frames * FRAME_MS {
            open.last_voiced = index;
            self.close(Some(index + 1), EndRule::Cut, out);
            self.hold_spent = true;
        }
        self.maybe_partial(index, out);
    }

    /// Capture clock of the end of speech whose last voiced frame is `last_voiced`.
    fn speech_end_ms(&self, start_ms: u64, last_voiced: u64) -> u64 {
        self.time_ms((last_voiced + 1).saturating_sub(RELEASE_LAG_FRAMES))
            .max(start_ms + FRAME_MS)
    }

    fn open_utterance(&mut self, index: u64, out: &mut impl FnMut(Segment)) {
        let onset = self.onset.take().expect("called with an onset");
        let history_first = index + 1 - (self.history.len() / FRAME_SAMPLES) as u64;
        // A continuation after a cut gets no pre-roll: that audio is already the
        // end of the previous utterance, and the model would hear it twice.
        let pre_roll = if self.continuation {
            0
        } else {
            self.pre_roll_frames
        };
        let audio_start_frame = onset
            .first_voiced
            .saturating_sub(pre_roll)
            .max(history_first);
        let skip = ((audio_start_frame - history_first) as usize) * FRAME_SAMPLES;
        let capacity = (self.pre_roll_frames + self.max_frames + self.post_roll_frames + 1)
            as usize
            * FRAME_SAMPLES;
        let mut samples = Vec::with_capacity(capacity);
        samples.extend(self.history.iter().skip(skip).copied());
        let id = self.next_id;
        self.next_id += 1;
        // A continuation starts exactly at the cut; a fresh onset is moved back
        // by the detector's lag.
        let lag = if self.continuation {
            0
        } else {
            ONSET_LAG_FRAMES
        };
        let start_ms = self.time_ms(onset.first_voiced.saturating_sub(lag));
        self.continuation = false;
        if let Some((early_id, fixed_until)) = self.early.take() {
            if onset.first_voiced < fixed_until {
                out(Segment::EarlyCloseResumed { id: early_id });
            }
        }
        out(Segment::Started { id, start_ms });
        self.open = Some(Open {
            id,
            start_ms,
            last_voiced: index,
            audio_start_frame,
            silence_run: 0,
            samples,
            tentative_samples: None,
            held: false,
            last_partial: index,
            partials: 0,
            released_at: None,
        });
    }

    /// Closes the open utterance: at `cut_frame` (a hard cut at max length), or
    /// after its last voiced frame, by `rule`.
    fn close(&mut self, cut_frame: Option<u64>, rule: EndRule, out: &mut impl FnMut(Segment)) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        let speech_end_ms = self.speech_end_ms(open.start_ms, open.last_voiced);
        let (end_ms, rule) = match cut_frame {
            Some(frame) => (self.time_ms(frame), rule),
            // A held utterance ends where the client ended it: its latency
            // counts from there, not from the last voiced frame (the silence
            // before the release is the speaker's, and is trimmed).
            None if open.held => {
                let released = open.released_at.unwrap_or(self.frame_index);
                (self.time_ms(released).max(speech_end_ms), EndRule::Released)
            }
            None => (speech_end_ms, rule),
        };
        let keep_frames = open.last_voiced + 1 + self.post_roll_frames - open.audio_start_frame;
        open.samples.truncate(keep_frames as usize * FRAME_SAMPLES);
        out(Segment::Ended(Utterance {
            id: open.id,
            samples: open.samples,
            start_ms: open.start_ms,
            end_ms,
            end_rule: rule,
        }));
    }

    /// End of the stream: closes an open utterance and forgets the audio, so the
    /// next stream starts from nothing. Ids keep counting.
    pub fn finish(&mut self, out: &mut impl FnMut(Segment)) {
        self.close(None, EndRule::Cut, out);
        self.early = None;
        self.history.clear();
        self.onset = None;
        self.continuation = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: SegmenterSettings = SegmenterSettings {
        vad_threshold: 0.5,
        min_speech_ms: 96,       // 6 frames
        pre_roll_ms: 160,        // 10 frames
        silence_ms: 480,         // 30 frames
        max_utterance_ms: 3_200, // 200 frames
        end_of_speech: EndOfSpeech::Fixed,
        min_silence_ms: 240, // 15 frames
        max_silence_ms: 800, // 50 frames
    };

    /// Runs scores through a segmenter; each frame's samples carry its index so
    /// the audio handed out can be checked frame by frame.
    fn run(seg: &mut Segmenter, scores: &[f32], first_index: usize) -> Vec<Segment> {
        let mut out = Vec::new();
        for (i, score) in scores.iter().enumerate() {
            let frame = [(first_index + i) as f32; FRAME_SAMPLES];
            seg.push(&frame, *score, &mut |s| out.push(s));
        }
        out
    }

    fn scores(pattern: &[(f32, usize)]) -> Vec<f32> {
        pattern
            .iter()
            .flat_map(|(s, n)| std::iter::repeat_n(*s, *n))
            .collect()
    }

    /// Only the opening and closing segments.
    fn closing(out: Vec<Segment>) -> Vec<Segment> {
        out.into_iter()
            .filter(|s| matches!(s, Segment::Started { .. } | Segment::Ended(_)))
            .collect()
    }

    fn frame_ids(u: &Utterance) -> Vec<usize> {
        u.samples
            .chunks(FRAME_SAMPLES)
            .map(|f| f[0] as usize)
            .collect()
    }

    #[test]
    fn onset_pre_roll_and_end_follow_the_voiced_frames() {
        let mut seg = Segmenter::new(SETTINGS);
        seg.begin_stream(1_000_000);
        let s = scores(&[(0.0, 50), (0.9, 40), (0.1, 40)]);
        let out = closing(run(&mut seg, &s, 0));
        assert_eq!(out.len(), 2);
        let start = 1_000_000 + (50 - ONSET_LAG_FRAMES) * 16;
        assert_eq!(
            out[0],
            Segment::Started {
                id: 1,
                start_ms: start
            }
        );
        let Segment::Ended(u) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(u.id, 1);
        assert_eq!(u.start_ms, start);
        assert_eq!(
            u.end_ms,
            1_000_000 + (90 - RELEASE_LAG_FRAMES) * 16,
            "end of the last voiced frame"
        );
        let ids = frame_ids(u);
        assert_eq!(ids.first(), Some(&40), "10 frames of pre-roll");
        assert_eq!(
            ids.last(),
            Some(&(89 + frames(POST_ROLL_MS) as usize)),
            "the post-roll after the last voiced frame"
        );
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "contiguous audio");
    }

    #[test]
    fn short_bursts_are_ignored() {
        let mut seg = Segmenter::new(SETTINGS);
        // 5 voiced frames (80 ms) with gaps longer than the tolerance: never an onset.
        let s = scores(&[(0.0, 20), (0.9, 5), (0.0, 10), (0.9, 5), (0.0, 100)]);
        assert!(run(&mut seg, &s, 0).is_empty());
    }

    #[test]
    fn dips_inside_speech_do_not_restart_the_onset() {
        let mut seg = Segmenter::new(SETTINGS);
        let s = scores(&[(0.0, 20), (0.9, 3), (0.2, 2), (0.9, 3), (0.0, 40)]);
        let out = closing(run(&mut seg, &s, 0));
        assert_eq!(
            out[0],
            Segment::Started {
                id: 1,
                start_ms: (20 - ONSET_LAG_FRAMES) * 16
            }
        );
    }

    #[test]
    fn pauses_shorter_than_the_silence_hangover_stay_in_one_utterance() {
        let mut seg = Segmenter::new(SETTINGS);
        // 480 ms of silence counted from the end of speech: 30 frames, of which
        // the VAD's release lag is 4; a pause of 25 unvoiced frames is not enough.
        let s = scores(&[(0.0, 10), (0.9, 20), (0.0, 25), (0.9, 20), (0.0, 40)]);
        let out = closing(run(&mut seg, &s, 0));
        assert_eq!(out.len(), 2, "{out:?}");
        let Segment::Ended(u) = &out[1] else { panic!() };
        assert_eq!(u.end_ms, (10 + 20 + 25 + 20 - RELEASE_LAG_FRAMES) * 16);
    }

    #[test]
    fn silence_is_counted_from_the_end_of_speech() {
        let mut seg = Segmenter::new(SETTINGS);
        let mut closed_at = None;
        let s = scores(&[(0.0, 10), (0.9, 20), (0.0, 60)]);
        for (i, score) in s.iter().enumerate() {
            seg.push(&[0.0; FRAME_SAMPLES], *score, &mut |seg| {
                if let Segment::Ended(u) = seg {
                    closed_at = Some((u.end_ms, (i as u64 + 1) * FRAME_MS));
                }
            });
        }
        let (end_ms, closed_ms) = closed_at.expect("closed");
        assert_eq!(
            closed_ms - end_ms,
            480,
            "closed once 480 ms followed the speech"
        );
    }

    #[test]
    fn a_tentative_utterance_is_exactly_what_ends_if_the_silence_holds() {
        let mut seg = Segmenter::new(SETTINGS);
        let s = scores(&[(0.0, 10), (0.9, 20), (0.0, 60)]);
        let out = run(&mut seg, &s, 0);
        assert_eq!(out.len(), 3, "{out:?}");
        let (Segment::Tentative(t), Segment::Ended(u)) = (&out[1], &out[2]) else {
            panic!("{out:?}")
        };
        assert_eq!(t, u);
    }

    #[test]
    fn speech_after_a_tentative_utterance_resumes_it() {
        let mut seg = Segmenter::new(SETTINGS);
        let s = scores(&[(0.0, 10), (0.9, 20), (0.0, 15), (0.9, 10), (0.0, 60)]);
        let out = run(&mut seg, &s, 0);
        let kinds: Vec<&str> = out
            .iter()
            .map(|s| match s {
                Segment::Started { .. } => "started",
                Segment::Tentative(_) => "tentative",
                Segment::Resumed { .. } => "resumed",
                Segment::Ended(_) => "ended",
                Segment::EarlyCloseResumed { .. } => "early-close-resumed",
                Segment::Partial(_) => "partial",
            })
            .collect();
        assert_eq!(
            kinds,
            ["started", "tentative", "resumed", "tentative", "ended"]
        );
        let (Segment::Tentative(t), Segment::Ended(u)) = (&out[3], &out[4]) else {
            panic!()
        };
        assert_eq!(t, u, "the last tentative audio is the utterance");
    }

    #[test]
    fn a_long_monologue_is_cut_at_max_and_continues_with_a_new_id() {
        let mut seg = Segmenter::new(SETTINGS);
        let s = scores(&[(0.0, 10), (0.9, 450), (0.0, 40)]);
        let out = closing(run(&mut seg, &s, 0));
        let starts: Vec<_> = out
            .iter()
            .filter_map(|s| match s {
                Segment::Started { id, start_ms } => Some((*id, *start_ms)),
                _ => None,
            })
            .collect();
        let ends: Vec<_> = out
            .iter()
            .filter_map(|s| match s {
                Segment::Ended(u) => Some((u.id, u.start_ms, u.end_ms)),
                _ => None,
            })
            .collect();
        let first = 160 - ONSET_LAG_FRAMES * 16;
        assert_eq!(
            starts,
            vec![(1, first), (2, first + 3200), (3, first + 6400)]
        );
        assert_eq!(ends[0], (1, first, first + 3200), "a cut is exact");
        assert_eq!(ends[1], (2, first + 3200, first + 6400));
        assert_eq!(
            ends[2],
            (3, first + 6400, 160 + (450 - RELEASE_LAG_FRAMES) * 16)
        );
        assert!(matches!(out[0], Segment::Started { .. }));
        assert!(matches!(out[1], Segment::Ended(_)));
        assert!(matches!(out[2], Segment::Started { .. }));
    }

    #[test]
    fn a_held_utterance_ignores_the_vad_and_trims_only_its_tail() {
        let mut seg = Segmenter::new(SETTINGS);
        let mut out = Vec::new();
        let push = |seg: &mut Segmenter, score: f32, out: &mut Vec<Segment>| {
            seg.push(&[0.0; FRAME_SAMPLES], score, &mut |s| out.push(s));
        };
        seg.begin_stream(1_000);
        seg.set_hold(true);
        // Opens at the first frame, silent or not.
        push(&mut seg, 0.0, &mut out);
        assert_eq!(
            out,
            vec![Segment::Started {
                id: 1,
                start_ms: 1_000
            }]
        );
        // Speech with a pause far longer than --silence-ms: still one utterance.
        for _ in 0..20 {
            push(&mut seg, 0.9, &mut out);
        }
        for _ in 0..60 {
            push(&mut seg, 0.0, &mut out);
        }
        for _ in 0..20 {
            push(&mut seg, 0.9, &mut out);
        }
        for _ in 0..40 {
            push(&mut seg, 0.0, &mut out);
        }
        assert_eq!(out.len(), 1, "no close, no tentative while held: {out:?}");
        // Released at frame 141; what the ring still holds comes after it.
        seg.set_hold(false);
        for _ in 0..5 {
            push(&mut seg, 0.0, &mut out);
        }
        seg.finish(&mut |s| out.push(s));
        let Some(Segment::Ended(u)) = out.last() else {
            panic!("{out:?}")
        };
        // Frames 0..=100 voiced at the end; the 40 silent frames after them
        // are trimmed to the post-roll.
        assert_eq!(
            u.samples.len(),
            (101 + frames(POST_ROLL_MS) as usize) * FRAME_SAMPLES
        );
        assert_eq!(u.start_ms, 1_000);
        // It ends at the release: its latency counts from there.
        assert_eq!(u.end_ms, 1_000 + 141 * FRAME_MS);
        assert_eq!(u.end_rule, EndRule::Released);
    }

    #[test]
    fn a_held_utterance_is_cut_at_max_length_and_nothing_reopens_until_release() {
        let mut seg = Segmenter::new(SETTINGS);
        let mut out = Vec::new();
        seg.begin_stream(0);
        seg.set_hold(true);
        for _ in 0..300 {
            seg.push(&[0.0; FRAME_SAMPLES], 0.9, &mut |s| out.push(s));
        }
        let ends = out
            .iter()
            .filter(|s| matches!(s, Segment::Ended(_)))
            .count();
        let starts = out
            .iter()
            .filter(|s| matches!(s, Segment::Started { .. }))
            .count();
        assert_eq!((starts, ends), (1, 1), "{out:?}");
        // Released, the VAD rules again.
        seg.set_hold(false);
        for _ in 0..10 {
            seg.push(&[0.0; FRAME_SAMPLES], 0.9, &mut |s| out.push(s));
        }
        assert!(seg.is_open(), "speech after the release opens as usual");
    }

    #[test]
    fn the_first_partial_comes_soon_after_the_open() {
        let mut seg = Segmenter::new(SETTINGS);
        seg.set_partial_interval_ms(500); // 32 frames
        let mut out = Vec::new();
        for _ in 0..60 {
            seg.push(&[0.0; FRAME_SAMPLES], 0.9, &mut |s| out.push(s));
        }
        // Opens at frame 5; the first partial 16 frames (250 ms) later, the
        // next one the interval after that.
        let at: Vec<u64> = out
            .iter()
            .filter_map(|s| match s {
                Segment::Partial(u) => Some(u.end_ms / FRAME_MS - 1),
                _ => None,
            })
            .collect();
        assert_eq!(at, [21, 53]);
    }

    #[test]
    fn partials_come_at_their_interval_while_voiced_only() {
        let mut seg = Segmenter::new(SETTINGS);
        seg.set_partial_interval_ms(160); // 10 frames
        let mut out = Vec::new();
        seg.begin_stream(0);
        let push = |seg: &mut Segmenter, score: f32, out: &mut Vec<Segment>| {
            seg.push(&[0.0; FRAME_SAMPLES], score, &mut |s| out.push(s));
        };
        for _ in 0..46 {
            push(&mut seg, 0.9, &mut out);
        }
        // Opens at frame 5 (6 voiced); partials at frames 15, 25, 35, 45.
        let partials: Vec<&Utterance> = out
            .iter()
            .filter_map(|s| match s {
                Segment::Partial(u) => Some(u),
                _ => None,
            })
            .collect();
        assert_eq!(partials.len(), 4, "{out:?}");
        assert!(partials
            .windows(2)
            .all(|w| w[1].samples.len() > w[0].samples.len()));
        assert_eq!(partials[0].end_ms, 16 * FRAME_MS);
        // None during the silence after the speech.
        let before = out.len();
        for _ in 0..25 {
            push(&mut seg, 0.0, &mut out);
        }
        assert!(
            !out[before..]
                .iter()
                .any(|s| matches!(s, Segment::Partial(_))),
            "{out:?}"
        );
        // Off: none at all.
        let mut seg = Segmenter::new(SETTINGS);
        let mut out = Vec::new();
        for _ in 0..100 {
            push(&mut seg, 0.9, &mut out);
        }
        assert!(!out.iter().any(|s| matches!(s, Segment::Partial(_))));
    }

    #[test]
    fn finish_closes_an_open_utterance() {
        let mut seg = Segmenter::new(SETTINGS);
        let mut out = closing(run(&mut seg, &scores(&[(0.0, 5), (0.9, 20)]), 0));
        assert!(seg.is_open());
        seg.finish(&mut |s| out.push(s));
        assert!(!seg.is_open());
        let Segment::Ended(u) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (u.start_ms, u.end_ms),
            ((5 - ONSET_LAG_FRAMES) * 16, (25 - RELEASE_LAG_FRAMES) * 16)
        );
    }

    #[test]
    fn reset_between_streams_leaves_no_audio_behind() {
        let mut seg = Segmenter::new(SETTINGS);
        // Stream 1 ends in the middle of an onset.
        run(&mut seg, &scores(&[(0.0, 20), (0.9, 4)]), 1000);
        seg.finish(&mut |_| panic!("no utterance was open"));
        seg.begin_stream(50_000);
        let out = closing(run(&mut seg, &scores(&[(0.9, 10), (0.0, 40)]), 0));
        assert_eq!(
            out[0],
            Segment::Started {
                id: 1,
                start_ms: 50_000
            }
        );
        let Segment::Ended(u) = &out[1] else { panic!() };
        assert!(
            frame_ids(u).iter().all(|&i| i < 1000),
            "audio from the old stream leaked in"
        );
    }

    #[test]
    fn ids_keep_counting_across_streams() {
        let mut seg = Segmenter::new(SETTINGS);
        run(&mut seg, &scores(&[(0.9, 10), (0.0, 40)]), 0);
        seg.finish(&mut |_| {});
        seg.begin_stream(0);
        let out = closing(run(&mut seg, &scores(&[(0.9, 10), (0.0, 40)]), 0));
        assert_eq!(out[0], Segment::Started { id: 2, start_ms: 0 });
    }

    /// Adaptive settings: close after 15 frames of silence when complete
    /// (240 ms), 30 frames usually (480 ms), 50 when unfinished (800 ms).
    fn adaptive() -> (Segmenter, EndHint) {
        let hint = EndHint::default();
        let settings = SegmenterSettings {
            end_of_speech: EndOfSpeech::Adaptive,
            ..SETTINGS
        };
        (Segmenter::new(settings).with_hint(hint.clone()), hint)
    }

    /// Feeds speech then silence frame by frame; when the tentative utterance
    /// comes out, the "whisper thread" answers with `verdict` (if any). Returns
    /// the frames of silence fed when the utterance ended, and the events.
    fn close_after(
        seg: &mut Segmenter,
        hint: &EndHint,
        verdict: Option<Completeness>,
    ) -> (usize, Vec<Segment>) {
        let mut out = Vec::new();
        let speech = scores(&[(0.0, 10), (0.9, 20)]);
        for (i, score) in speech.iter().enumerate() {
            seg.push(&[i as f32; FRAME_SAMPLES], *score, &mut |s| out.push(s));
        }
        for silent in 1..=100 {
            let mut ended = false;
            seg.push(&[0.0; FRAME_SAMPLES], 0.0, &mut |s| {
                if let (Segment::Tentative(t), Some(v)) = (&s, verdict) {
                    hint.post(t.id, t.samples.len(), v);
                }
                ended |= matches!(s, Segment::Ended(_));
                out.push(s);
            });
            if ended {
                return (silent, out);
            }
        }
        panic!("never closed: {out:?}");
    }

    fn rule_of(out: &[Segment]) -> EndRule {
        match out.last() {
            Some(Segment::Ended(u)) => u.end_rule,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn adaptive_closes_sooner_when_complete_and_later_when_unfinished() {
        let (mut seg, hint) = adaptive();
        let (silence, out) = close_after(&mut seg, &hint, Some(Completeness::Complete));
        // The VAD releases 4 frames late: 15 - 4 frames after the last
        // voiced one, but never before the tail is complete.
        assert_eq!(silence, 11, "{out:?}");
        assert_eq!(rule_of(&out), EndRule::Complete);
        let (silence, out) = close_after(&mut seg, &hint, Some(Completeness::Unfinished));
        assert_eq!(silence, 46);
        assert_eq!(rule_of(&out), EndRule::Unfinished);
        let (silence, out) = close_after(&mut seg, &hint, Some(Completeness::Unsure));
        assert_eq!(silence, 26);
        assert_eq!(rule_of(&out), EndRule::Silence);
        let (silence, out) = close_after(&mut seg, &hint, None);
        assert_eq!(silence, 26, "no verdict yet: the usual silence");
        assert_eq!(rule_of(&out), EndRule::Silence);
    }

    #[test]
    fn fixed_ignores_the_verdict() {
        let hint = EndHint::default();
        let mut seg = Segmenter::new(SETTINGS).with_hint(hint.clone());
        for verdict in [Completeness::Complete, Completeness::Unfinished] {
            let (silence, out) = close_after(&mut seg, &hint, Some(verdict));
            assert_eq!(silence, 26);
            assert_eq!(rule_of(&out), EndRule::Silence);
        }
    }

    #[test]
    fn a_verdict_on_audio_that_grew_since_does_not_apply() {
        let (mut seg, hint) = adaptive();
        let mut out = Vec::new();
        // Speech, a tentative utterance, and speech again before any verdict.
        let first = scores(&[(0.0, 10), (0.9, 20), (0.0, 12), (0.9, 5)]);
        for score in &first {
            seg.push(&[0.0; FRAME_SAMPLES], *score, &mut |s| out.push(s));
        }
        let Some(Segment::Tentative(stale)) =
            out.iter().find(|s| matches!(s, Segment::Tentative(_)))
        else {
            panic!("{out:?}")
        };
        assert!(out.iter().any(|s| matches!(s, Segment::Resumed { .. })));
        // The verdict on the shorter audio arrives late: it must not close
        // the grown utterance early.
        hint.post(stale.id, stale.samples.len(), Completeness::Complete);
        let mut silent = 0;
        let mut ended = None;
        while ended.is_none() {
            silent += 1;
            seg.push(&[0.0; FRAME_SAMPLES], 0.0, &mut |s| {
                if let Segment::Ended(u) = s {
                    ended = Some(u);
                }
            });
        }
        assert_eq!(silent, 26);
        assert_eq!(ended.unwrap().end_rule, EndRule::Silence);
    }

    #[test]
    fn speech_soon_after_an_early_close_is_reported() {
        let (mut seg, hint) = adaptive();
        let (_, _) = close_after(&mut seg, &hint, Some(Completeness::Complete));
        // 12 frames after the close, within the 26 the fixed rule needed.
        let mut out = Vec::new();
        for score in scores(&[(0.0, 5), (0.9, 10)]) {
            seg.push(&[0.0; FRAME_SAMPLES], score, &mut |s| out.push(s));
        }
        assert!(
            out.iter()
                .any(|s| matches!(s, Segment::EarlyCloseResumed { id: 1 })),
            "{out:?}"
        );
        // After a long pause, nothing is reported.
        let (mut seg, hint) = adaptive();
        close_after(&mut seg, &hint, Some(Completeness::Complete));
        let mut out = Vec::new();
        for score in scores(&[(0.0, 40), (0.9, 10)]) {
            seg.push(&[0.0; FRAME_SAMPLES], score, &mut |s| out.push(s));
        }
        assert!(
            !out.iter()
                .any(|s| matches!(s, Segment::EarlyCloseResumed { .. })),
            "{out:?}"
        );
    }
}
