//! The "whisper" thread: one whisper.cpp context and state, loaded once and
//! reused for every utterance, with a deadline check before each decode and an
//! abort callback during it.

use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::Receiver;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::audio::now_ms;
use crate::dsp::resample::TARGET_RATE;
use crate::dsp::segmenter::Utterance;
use crate::event::{send_blocking, DropReason, Event, EventSender, Transcript};
use crate::model::ggml::{check_language, check_model, Hparams, ModelError};

/// Encoder frames per second of audio: whisper.cpp's 1500 frames span 30 s.
const ENCODER_FRAMES_PER_SECOND: f64 = 50.0;
/// The full window.
pub const FULL_AUDIO_CTX: i32 = 1500;
/// Smallest `audio_ctx` used. Measured on the shared speech and noisy clips with
/// tiny.en: 384 keeps the full window's WER; 256 made short clips loop on
/// repeated text.
pub const AUDIO_CTX_FLOOR: i32 = 384;
/// `audio_ctx` is rounded up to a multiple of this (the encoder works in blocks).
const AUDIO_CTX_STEP: i32 = 64;
/// Whisper's rule for silence: a segment whose no-speech probability is above
/// this *and* whose average log-probability is below [`LOGPROB_SILENT`] heard no words.
const NO_SPEECH_PROB: f32 = 0.6;
const LOGPROB_SILENT: f32 = -1.0;
/// Any decode this unsure is taken as no speech, whatever the no-speech token says.
const LOGPROB_FLOOR: f32 = -1.6;
/// Whisper's stock phrases on music and noise ("Thank you.") are believed only
/// when the model was sure of them; spoken, they decode well above this.
const LOGPROB_HALLUCINATION: f32 = -0.6;
/// What Whisper writes on non-speech, learnt from subtitled videos.
const STOCK_PHRASES: [&str; 9] = [
    "thank you",
    "thanks for watching",
    "thank you for watching",
    "thank you so much for watching",
    "please subscribe",
    "bye",
    "you",
    "so",
    "okay",
];
/// Text tokens allowed per second of audio (speech runs at 3–5): a decode that
/// writes more is looping on repeated text and is cut.
const MAX_TOKENS_PER_SECOND: f64 = 8.0;
/// Milliseconds kept between the end of a decode and the deadline, for
/// publishing the signal.
const PUBLISH_MARGIN_MS: u64 = 20;

/// `audio_ctx` for `n_samples` of 16 kHz audio: its length in encoder frames,
/// rounded up to a block, at least `floor`, at most the full window.
pub fn audio_ctx_for(n_samples: usize, floor: i32) -> i32 {
    let seconds = n_samples as f64 / f64::from(TARGET_RATE);
    let frames = (seconds * ENCODER_FRAMES_PER_SECOND).ceil() as i32;
    let rounded = (frames + AUDIO_CTX_STEP - 1) / AUDIO_CTX_STEP * AUDIO_CTX_STEP;
    rounded.clamp(floor.min(FULL_AUDIO_CTX), FULL_AUDIO_CTX)
}

/// What the model made of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// Words, with a confidence in 0..1.
    Text { text: String, confidence: f64 },
    /// No words (silence, noise, music, a tag like `[BLANK_AUDIO]`); the reason is for logs.
    NoSpeech { why: String },
}

/// Why a decode gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("aborted at the deadline")]
    Aborted,
    #[error("whisper.cpp failed: {0}")]
    Whisper(String),
}

/// Decoding options for one call.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Encoder context in frames; `FULL_AUDIO_CTX` is whisper.cpp's default behaviour.
    pub audio_ctx: i32,
    /// Abort when the wall clock (Unix ms) reaches this.
    pub deadline_ms: Option<u64>,
}

/// One loaded model with its reusable state.
pub struct Decoder {
    ctx: WhisperContext,
    state: WhisperState,
    hparams: Hparams,
    language: String,
    threads: usize,
    /// Read by the abort callback; a stable heap address for whisper.cpp.
    deadline_ms: Box<AtomicU64>,
}

unsafe extern "C" fn abort_at_deadline(user_data: *mut c_void) -> bool {
    // SAFETY: user_data is `Decoder::deadline_ms`, boxed and alive for every decode.
    let deadline = unsafe { &*(user_data as *const AtomicU64) };
    now_ms() >= deadline.load(Ordering::Relaxed)
}

impl Decoder {
    /// Checks the file (so whisper.cpp never sees a bad one), then loads it.
    pub fn load(path: &Path, language: &str, threads: usize) -> Result<Self, ModelError> {
        let info = check_model(path)?;
        check_language(path, &info.hparams, language)?;
        whisper_rs::install_logging_hooks();
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| ModelError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("whisper.cpp could not load it: {e}"),
            })?;
        let state = ctx.create_state().map_err(|e| ModelError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("whisper.cpp could not create a state: {e}"),
        })?;
        Ok(Self {
            ctx,
            state,
            hparams: info.hparams,
            language: language.to_string(),
            threads,
            deadline_ms: Box::new(AtomicU64::new(u64::MAX)),
        })
    }

    pub fn hparams(&self) -> &Hparams {
        &self.hparams
    }

    /// A name like `tiny.en` or `base`.
    pub fn model_name(&self) -> String {
        let suffix = if self.hparams.is_multilingual() {
            ""
        } else {
            ".en"
        };
        format!("{}{}", self.hparams.size_name(), suffix)
    }

    /// Decodes 16 kHz mono audio: greedy, no conditioning on earlier text, blank
    /// and non-speech tokens suppressed, one segment.
    pub fn decode(
        &mut self,
        samples: &[f32],
        options: DecodeOptions,
    ) -> Result<Heard, DecodeError> {
        let seconds = samples.len() as f64 / f64::from(TARGET_RATE);
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_language(Some(&self.language));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_single_segment(true);
        params.set_no_timestamps(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_temperature(0.0);
        // No temperature fallback: a second decode would break the latency bound.
        params.set_temperature_inc(0.0);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_audio_ctx(options.audio_ctx);
        params.set_max_tokens((8.0 + seconds * MAX_TOKENS_PER_SECOND).ceil() as i32);
        self.deadline_ms
            .store(options.deadline_ms.unwrap_or(u64::MAX), Ordering::Relaxed);
        // SAFETY: the callback only reads the AtomicU64 behind the pointer, which
        // lives as long as `self`, longer than this call.
        unsafe {
            params.set_abort_callback(Some(abort_at_deadline));
            params.set_abort_callback_user_data(
                &*self.deadline_ms as *const AtomicU64 as *mut c_void,
            );
        }
        let result = self.state.full(params, samples);
        if options.deadline_ms.is_some_and(|d| now_ms() >= d) {
            return Err(DecodeError::Aborted);
        }
        result.map_err(|e| DecodeError::Whisper(e.to_string()))?;
        Ok(self.judge())
    }

    /// Reads the decoded segment and decides whether it is speech.
    fn judge(&self) -> Heard {
        let mut text = String::new();
        let mut logprob_sum = 0.0f32;
        let mut n_text_tokens = 0u32;
        let mut no_speech = 0.0f32;
        let eot = self.ctx.token_eot();
        for segment in self.state.as_iter() {
            no_speech = no_speech.max(segment.no_speech_probability());
            if let Ok(s) = segment.to_str_lossy() {
                text.push_str(&s);
            }
            for i in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(i) else {
                    continue;
                };
                let data = token.token_data();
                if data.id < eot {
                    logprob_sum += data.plog;
                    n_text_tokens += 1;
                }
            }
        }
        let text = collapse_repeats(text.trim());
        if n_text_tokens == 0 {
            return Heard::NoSpeech {
                why: "no text tokens".into(),
            };
        }
        let avg_logprob = logprob_sum / n_text_tokens as f32;
        if no_speech > NO_SPEECH_PROB && avg_logprob < LOGPROB_SILENT {
            return Heard::NoSpeech {
                why: format!("no-speech probability {no_speech:.2}, average log-probability {avg_logprob:.2}"),
            };
        }
        if avg_logprob < LOGPROB_FLOOR {
            return Heard::NoSpeech {
                why: format!("average log-probability {avg_logprob:.2}"),
            };
        }
        if let Some(why) = non_speech_text(&text) {
            return Heard::NoSpeech { why };
        }
        if avg_logprob < LOGPROB_HALLUCINATION && is_stock_phrase(&text) {
            return Heard::NoSpeech {
                why: format!("stock phrase {text:?} at average log-probability {avg_logprob:.2}"),
            };
        }
        log::debug!("decoded {n_text_tokens} tokens, average log-probability {avg_logprob:.2}, no-speech probability {no_speech:.2}");
        Heard::Text {
            text,
            confidence: f64::from(avg_logprob.exp()).clamp(0.0, 1.0),
        }
    }
}

/// Text the model writes when it hears no words: empty, punctuation only, tags
/// such as `[BLANK_AUDIO]`, `(music)`, `*applause*`, music notes, or a loop of
/// repeated words. Returns why, or `None` for real text.
pub fn non_speech_text(text: &str) -> Option<String> {
    let mut stripped = String::with_capacity(text.len());
    let mut depth = 0i32;
    let mut in_stars = false;
    for c in text.chars() {
        match c {
            '[' | '(' | '{' | '<' => depth += 1,
            ']' | ')' | '}' | '>' => depth = (depth - 1).max(0),
            '*' => in_stars = !in_stars,
            _ if depth == 0 && !in_stars => stripped.push(c),
            _ => {}
        }
    }
    if !stripped.chars().any(char::is_alphanumeric) {
        return Some(format!("no words in {text:?}"));
    }
    if is_looping(&stripped) {
        return Some("repeated text (decoder loop)".to_string());
    }
    None
}

/// With a shortened `audio_ctx` Whisper sometimes writes a phrase again after
/// itself ("fine in form it is of the first importance … fine in form …"). A run
/// of four or more words repeated back to back is cut after its first copy; an
/// utterance that is one sentence said twice keeps one.
pub fn collapse_repeats(text: &str) -> String {
    let text = cut_repeated_run(text);
    collapse_repeated_sentences(&text)
}

/// Words are compared without case and punctuation.
fn cut_repeated_run(text: &str) -> String {
    const MIN_RUN: usize = 4;
    let words: Vec<&str> = text.split_whitespace().collect();
    let keys: Vec<String> = words
        .iter()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .collect();
    for end in MIN_RUN..=keys.len() {
        // Does the run ending at `end` repeat right after itself, fully or to the end of the text?
        for n in MIN_RUN..=end {
            let run = &keys[end - n..end];
            let rest = &keys[end..];
            let repeats =
                rest.len() >= MIN_RUN && rest.iter().zip(run.iter().cycle()).all(|(a, b)| a == b);
            if repeats {
                return words[..end].join(" ");
            }
        }
    }
    text.to_string()
}

fn collapse_repeated_sentences(text: &str) -> String {
    let sentences: Vec<&str> = text
        .split_inclusive(['.', '!', '?'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
    };
    if sentences.len() >= 2 && sentences.iter().all(|s| key(s) == key(sentences[0])) {
        return sentences[0].to_string();
    }
    text.to_string()
}

/// The words of a text, lower case, with the punctuation around them removed.
fn plain_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Is the text one of Whisper's stock phrases (ignoring case and punctuation)?
pub fn is_stock_phrase(text: &str) -> bool {
    let joined = plain_words(text).join(" ");
    STOCK_PHRASES.contains(&joined.as_str())
}

/// A decode stuck repeating itself: some n-gram (n ≤ 4) repeated back to back at
/// least 4 times, covering most of the text.
pub fn is_looping(text: &str) -> bool {
    let words = plain_words(text);
    for n in 1..=4 {
        let mut start = 0;
        while start + n <= words.len() {
            let mut repeats = 1;
            while start + (repeats + 1) * n <= words.len()
                && words[start + repeats * n..start + (repeats + 1) * n] == words[start..start + n]
            {
                repeats += 1;
            }
            if repeats >= 4 && repeats * n * 2 >= words.len() {
                return true;
            }
            start += 1;
        }
    }
    false
}

/// Counters the transcriber keeps; read by the stats.
#[derive(Debug, Default)]
pub struct TranscriberCounters {
    /// Total decode wall time, ms.
    pub decode_ms: AtomicU64,
    /// Total audio decoded, ms.
    pub audio_ms: AtomicU64,
}

/// Handle to the whisper thread. The thread ends when the utterance channel
/// closes (the dsp thread dropped its sender) and the queue is drained.
pub struct Transcriber {
    thread: Option<JoinHandle<()>>,
}

struct TranscriberInternal {
    decoder: Decoder,
    /// Utterances from the dsp thread, which holds the sender.
    utterances: Receiver<Utterance>,
    /// Transcripts and drops to the event loop.
    events: EventSender,
    max_latency_ms: u64,
    counters: Arc<TranscriberCounters>,
    /// Expected decode milliseconds per encoder frame of context; updated after
    /// every decode so the deadline check before decoding tracks the machine.
    ms_per_ctx_frame: f64,
}

impl Transcriber {
    /// Warms the decoder up (one short decode, so the first utterance is not
    /// paid for by lazy allocations) and starts the thread.
    pub fn spawn(
        mut decoder: Decoder,
        utterances: Receiver<Utterance>,
        events: EventSender,
        max_latency_ms: u64,
        counters: Arc<TranscriberCounters>,
    ) -> Self {
        let warmup = vec![0.0f32; TARGET_RATE as usize];
        let started = Instant::now();
        let _ = decoder.decode(
            &warmup,
            DecodeOptions {
                audio_ctx: AUDIO_CTX_FLOOR,
                deadline_ms: None,
            },
        );
        let warm_ms = started.elapsed().as_secs_f64() * 1000.0;
        log::debug!("warm-up decode took {warm_ms:.0} ms");
        let internal = TranscriberInternal {
            decoder,
            utterances,
            events,
            max_latency_ms,
            counters,
            ms_per_ctx_frame: warm_ms / f64::from(AUDIO_CTX_FLOOR),
        };
        let thread = std::thread::Builder::new()
            .name("whisper".into())
            .spawn(move || internal.run())
            .expect("spawn whisper thread");
        Self {
            thread: Some(thread),
        }
    }

    /// Waits for the thread to drain its queue and end.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl TranscriberInternal {
    fn run(mut self) {
        while let Ok(utterance) = self.utterances.recv() {
            let event = self.transcribe(utterance);
            send_blocking(&self.events, event);
        }
    }

    fn transcribe(&mut self, utterance: Utterance) -> Event {
        let id = utterance.id;
        let deadline =
            utterance.end_ms + self.max_latency_ms - PUBLISH_MARGIN_MS.min(self.max_latency_ms);
        let audio_ctx = audio_ctx_for(utterance.samples.len(), AUDIO_CTX_FLOOR);
        let expected_ms = (self.ms_per_ctx_frame * f64::from(audio_ctx)) as u64;
        if now_ms() + expected_ms > deadline {
            log::info!("utterance {id}: dropped before decoding, {expected_ms} ms decode would miss the deadline");
            return Event::Dropped {
                id,
                reason: DropReason::Deadline,
            };
        }
        let started = Instant::now();
        let result = self.decoder.decode(
            &utterance.samples,
            DecodeOptions {
                audio_ctx,
                deadline_ms: Some(deadline),
            },
        );
        let decode_ms = started.elapsed().as_millis() as u64;
        let audio_ms = utterance.samples.len() as u64 * 1000 / u64::from(TARGET_RATE);
        self.counters
            .decode_ms
            .fetch_add(decode_ms, Ordering::Relaxed);
        self.counters
            .audio_ms
            .fetch_add(audio_ms, Ordering::Relaxed);
        // Exponential average: recent decodes count most (load comes and goes).
        let observed = decode_ms as f64 / f64::from(audio_ctx);
        self.ms_per_ctx_frame = 0.7 * self.ms_per_ctx_frame + 0.3 * observed;
        match result {
            Ok(Heard::Text { text, confidence }) => {
                log::info!("utterance {id}: {} chars in {decode_ms} ms", text.len());
                log::debug!("utterance {id}: {text:?}");
                Event::Transcript(Transcript {
                    id,
                    text,
                    start_ms: utterance.start_ms,
                    end_ms: utterance.end_ms,
                    confidence,
                    decode_ms,
                })
            }
            Ok(Heard::NoSpeech { why }) => {
                log::info!("utterance {id}: no speech ({why})");
                Event::Dropped {
                    id,
                    reason: DropReason::NoSpeech,
                }
            }
            Err(DecodeError::Aborted) => {
                log::info!("utterance {id}: decode aborted at the deadline after {decode_ms} ms");
                Event::Dropped {
                    id,
                    reason: DropReason::Deadline,
                }
            }
            Err(e) => {
                log::warn!("utterance {id}: {e}");
                Event::Dropped {
                    id,
                    reason: DropReason::NoSpeech,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_follows_length_with_a_floor() {
        assert_eq!(audio_ctx_for(16_000, 384), 384);
        assert_eq!(audio_ctx_for(16_000 * 10, 384), 512);
        assert_eq!(audio_ctx_for(16_000 * 30, 384), 1500);
        assert_eq!(audio_ctx_for(16_000 * 40, 384), 1500);
        assert_eq!(audio_ctx_for(16_000 * 89 / 10, 0), 448);
        assert_eq!(audio_ctx_for(16_000 * 9, 0), 512);
    }

    #[test]
    fn tags_and_punctuation_are_not_speech() {
        for t in [
            "",
            " . ",
            "[BLANK_AUDIO]",
            "(music)",
            "[Music] ",
            "*applause*",
            "♪ ♪",
            "(wind blowing) [silence]",
        ] {
            assert!(non_speech_text(t).is_some(), "{t:?}");
        }
        for t in ["Turn on the lights.", "Yes", "It's 5 o'clock (roughly)."] {
            assert!(non_speech_text(t).is_none(), "{t:?}");
        }
    }

    #[test]
    fn repeated_sentences_collapse() {
        assert_eq!(
            collapse_repeats("And so my fellow Americans. And so my fellow Americans."),
            "And so my fellow Americans."
        );
        assert_eq!(collapse_repeats("Go. Stop."), "Go. Stop.");
        assert_eq!(collapse_repeats("No. No! No."), "No.");
        assert_eq!(collapse_repeats("turn on the lights"), "turn on the lights");
        assert_eq!(
            collapse_repeats("it is of the first importance that the letter used should be fine and form it is of the first importance that the letter used should be fine and"),
            "it is of the first importance that the letter used should be fine and form"
        );
        assert_eq!(
            collapse_repeats("It imitates a much freer hand, and therefore far pleasanter and easier to read and therefore far pleasanter and easier to read"),
            "It imitates a much freer hand, and therefore far pleasanter and easier to read"
        );
        assert_eq!(
            collapse_repeats("one two three four five six"),
            "one two three four five six"
        );
    }

    #[test]
    fn stock_phrases_are_recognised() {
        assert!(is_stock_phrase("Thank you."));
        assert!(is_stock_phrase(" thanks for watching!"));
        assert!(!is_stock_phrase("Thank you, turn off the lights."));
    }

    #[test]
    fn loops_are_detected() {
        assert!(is_looping("the the the the the the"));
        assert!(is_looping(
            "I'm going to go. I'm going to go. I'm going to go. I'm going to go."
        ));
        assert!(!is_looping("no no no I said stop the music now please"));
        assert!(!is_looping("go forward ten meters"));
    }
}
