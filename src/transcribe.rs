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
use crate::event::{send_blocking, DropReason, Event, EventSender, Timing, Transcript};
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
    #[error("aborted (deadline, shutdown or cancelled)")]
    Aborted,
    #[error("whisper.cpp failed: {0}")]
    Whisper(String),
}

/// Decoding options for one call.
#[derive(Clone, Copy)]
pub struct DecodeOptions<'a> {
    /// Encoder context in frames; `FULL_AUDIO_CTX` is whisper.cpp's default behaviour.
    pub audio_ctx: i32,
    /// Abort when the wall clock (Unix ms) reaches this.
    pub deadline_ms: Option<u64>,
    /// Abort as soon as this returns false (a speculative decode whose speech
    /// resumed, a daemon shutting down). Called between whisper.cpp's steps.
    pub keep_going: Option<&'a (dyn Fn() -> bool + Sync)>,
}

impl DecodeOptions<'_> {
    /// No deadline, no abort: whisper.cpp on `audio_ctx` frames of context.
    pub fn with_ctx(audio_ctx: i32) -> Self {
        Self {
            audio_ctx,
            deadline_ms: None,
            keep_going: None,
        }
    }
}

/// What the abort callback reads; lives on `decode`'s stack for the call.
struct AbortCheck<'a> {
    deadline_ms: u64,
    keep_going: Option<&'a (dyn Fn() -> bool + Sync)>,
}

impl AbortCheck<'_> {
    fn should_abort(&self) -> bool {
        now_ms() >= self.deadline_ms || self.keep_going.is_some_and(|f| !f())
    }
}

/// One loaded model with its reusable state.
pub struct Decoder {
    ctx: WhisperContext,
    state: WhisperState,
    hparams: Hparams,
    language: String,
    threads: usize,
}

unsafe extern "C" fn abort_check(user_data: *mut c_void) -> bool {
    // SAFETY: user_data is the `AbortCheck` on `Decoder::decode`'s stack, alive
    // for the whole whisper.cpp call that invokes this.
    let check = unsafe { &*(user_data as *const AbortCheck<'_>) };
    check.should_abort()
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
        options: DecodeOptions<'_>,
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
        let check = AbortCheck {
            deadline_ms: options.deadline_ms.unwrap_or(u64::MAX),
            keep_going: options.keep_going,
        };
        // SAFETY: the callback only reads `check`, which outlives `full` below.
        unsafe {
            params.set_abort_callback(Some(abort_check));
            params.set_abort_callback_user_data(&check as *const AbortCheck<'_> as *mut c_void);
        }
        let result = self.state.full(params, samples);
        if check.should_abort() {
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
    /// Total decode wall time, ms (speculative decodes included).
    pub decode_ms: AtomicU64,
    /// Total audio of final utterances, ms.
    pub audio_ms: AtomicU64,
}

/// Work for the whisper thread, from the dsp thread.
#[derive(Debug)]
pub enum Job {
    /// The audio an utterance will end with if the silence holds: decode it
    /// now, during the silence, while [`SpeculationGate`] still names it.
    Speculate(Utterance),
    /// A closed utterance, closed at `closed_ms` (wall clock).
    Final {
        utterance: Utterance,
        closed_ms: u64,
    },
}

/// The id of the utterance whose tentative audio is still current (0 for
/// none). The dsp thread sets it when it sends [`Job::Speculate`] and clears it
/// when speech resumes; a speculative decode stops as soon as it changes.
pub type SpeculationGate = Arc<AtomicU64>;

/// Wall-clock time (Unix ms) from which the whisper thread gives up: set when the
/// daemon stops, so an utterance still open or queued at SIGTERM ends as
/// `Dropped(shutdown)` instead of holding the exit. `u64::MAX` while running.
pub type ShutdownDeadline = Arc<AtomicU64>;

/// Handle to the whisper thread. The thread ends when the job channel closes
/// (the dsp thread dropped its sender) and the queue is drained.
pub struct Transcriber {
    thread: Option<JoinHandle<()>>,
}

/// The whisper thread's inputs and outputs.
pub struct TranscriberSetup {
    /// Jobs from the dsp thread, which holds the sender.
    pub jobs: Receiver<Job>,
    /// Transcripts and drops to the event loop.
    pub events: EventSender,
    pub max_latency_ms: u64,
    pub counters: Arc<TranscriberCounters>,
    pub gate: SpeculationGate,
    pub shutdown: ShutdownDeadline,
}

/// A finished speculative decode, kept until its utterance closes.
struct Speculation {
    id: u64,
    samples: usize,
    heard: Heard,
    started_ms: u64,
    ended_ms: u64,
}

struct TranscriberInternal {
    decoder: Decoder,
    setup: TranscriberSetup,
    /// Expected decode milliseconds per encoder frame of context; updated after
    /// every decode so the deadline check before decoding tracks the machine.
    ms_per_ctx_frame: f64,
    speculation: Option<Speculation>,
}

impl Transcriber {
    /// Starts the thread. Its first act is a warm-up decode (one second of
    /// silence, so the first utterance is not paid for by lazy allocations);
    /// capture starts meanwhile, and a job that arrives during the warm-up waits
    /// for it in the queue.
    pub fn spawn(decoder: Decoder, setup: TranscriberSetup) -> Self {
        let thread = std::thread::Builder::new()
            .name("whisper".into())
            .spawn(move || {
                let mut decoder = decoder;
                let warmup = vec![0.0f32; TARGET_RATE as usize];
                let started = Instant::now();
                let _ = decoder.decode(&warmup, DecodeOptions::with_ctx(AUDIO_CTX_FLOOR));
                let warm_ms = started.elapsed().as_secs_f64() * 1000.0;
                log::debug!("warm-up decode took {warm_ms:.0} ms");
                TranscriberInternal {
                    decoder,
                    setup,
                    ms_per_ctx_frame: warm_ms / f64::from(AUDIO_CTX_FLOOR),
                    speculation: None,
                }
                .run()
            })
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

/// How an utterance's decode went.
struct Outcome {
    result: Result<Heard, DecodeError>,
    started_ms: u64,
    ended_ms: u64,
}

impl TranscriberInternal {
    fn run(mut self) {
        while let Ok(job) = self.setup.jobs.recv() {
            match job {
                Job::Speculate(utterance) => self.speculate(utterance),
                Job::Final {
                    utterance,
                    closed_ms,
                } => {
                    let event = self.transcribe(utterance, closed_ms);
                    send_blocking(&self.setup.events, event);
                }
            }
        }
    }

    fn shutting_down(&self) -> bool {
        now_ms() >= self.setup.shutdown.load(Ordering::Relaxed)
    }

    /// Decodes audio that may still grow. Skipped when anything else is queued
    /// (that is newer: the utterance's close, or a later one) or when speech has
    /// already resumed; stopped the moment speech resumes.
    fn speculate(&mut self, utterance: Utterance) {
        let id = utterance.id;
        let gate = self.setup.gate.clone();
        if gate.load(Ordering::Acquire) != id || !self.setup.jobs.is_empty() {
            return;
        }
        let shutdown = self.setup.shutdown.clone();
        let current = move || {
            gate.load(Ordering::Acquire) == id && now_ms() < shutdown.load(Ordering::Relaxed)
        };
        let deadline = self.deadline(&utterance);
        let outcome = self.decode(&utterance, deadline, &current);
        self.speculation = match outcome.result {
            Ok(heard) => Some(Speculation {
                id,
                samples: utterance.samples.len(),
                heard,
                started_ms: outcome.started_ms,
                ended_ms: outcome.ended_ms,
            }),
            Err(_) => {
                log::debug!("utterance {id}: speculative decode stopped");
                None
            }
        };
    }

    fn deadline(&self, utterance: &Utterance) -> u64 {
        let max = self.setup.max_latency_ms;
        utterance.end_ms + max - PUBLISH_MARGIN_MS.min(max)
    }

    fn decode(
        &mut self,
        utterance: &Utterance,
        deadline: u64,
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Outcome {
        let audio_ctx = audio_ctx_for(utterance.samples.len(), AUDIO_CTX_FLOOR);
        let started_ms = now_ms();
        let started = Instant::now();
        let result = self.decoder.decode(
            &utterance.samples,
            DecodeOptions {
                audio_ctx,
                deadline_ms: Some(deadline),
                keep_going: Some(keep_going),
            },
        );
        let decode_ms = started.elapsed().as_millis() as u64;
        self.setup
            .counters
            .decode_ms
            .fetch_add(decode_ms, Ordering::Relaxed);
        if result.is_ok() {
            // Exponential average: recent decodes count most (load comes and goes).
            let observed = decode_ms as f64 / f64::from(audio_ctx);
            self.ms_per_ctx_frame = 0.7 * self.ms_per_ctx_frame + 0.3 * observed;
        }
        Outcome {
            result,
            started_ms,
            ended_ms: started_ms + decode_ms,
        }
    }

    fn transcribe(&mut self, utterance: Utterance, closed_ms: u64) -> Event {
        let id = utterance.id;
        let audio_ms = utterance.samples.len() as u64 * 1000 / u64::from(TARGET_RATE);
        self.setup
            .counters
            .audio_ms
            .fetch_add(audio_ms, Ordering::Relaxed);
        let speculated = self
            .speculation
            .take()
            .filter(|s| s.id == id && s.samples == utterance.samples.len());
        let (outcome, speculative) = match speculated {
            // The same samples (a tentative utterance is a prefix of the open
            // buffer, so equal length means equal audio): the same text.
            Some(s) => {
                let outcome = Outcome {
                    result: Ok(s.heard),
                    started_ms: s.started_ms,
                    ended_ms: s.ended_ms,
                };
                (outcome, true)
            }
            None => {
                let deadline = self.deadline(&utterance);
                let shutdown = self.setup.shutdown.load(Ordering::Relaxed);
                let audio_ctx = audio_ctx_for(utterance.samples.len(), AUDIO_CTX_FLOOR);
                let expected_ms = (self.ms_per_ctx_frame * f64::from(audio_ctx)) as u64;
                let now = now_ms();
                if now + expected_ms > shutdown {
                    log::info!("utterance {id}: dropped, sottod is stopping");
                    return Event::Dropped {
                        id,
                        reason: DropReason::Shutdown,
                    };
                }
                if now + expected_ms > deadline {
                    log::info!("utterance {id}: dropped before decoding, {expected_ms} ms decode would miss the deadline");
                    return Event::Dropped {
                        id,
                        reason: DropReason::Deadline,
                    };
                }
                let shutdown = self.setup.shutdown.clone();
                let running = move || now_ms() < shutdown.load(Ordering::Relaxed);
                (self.decode(&utterance, deadline, &running), false)
            }
        };
        let decode_ms = outcome.ended_ms - outcome.started_ms;
        match outcome.result {
            Ok(Heard::Text { text, confidence }) => {
                log::info!(
                    "utterance {id}: {} chars in {decode_ms} ms{}",
                    text.len(),
                    if speculative {
                        ", decoded during the silence"
                    } else {
                        ""
                    }
                );
                log::debug!("utterance {id}: {text:?}");
                Event::Transcript(Transcript {
                    id,
                    text,
                    start_ms: utterance.start_ms,
                    end_ms: utterance.end_ms,
                    confidence,
                    decode_ms,
                    timing: Timing {
                        closed_ms,
                        decode_started_ms: outcome.started_ms,
                        decode_ended_ms: outcome.ended_ms,
                        ready_ms: now_ms(),
                        speculative,
                    },
                })
            }
            Ok(Heard::NoSpeech { why }) => {
                log::info!("utterance {id}: no speech ({why})");
                Event::Dropped {
                    id,
                    reason: DropReason::NoSpeech,
                }
            }
            Err(DecodeError::Aborted) if self.shutting_down() => {
                log::info!(
                    "utterance {id}: decode stopped after {decode_ms} ms, sottod is stopping"
                );
                Event::Dropped {
                    id,
                    reason: DropReason::Shutdown,
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
