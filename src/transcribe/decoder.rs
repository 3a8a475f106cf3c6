//! The whisper.cpp wrapper: one context and state, loaded once and reused for
//! every utterance, with an abort callback during each decode. It reports what
//! the model wrote and how sure it was; whether that is speech is the judge's
//! call ([`super::judge()`]).

use std::ffi::c_void;
use std::path::Path;

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::judge::Decoded;
use crate::event::Spoken;
use crate::model::ggml::{check_language, check_model, Hparams, ModelError};
use crate::pipeline::{now_ms, WHISPER_RATE};

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
/// Text tokens allowed per second of audio (speech runs at 3–5): a decode that
/// writes more is looping on repeated text and is cut.
const MAX_TOKENS_PER_SECOND: f64 = 8.0;
/// Text tokens allowed on top of the per-second budget, so a short command
/// ("Stop.") is never cut.
const MIN_TOKEN_BUDGET: f64 = 8.0;

/// `audio_ctx` for `n_samples` of 16 kHz audio: its length in encoder frames,
/// rounded up to a block, at least `floor`, at most the full window.
pub fn audio_ctx_for(n_samples: usize, floor: i32) -> i32 {
    let seconds = n_samples as f64 / f64::from(WHISPER_RATE);
    let frames = (seconds * ENCODER_FRAMES_PER_SECOND).ceil() as i32;
    let rounded = (frames + AUDIO_CTX_STEP - 1) / AUDIO_CTX_STEP * AUDIO_CTX_STEP;
    rounded.clamp(floor.min(FULL_AUDIO_CTX), FULL_AUDIO_CTX)
}

/// Why a decode gave nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    /// Threads for this decode; `None`: the count the decoder was loaded with.
    pub threads: Option<usize>,
}

impl DecodeOptions<'_> {
    /// No deadline, no abort: whisper.cpp on `audio_ctx` frames of context.
    pub fn with_ctx(audio_ctx: i32) -> Self {
        Self {
            audio_ctx,
            deadline_ms: None,
            keep_going: None,
            threads: None,
        }
    }

    /// Should a decode under these options stop now? What the abort callback
    /// asks between whisper.cpp's steps.
    pub fn should_abort(&self) -> bool {
        self.deadline_ms.is_some_and(|d| now_ms() >= d) || self.keep_going.is_some_and(|f| !f())
    }
}

/// The language decodes are made in.
#[derive(Debug, Clone, PartialEq)]
enum Language {
    /// `--language CODE`.
    Fixed(String),
    /// `--language auto`: detected per utterance, among these language ids
    /// (`--languages`; empty: all).
    Detect(Vec<i32>),
}

/// One loaded model with its reusable state.
pub struct Decoder {
    ctx: WhisperContext,
    state: WhisperState,
    hparams: Hparams,
    language: Language,
    /// `--translate`: English text whatever was spoken.
    translate: bool,
    threads: usize,
    /// Whisper's initial prompt (`--prompt`), for every decode.
    prompt: Option<String>,
}

/// whisper.cpp's abort callback: `user_data` is the call's [`DecodeOptions`].
unsafe extern "C" fn abort_check(user_data: *mut c_void) -> bool {
    // SAFETY: user_data points at the `DecodeOptions` on `Decoder::decode`'s
    // stack, alive for the whole whisper.cpp call that invokes this, and only
    // read through a shared reference.
    let options = unsafe { &*(user_data as *const DecodeOptions<'_>) };
    options.should_abort()
}

impl Decoder {
    /// Checks the file (so whisper.cpp never sees a bad one), then loads it.
    /// `threads` is the default for decodes whose options name none.
    pub fn load(path: &Path, language: &str, threads: usize) -> Result<Self, ModelError> {
        let info = check_model(path)?;
        check_language(path, &info.hparams, language)?;
        whisper_rs::install_logging_hooks();
        // Flash attention stays off (whisper-rs' default): measured with
        // tiny.en on the 25 shared speech and noisy clips at sotto's
        // audio_ctx, 2 threads, it decoded no faster (14.2 s against 13.9 s
        // for two rounds) and WER rose from 4.02 % to 9.80 %.
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
            language: if language == "auto" {
                Language::Detect(Vec::new())
            } else {
                Language::Fixed(language.to_string())
            },
            translate: false,
            threads,
            prompt: None,
        })
    }

    /// `--language auto --languages …`: detection picks only among these
    /// (ISO 639-1 codes the config has checked).
    pub fn with_languages(mut self, among: &[String]) -> Self {
        if let Language::Detect(ids) = &mut self.language {
            *ids = among
                .iter()
                .filter_map(|c| whisper_rs::get_lang_id(c))
                .collect();
        }
        self
    }

    /// `--translate`: Whisper writes English whatever it hears.
    pub fn with_translate(mut self, translate: bool) -> Self {
        self.translate = translate;
        self
    }

    /// The language to decode `samples` in: the fixed one (probability 1),
    /// or the one whisper.cpp's detector rates highest among those allowed
    /// (one encoder pass over the utterance's start and one decoder step).
    fn language_of(&mut self, samples: &[f32], threads: usize) -> Result<Spoken, DecodeError> {
        let allowed = match &self.language {
            Language::Fixed(code) => {
                return Ok(Spoken {
                    code: code.clone(),
                    probability: 1.0,
                });
            }
            Language::Detect(allowed) => allowed,
        };
        let whisper = |e: whisper_rs::WhisperError| DecodeError::Whisper(e.to_string());
        self.state.pcm_to_mel(samples, threads).map_err(whisper)?;
        let (_, probs) = self.state.lang_detect(0, threads).map_err(whisper)?;
        let (id, p) = probs
            .iter()
            .enumerate()
            .filter(|(id, _)| allowed.is_empty() || allowed.contains(&(*id as i32)))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .ok_or_else(|| DecodeError::Whisper("no language to detect".into()))?;
        let code = whisper_rs::get_lang_str(id as i32)
            .ok_or_else(|| DecodeError::Whisper(format!("language id {id} has no code")))?;
        Ok(Spoken {
            code: code.to_string(),
            probability: f64::from(*p),
        })
    }

    /// Gives every decode this initial prompt (`--prompt`): words that
    /// bias the spelling of names and terms. It must hold no NUL (the
    /// config checks that).
    pub fn with_prompt(mut self, prompt: Option<String>) -> Self {
        self.prompt = prompt.filter(|p| !p.contains('\0'));
        self
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
    ) -> Result<Decoded, DecodeError> {
        let seconds = samples.len() as f64 / f64::from(WHISPER_RATE);
        let threads = options.threads.unwrap_or(self.threads);
        let spoken = self.language_of(samples, threads)?;
        if options.should_abort() {
            return Err(DecodeError::Aborted);
        }
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(threads as i32);
        params.set_language(Some(&spoken.code));
        params.set_translate(self.translate);
        if let Some(prompt) = &self.prompt {
            params.set_initial_prompt(prompt);
        }
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
        params.set_max_tokens((MIN_TOKEN_BUDGET + seconds * MAX_TOKENS_PER_SECOND).ceil() as i32);
        // SAFETY: the callback only reads `options` (see `abort_check`), which
        // lives on this stack frame until after `full` returns and `params`,
        // which holds the pointer, is consumed by it.
        unsafe {
            params.set_abort_callback(Some(abort_check));
            params
                .set_abort_callback_user_data(&options as *const DecodeOptions<'_> as *mut c_void);
        }
        match self.state.full(params, samples) {
            // A decode that finished is kept even if its deadline passed at the
            // last step: the event loop applies the latency bound on publishing.
            Ok(_) => Ok(Decoded {
                language: Some(spoken),
                ..self.read_segments()
            }),
            // whisper.cpp fails a call its abort callback stopped.
            Err(_) if options.should_abort() => Err(DecodeError::Aborted),
            Err(e) => Err(DecodeError::Whisper(e.to_string())),
        }
    }

    /// What the last decode wrote, with its token statistics.
    fn read_segments(&self) -> Decoded {
        let mut decoded = Decoded::default();
        let mut logprob_sum = 0.0f32;
        let eot = self.ctx.token_eot();
        for segment in self.state.as_iter() {
            decoded.no_speech_prob = decoded.no_speech_prob.max(segment.no_speech_probability());
            if let Ok(s) = segment.to_str_lossy() {
                decoded.text.push_str(&s);
            }
            for i in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(i) else {
                    continue;
                };
                let data = token.token_data();
                if data.id < eot {
                    logprob_sum += data.plog;
                    decoded.n_text_tokens += 1;
                }
            }
        }
        if decoded.n_text_tokens > 0 {
            decoded.avg_logprob = logprob_sum / decoded.n_text_tokens as f32;
        }
        decoded
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
    fn options_abort_on_deadline_or_withdrawal() {
        assert!(!DecodeOptions::with_ctx(384).should_abort());
        let past = DecodeOptions {
            deadline_ms: Some(now_ms() - 1),
            ..DecodeOptions::with_ctx(384)
        };
        assert!(past.should_abort());
        let future = DecodeOptions {
            deadline_ms: Some(now_ms() + 60_000),
            ..DecodeOptions::with_ctx(384)
        };
        assert!(!future.should_abort());
        let stop = || false;
        let withdrawn = DecodeOptions {
            keep_going: Some(&stop),
            ..future
        };
        assert!(withdrawn.should_abort());
    }
}
