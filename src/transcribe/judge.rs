//! The no-speech judge: decides from what the model wrote, and how sure it was,
//! whether an utterance held words. Pure string and score heuristics, with no
//! whisper.cpp in sight, so they can be tuned and tested alone.

use crate::event::Spoken;

/// What one decode wrote, before judging.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// The text of every segment, as written.
    pub text: String,
    /// Text tokens (not special ones) in it.
    pub n_text_tokens: u32,
    /// Mean log-probability of those tokens (0 when there are none).
    pub avg_logprob: f32,
    /// The highest no-speech probability over the segments.
    pub no_speech_prob: f32,
    /// The language it was decoded in.
    pub language: Option<Spoken>,
}

/// What the model made of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// Words, with a confidence in 0..1, and the language they were heard in.
    Text {
        text: String,
        confidence: f64,
        language: Option<Spoken>,
    },
    /// No words (silence, noise, music, a hum, a tag like `[BLANK_AUDIO]`); the
    /// reason is for logs.
    NoSpeech { why: String },
}

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
/// A run of this many words or more, repeated back to back, is a decoder loop.
const MIN_REPEATED_RUN: usize = 4;
/// A loop: an n-gram (n up to this) repeated at least [`LOOP_REPEATS`] times…
const LOOP_MAX_NGRAM: usize = 4;
const LOOP_REPEATS: usize = 4;

/// Judges one decode.
pub fn judge(decoded: &Decoded) -> Heard {
    let Decoded {
        n_text_tokens,
        avg_logprob,
        no_speech_prob,
        ..
    } = *decoded;
    let text = collapse_repeats(decoded.text.trim());
    if n_text_tokens == 0 {
        return Heard::NoSpeech {
            why: "no text tokens".into(),
        };
    }
    if no_speech_prob > NO_SPEECH_PROB && avg_logprob < LOGPROB_SILENT {
        return Heard::NoSpeech {
            why: format!("no-speech probability {no_speech_prob:.2}, average log-probability {avg_logprob:.2}"),
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
    log::debug!("decoded {n_text_tokens} tokens, average log-probability {avg_logprob:.2}, no-speech probability {no_speech_prob:.2}");
    Heard::Text {
        text,
        confidence: f64::from(avg_logprob.exp()).clamp(0.0, 1.0),
        language: decoded.language.clone(),
    }
}

/// Text the model writes when it hears no words: empty, punctuation only, tags
/// such as `[BLANK_AUDIO]`, `(music)`, `*applause*`, music notes, a loop of
/// repeated words, or sounds that are not words (a hum, a sung vowel).
/// Returns why, or `None` for real text.
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
    if is_looping(&stripped) || has_looping_word(&stripped) {
        return Some("repeated text (decoder loop)".to_string());
    }
    if is_vocalisation(&stripped) {
        return Some(format!("a sound, not words: {text:?}"));
    }
    None
}

/// Every word is a sound rather than a word: a hum ("Mmm", "Hmm hmm",
/// "Mm-hmm"), a drawn-out vowel ("Oooooo", "Aah"), a filler ("Uh", "Erm"), a
/// sung "la la la", laughter ("Ha ha"), a hush ("Shh"), or one letter said
/// over and over ("Zzzz").
pub fn is_vocalisation(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '-')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    !words.is_empty() && words.iter().all(|w| is_sound(w))
}

/// One lower-case word that is a sound, not a word.
fn is_sound(w: &str) -> bool {
    let letters: Vec<char> = w.chars().collect();
    if !letters.iter().all(|c| c.is_alphabetic()) {
        return false;
    }
    // One letter said over and over: "mmm", "ooooo", "zzz".
    if letters.len() >= 2 && letters.iter().all(|&c| c == letters[0]) {
        return true;
    }
    // `pattern`: runs of the given letters, in order, each at least once
    // unless marked optional (`?`), covering the whole word.
    let shape = |pattern: &[(&str, bool)]| -> bool {
        let mut i = 0;
        for &(set, optional) in pattern {
            let run = letters[i..]
                .iter()
                .take_while(|c| set.contains(**c))
                .count();
            if run == 0 && !optional {
                return false;
            }
            i += run;
        }
        i == letters.len()
    };
    let repeats = |unit: &str| {
        w.len() >= unit.len()
            && w.len() % unit.len() == 0
            && w.as_bytes()
                .chunks(unit.len())
                .all(|c| c == unit.as_bytes())
    };
    shape(&[("h", true), ("m", false)]) // hm, hmm, mmm
        || shape(&[("m", false), ("h", false), ("m", false)]) // mhm
        || shape(&[("ue", false), ("hmr", false)]) // uh, um, uhm, er, erm
        || shape(&[("ao", false), ("h", false)]) // ah, oh, ooh, aah
        || shape(&[("s", false), ("h", false)]) // shh
        || repeats("la")
        || repeats("ha")
}

/// A syllable of up to this many letters…
const WORD_LOOP_MAX_UNIT: usize = 3;
/// …repeated back to back this many times inside one word is a decoder loop
/// ("camamamamamam" on a hum); no English word repeats a syllable so often.
const WORD_LOOP_REPEATS: usize = 6;

/// Some word (letters only) repeats a short syllable over and over.
pub fn has_looping_word(text: &str) -> bool {
    text.split(|c: char| !c.is_alphabetic()).any(|word| {
        let letters: Vec<char> = word.chars().flat_map(char::to_lowercase).collect();
        (1..=WORD_LOOP_MAX_UNIT).any(|unit| {
            let need = unit * WORD_LOOP_REPEATS;
            (0..letters.len().saturating_sub(need - 1)).any(|start| {
                let first = &letters[start..start + unit];
                (1..WORD_LOOP_REPEATS)
                    .all(|k| &letters[start + k * unit..start + (k + 1) * unit] == first)
            })
        })
    })
}

/// With a shortened `audio_ctx` Whisper sometimes writes a phrase again after
/// itself ("fine in form it is of the first importance … fine in form …"). A run
/// of four or more words repeated back to back is cut after its first copy, and
/// so is a last phrase of two or three written again before a closing comma;
/// an utterance that is one phrase or one sentence said twice keeps one.
pub fn collapse_repeats(text: &str) -> String {
    let text = cut_repeated_run(text);
    let text = cut_trailing_repeat(&text);
    let text = collapse_repeated_phrase(&text);
    collapse_repeated_sentences(&text)
}

/// A short utterance whose whole text is one phrase of two or more words
/// written twice or more ("In 1813, in 1813,": Whisper writing a short
/// utterance's words again after them) keeps one copy, without the comma
/// the repetition left. A text that is one word over and over ("no, no", or
/// a decoder loop "O O O O", which the non-speech judge must still see)
/// stays as it is.
fn collapse_repeated_phrase(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let keys = comparison_keys(&words);
    // The shortest phrase the whole text repeats.
    let period = (1..=keys.len() / 2).find(|&n| {
        keys.len() % n == 0
            && keys
                .iter()
                .zip(keys[..n].iter().cycle())
                .all(|(a, b)| a == b)
    });
    match period {
        Some(n) if n >= 2 => words[..n].join(" ").trim_end_matches(',').to_string(),
        _ => text.to_string(),
    }
}

/// A text that ends by writing its last phrase of two or three words again,
/// with the comma Whisper leaves where it broke off ("… of about 1455, about
/// 1455,"), loses the copy and that comma. A text ending in a full stop
/// ("…, thank you, thank you.") is speech and stays; a whole text that is
/// one phrase repeated is [`collapse_repeated_phrase`]'s.
fn cut_trailing_repeat(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if !words.last().is_some_and(|w| w.ends_with(',')) {
        return text.to_string();
    }
    let keys = comparison_keys(&words);
    let len = keys.len();
    for n in 2..MIN_REPEATED_RUN {
        if len > 2 * n && keys[len - n..] == keys[len - 2 * n..len - n] {
            return words[..len - n].join(" ").trim_end_matches(',').to_string();
        }
    }
    text.to_string()
}

/// Each word as repeats are compared: without case and punctuation.
fn comparison_keys(words: &[&str]) -> Vec<String> {
    words
        .iter()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .collect()
}

/// Words are compared by [`comparison_keys`].
fn cut_repeated_run(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let keys = comparison_keys(&words);
    for end in MIN_REPEATED_RUN..=keys.len() {
        // Does the run ending at `end` repeat right after itself, fully or to the end of the text?
        for n in MIN_REPEATED_RUN..=end {
            let run = &keys[end - n..end];
            let rest = &keys[end..];
            let repeats = rest.len() >= MIN_REPEATED_RUN
                && rest.iter().zip(run.iter().cycle()).all(|(a, b)| a == b);
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
    for n in 1..=LOOP_MAX_NGRAM {
        let mut start = 0;
        while start + n <= words.len() {
            let mut repeats = 1;
            while start + (repeats + 1) * n <= words.len()
                && words[start + repeats * n..start + (repeats + 1) * n] == words[start..start + n]
            {
                repeats += 1;
            }
            if repeats >= LOOP_REPEATS && repeats * n * 2 >= words.len() {
                return true;
            }
            start += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(text: &str, avg_logprob: f32, no_speech_prob: f32) -> Decoded {
        Decoded {
            text: text.into(),
            n_text_tokens: text.split_whitespace().count() as u32 + 1,
            avg_logprob,
            no_speech_prob,
            language: None,
        }
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
    fn hums_and_drawn_out_sounds_are_not_speech() {
        for t in [
            "Mmm.",
            "Mmmmmmm",
            "Hmm hmm.",
            "Hmm.",
            "Mm-hmm.",
            "Mhm.",
            "Oooooo",
            "Ooh.",
            "Aaaaah!",
            "Ah.",
            "Oh.",
            "Uh...",
            "Um, uh.",
            "Erm.",
            "La la la la.",
            "Ha ha.",
            "Shhh.",
            "Zzzz",
            "Mmm, mmm.",
        ] {
            assert!(is_vocalisation(t), "{t:?} is a sound");
            assert!(non_speech_text(t).is_some(), "{t:?}");
        }
        for t in [
            "Oh no.",
            "Hmm, turn it off.",
            "Um, play some music.",
            "Ah, yes.",
            "Stop.",
            "A.",
            "I.",
            "Shh, the baby is asleep.",
            "Hello.",
            "Ham.",
            "Mom.",
            "Hum.",
            "Ohm.",
            "11",
            "Tell me a joke, ha ha.",
        ] {
            assert!(!is_vocalisation(t), "{t:?} has a word");
        }
    }

    #[test]
    fn the_judge_keeps_confident_words() {
        match judge(&decoded(" Turn on the lights.", -0.2, 0.01)) {
            Heard::Text {
                text, confidence, ..
            } => {
                assert_eq!(text, "Turn on the lights.");
                assert!((confidence - (-0.2f64).exp()).abs() < 1e-6);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_judge_drops_what_is_not_speech() {
        let cases = [
            (Decoded::default(), "no text tokens"),
            (decoded("Hello there.", -1.2, 0.8), "no-speech probability"),
            (
                decoded("Hello there.", -1.7, 0.0),
                "average log-probability",
            ),
            (decoded("Thank you.", -0.7, 0.1), "stock phrase"),
            (decoded("[BLANK_AUDIO]", -0.1, 0.1), "no words"),
            (decoded("Mmmmm.", -0.3, 0.1), "a sound"),
        ];
        for (d, why_contains) in cases {
            match judge(&d) {
                Heard::NoSpeech { why } => assert!(why.contains(why_contains), "{d:?}: {why}"),
                other => panic!("{d:?} judged as {other:?}"),
            }
        }
        // Each rule alone: just inside its limit the text is kept.
        for d in [
            decoded("Hello there.", -0.9, 0.8),
            decoded("Hello there.", -1.5, 0.0),
            decoded("Thank you.", -0.5, 0.1),
        ] {
            assert!(matches!(judge(&d), Heard::Text { .. }), "{d:?}");
        }
    }

    #[test]
    fn repeated_sentences_collapse() {
        assert_eq!(
            collapse_repeats("And so my fellow Americans. And so my fellow Americans."),
            "And so my fellow Americans."
        );
        assert_eq!(collapse_repeats("Go. Stop."), "Go. Stop.");
        assert_eq!(collapse_repeats("In 1813, in 1813,"), "In 1813");
        assert_eq!(
            collapse_repeats("The Gutenberg Bible of about 1455, about 1455,"),
            "The Gutenberg Bible of about 1455"
        );
        assert_eq!(
            collapse_repeats("I said thank you, thank you."),
            "I said thank you, thank you."
        );
        assert_eq!(
            collapse_repeats("of about 1455, about 1456,"),
            "of about 1455, about 1456,"
        );
        assert_eq!(
            collapse_repeats("Lights on, lights on, lights on."),
            "Lights on"
        );
        assert_eq!(collapse_repeats("No, no."), "No, no.");
        assert_eq!(collapse_repeats("In 1813, in 1814,"), "In 1813, in 1814,");
        assert_eq!(collapse_repeats("one two one"), "one two one");
        // A decoder loop on one word is left for the non-speech judge.
        assert_eq!(collapse_repeats("O O O O"), "O O O O");
        assert!(non_speech_text(&collapse_repeats("O O O O")).is_some());
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
    fn a_syllable_looping_inside_a_word_is_a_decoder_loop() {
        assert!(has_looping_word("A camamamamamamamamamamam"));
        assert!(has_looping_word("Brrrrrrrr."));
        assert!(non_speech_text("A camamamamamamamamamamam").is_some());
        for t in [
            "Mississippi",
            "The bananas are on the table.",
            "Set a timer for 1000000 seconds.",
            "Cancan and mamama",
            "Hmm",
        ] {
            assert!(!has_looping_word(t), "{t:?}");
        }
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
