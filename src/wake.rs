//! The wake phrase: does a transcript begin with it, and what follows it?
//! Pure functions over text; the event loop decides what to publish.
//!
//! Whisper spells the same spoken phrase many ways ("Hey computer.", "Hey,
//! Computer!", "Hey computers", "Hey-Computer", "Hay computer"), so the match
//! is on letters, not on tokens: the words are lower-cased, stripped of
//! everything that is not a letter or digit, and the first `k` words of the
//! transcript (for `k` within one of the phrase's word count, so a phrase
//! written as one word or two still matches) are joined and compared with the
//! phrase's joined letters by edit distance. The phrase matches when the best
//! distance is at most [`MAX_DISTANCE_RATIO`] of the phrase's letters.

/// Largest edit distance, as a share of the phrase's letters, that still
/// counts as the phrase: one letter in 7 (for "hey computer": "hey
/// computers", "hay computer", "heycomputer" match). Measured with tiny.en
/// on espeak-ng speech in two voices: every "hey computer, …" command came
/// out 0.00 off; the nearest other sentences were "He computed the total."
/// (0.18) and "A computer is on the desk." (0.27), then "Hey come here."
/// (0.36). `tests/integration/interaction.rs` holds those sentences and
/// reports the hit and false rates.
pub const MAX_DISTANCE_RATIO: f64 = 0.15;

/// A wake phrase, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakePhrase {
    /// The phrase as given (for logs and the property).
    text: String,
    /// Its normalised words.
    words: Vec<String>,
}

/// A transcript that begins with the phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    /// What follows the phrase, punctuation before it trimmed and its first
    /// letter in upper case; empty when the utterance was the phrase alone.
    pub rest: String,
}

/// A word as the match sees it: lower case, letters and digits only.
fn normalise(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance over chars.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

impl WakePhrase {
    /// The phrase, or why it cannot be one (it has no letters or digits).
    pub fn new(text: &str) -> Result<Self, String> {
        let words: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == '-')
            .map(normalise)
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            return Err(format!(
                "--wake-phrase {text:?} has no words; give the words that address sottod, e.g. --wake-phrase \"hey computer\""
            ));
        }
        Ok(Self {
            text: text.trim().to_string(),
            words,
        })
    }

    /// The phrase as it was given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The smallest edit distance between the phrase and the start of
    /// `text`, as a share of the phrase's letters, and how many of `text`'s
    /// whitespace-separated tokens that start spans.
    fn best_start(&self, text: &str) -> (f64, usize) {
        let phrase: Vec<char> = self.words.concat().chars().collect();
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let n = self.words.len();
        let mut best = (f64::INFINITY, 0);
        let mut joined: Vec<char> = Vec::new();
        let mut words = 0;
        for (i, token) in tokens.iter().enumerate() {
            // A hyphenated token may hold several of the phrase's words.
            let parts = token
                .split('-')
                .filter(|p| !normalise(p).is_empty())
                .count();
            if parts == 0 {
                continue;
            }
            joined.extend(normalise(token).chars());
            words += parts;
            if words + 1 >= n {
                let ratio = distance(&joined, &phrase) as f64 / phrase.len() as f64;
                if ratio < best.0 {
                    best = (ratio, i + 1);
                }
            }
            if words > n {
                break;
            }
        }
        best
    }

    /// `Some` when `text` begins with the phrase, with what follows it.
    pub fn strip(&self, text: &str) -> Option<Addressed> {
        let (ratio, tokens) = self.best_start(text);
        if ratio > MAX_DISTANCE_RATIO {
            return None;
        }
        let rest: String = text
            .split_whitespace()
            .skip(tokens)
            .collect::<Vec<_>>()
            .join(" ");
        let rest = rest.trim_start_matches(|c: char| !c.is_alphanumeric());
        let mut chars = rest.chars();
        let rest = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
        Some(Addressed { rest })
    }
}

/// What the wake rule decided for one transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It began with the phrase: publish `text` (the rest) after `Woken`. An
    /// empty text was the phrase alone, which opened the follow-up window.
    Woken { text: String },
    /// It started inside the follow-up window: publish it whole.
    FollowUp,
    /// Not addressed: drop it, and let its text go nowhere.
    NotAddressed,
}

/// The wake rule over a stream of transcripts (in the order they end).
#[derive(Debug, Clone)]
pub struct WakeRule {
    phrase: WakePhrase,
    follow_up_ms: u64,
    /// Capture clock (ms) until which an utterance that starts is a follow-up.
    window_until_ms: Option<u64>,
}

impl WakeRule {
    pub fn new(phrase: WakePhrase, follow_up_ms: u64) -> Self {
        Self {
            phrase,
            follow_up_ms,
            window_until_ms: None,
        }
    }

    /// The phrase.
    pub fn phrase(&self) -> &WakePhrase {
        &self.phrase
    }

    /// Judges the transcript of an utterance that started at `start_ms` and
    /// ended at `end_ms` (capture clock).
    pub fn judge(&mut self, text: &str, start_ms: u64, end_ms: u64) -> Verdict {
        if let Some(addressed) = self.phrase.strip(text) {
            self.window_until_ms = addressed
                .rest
                .is_empty()
                .then(|| end_ms + self.follow_up_ms);
            return Verdict::Woken {
                text: addressed.rest,
            };
        }
        match self.window_until_ms.take() {
            Some(until) if start_ms <= until => Verdict::FollowUp,
            _ => Verdict::NotAddressed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rest(phrase: &str, text: &str) -> Option<String> {
        WakePhrase::new(phrase).unwrap().strip(text).map(|a| a.rest)
    }

    #[test]
    fn the_phrase_matches_however_whisper_spells_and_punctuates_it() {
        for text in [
            "Hey computer, turn on the lights.",
            "Hey, Computer! Turn on the lights.",
            "hey computers turn on the lights.",
            "Hey-Computer, turn on the lights.",
            "Hay computer. Turn on the lights.",
            "Heycomputer turn on the lights.",
            " Hey computer... turn on the lights.",
        ] {
            assert_eq!(
                rest("hey computer", text).as_deref(),
                Some("Turn on the lights."),
                "{text:?}"
            );
        }
    }

    #[test]
    fn other_sentences_do_not_match() {
        for text in [
            "Turn on the lights.",
            "He computed the total.",
            "Hey, come here.",
            "The computer is on.",
            "Hey.",
            "",
            "...",
        ] {
            assert_eq!(rest("hey computer", text), None, "{text:?}");
        }
    }

    #[test]
    fn the_phrase_alone_leaves_nothing() {
        assert_eq!(rest("hey computer", "Hey computer.").as_deref(), Some(""));
        assert_eq!(rest("hey computer", "Hey, computer!").as_deref(), Some(""));
    }

    #[test]
    fn the_phrase_must_be_at_the_start() {
        assert_eq!(
            rest("hey computer", "Turn on the lights, hey computer."),
            None
        );
    }

    #[test]
    fn a_one_word_phrase_works() {
        assert_eq!(
            rest("jarvis", "Jarvis, what time is it?").as_deref(),
            Some("What time is it?")
        );
        assert_eq!(rest("jarvis", "What time is it, Jarvis?"), None);
    }

    #[test]
    fn a_phrase_without_words_is_refused() {
        for bad in ["", "   ", "!!", "- -"] {
            let err = WakePhrase::new(bad).unwrap_err();
            assert!(err.contains("--wake-phrase"), "{err}");
        }
    }

    #[test]
    fn the_phrase_alone_opens_a_follow_up_window_for_one_utterance() {
        let mut rule = WakeRule::new(WakePhrase::new("hey computer").unwrap(), 4_000);
        assert_eq!(
            rule.judge("Turn on the lights.", 0, 1_000),
            Verdict::NotAddressed
        );
        assert_eq!(
            rule.judge("Hey computer.", 2_000, 3_000),
            Verdict::Woken { text: "".into() }
        );
        assert_eq!(
            rule.judge("Turn on the lights.", 6_500, 8_000),
            Verdict::FollowUp
        );
        // Only the next one.
        assert_eq!(
            rule.judge("And the radio.", 8_500, 9_000),
            Verdict::NotAddressed
        );
        // A window that has passed is closed.
        rule.judge("Hey computer.", 10_000, 11_000);
        assert_eq!(
            rule.judge("Too late.", 15_001, 16_000),
            Verdict::NotAddressed
        );
        // An addressed command does not open one.
        rule.judge("Hey computer, stop.", 20_000, 21_000);
        assert_eq!(
            rule.judge("Then this.", 21_500, 22_000),
            Verdict::NotAddressed
        );
    }
}
