//! The adaptive end of speech: is what was said so far a complete request?
//! The speculative decode that runs during the silence tells more than the
//! silence does: "Turn on the kitchen lights." is done, "Turn on the" is not.
//! [`completeness`] judges the decoded text; the segmenter then closes the
//! utterance after `--min-silence-ms` when it is complete, waits up to
//! `--max-silence-ms` when it is clearly unfinished, and uses `--silence-ms`
//! otherwise (and always with `--end-of-speech fixed`).
//!
//! Word lists are per language; English is the only one so far, every other
//! language is judged [`Completeness::Unsure`] (the fixed rule).
//!
//! [`EndHint`] carries the verdict from the whisper thread to the dsp thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `--end-of-speech`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOfSpeech {
    /// Close after `--silence-ms`, whatever was said.
    Fixed,
    /// Close sooner or later depending on the speculative decode.
    Adaptive,
}

/// What the words so far say about the end of the utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// A finished sentence: the utterance may close after the short silence.
    Complete,
    /// Clearly cut off (a trailing "the", "and", a comma): wait longer.
    Unfinished,
    /// Neither: the usual silence.
    Unsure,
}

pub use crate::event::EndRule;

/// Below this confidence (the decode's mean token probability) a complete
/// looking sentence is only [`Completeness::Unsure`]: a short close on a
/// shaky decode would cut a sentence whose end the model misheard.
pub const MIN_CONFIDENCE: f64 = 0.6;

/// Words after which an English sentence cannot end: articles, possessive
/// determiners, conjunctions, fillers. Whatever mark follows, the speaker
/// was cut off ("Turn on the." is what Whisper writes for "turn on the").
const ENGLISH_UNFINISHED: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "nor", "because", "if", "than", "whether", "unless",
    "although", "my", "your", "its", "our", "their", "every", "each", "very", "um", "uh", "er",
    "erm",
];

/// Prepositions: a statement rarely ends with one ("Set a timer for"), a
/// question may ("Where are you from?"). Unfinished, unless a question mark
/// follows: then unsure, the usual silence.
const ENGLISH_PREPOSITIONS_ENDING_QUESTIONS: &[&str] = &[
    "to", "of", "in", "at", "for", "with", "from", "by", "about", "into", "onto", "under",
    "between", "through", "like", "as", "without", "within", "against", "during", "towards",
    "toward", "until",
];

/// Words that usually go on but end many a sentence or question ("Call
/// her.", "I think so.", "What is that?", "Yes, I can."): pronouns,
/// demonstratives, auxiliaries, some adverbs. Unfinished with no mark after
/// them; after a period or "!" unsure, the usual silence (never the long
/// wait: nothing says the speaker was cut off); a question mark ends the
/// question.
const ENGLISH_MAY_END: &[&str] = &[
    "so", "then", "that", "this", "these", "those", "which", "who", "whose", "whom", "when",
    "where", "while", "though", "before", "after", "his", "her", "some", "any", "no", "is", "are",
    "was", "were", "be", "been", "am", "will", "would", "can", "could", "should", "shall", "may",
    "might", "must", "do", "does", "did", "have", "has", "had", "not", "more", "most", "less",
    "plus", "minus", "times", "point",
];

/// The verdict on one tentative utterance, posted by the whisper thread when
/// its speculative decode ends and read by the segmenter at every frame of
/// silence. A verdict names the utterance and the length of the audio it
/// judged, so one on audio that has since grown (speech resumed) never
/// applies. Clones share one slot; lock-free.
#[derive(Debug, Clone, Default)]
pub struct EndHint(Arc<AtomicU64>);

/// Bits of the packed slot: id (40) | length in samples (22: 262 s at 16 kHz,
/// longer than any utterance) | verdict (2).
const LENGTH_BITS: u32 = 22;
const VERDICT_BITS: u32 = 2;

impl EndHint {
    /// Posts the verdict on utterance `id`'s first `samples` samples.
    pub fn post(&self, id: u64, samples: usize, verdict: Completeness) {
        let len = samples as u64;
        let code = match verdict {
            Completeness::Complete => 1,
            Completeness::Unfinished => 2,
            Completeness::Unsure => 3,
        };
        let packed = (id << (LENGTH_BITS + VERDICT_BITS))
            | ((len & ((1 << LENGTH_BITS) - 1)) << VERDICT_BITS)
            | code;
        self.0.store(packed, Ordering::Release);
    }

    /// The verdict on exactly this audio, if one was posted.
    pub fn verdict(&self, id: u64, samples: usize) -> Option<Completeness> {
        let len = samples as u64;
        let packed = self.0.load(Ordering::Acquire);
        let same_id = packed >> (LENGTH_BITS + VERDICT_BITS) == id & ((1 << 40) - 1);
        let same_len =
            (packed >> VERDICT_BITS) & ((1 << LENGTH_BITS) - 1) == len & ((1 << LENGTH_BITS) - 1);
        if !(same_id && same_len) {
            return None;
        }
        match packed & 0b11 {
            1 => Some(Completeness::Complete),
            2 => Some(Completeness::Unfinished),
            3 => Some(Completeness::Unsure),
            _ => None,
        }
    }
}

/// Does the completeness rule know `language`? (Others use the fixed rule.)
pub fn has_word_lists(language: &str) -> bool {
    language == "en"
}

/// Prepositions and the pronouns Whisper completes them with when the speech
/// stops after the preposition: "Set a timer for" is often written "Set a
/// timer for it." A sentence ending in such a pair is judged unsure, never
/// complete. ("on", "over", "off" end commands as particles — "Turn the
/// lights on." — so they are in neither list.)
const ENGLISH_PREPOSITIONS: &[&str] = &[
    "for", "to", "with", "at", "about", "from", "of", "in", "into", "by",
];
const ENGLISH_FILLER_OBJECTS: &[&str] = &[
    "it", "that", "this", "them", "you", "me", "him", "her", "us", "one",
];

/// Judges the text of a speculative decode in `language`; `confidence` is the
/// decode's mean token probability (0..1).
pub fn completeness(text: &str, confidence: f64, language: &str) -> Completeness {
    if !has_word_lists(language) {
        return Completeness::Unsure;
    }
    let text = text
        .trim()
        .trim_end_matches(['"', '\'', ')', ']', '”', '’'])
        .trim_end();
    let Some(last_char) = text.chars().last() else {
        return Completeness::Unsure;
    };
    if text.ends_with("...") || matches!(last_char, '…' | ',' | ':' | ';' | '-' | '–' | '—') {
        return Completeness::Unfinished;
    }
    let mut words = text.rsplit(char::is_whitespace).map(bare_word);
    let last_word = words.next().unwrap_or_default();
    let before_last = words.next().unwrap_or_default();
    let (last, question) = (last_word.as_str(), last_char == '?');
    if ENGLISH_UNFINISHED.contains(&last) {
        return Completeness::Unfinished;
    }
    if ENGLISH_PREPOSITIONS_ENDING_QUESTIONS.contains(&last) {
        return if question {
            Completeness::Unsure
        } else {
            Completeness::Unfinished
        };
    }
    if ENGLISH_MAY_END.contains(&last) {
        match last_char {
            '?' => {}
            '.' | '!' => return Completeness::Unsure,
            _ => return Completeness::Unfinished,
        }
    }
    // "Set a timer for 10." may go on with "minutes".
    if last_word.chars().any(|c| c.is_ascii_digit()) {
        return Completeness::Unsure;
    }
    if ENGLISH_PREPOSITIONS.contains(&before_last.as_str())
        && ENGLISH_FILLER_OBJECTS.contains(&last_word.as_str())
    {
        return Completeness::Unsure;
    }
    if last_char != '?' && opens_a_dependent_part(text) {
        return Completeness::Unsure;
    }
    // Whisper writes a sentence's first word with a capital; in lower case
    // it heard the middle of one ("nor of the circumstances…", "and the
    // valley of…", "somehow or other."): what it judges is the tail of a
    // longer sentence, or a fragment the speaker is pausing in.
    if text
        .chars()
        .find(|c| c.is_alphanumeric())
        .is_some_and(char::is_lowercase)
    {
        return Completeness::Unsure;
    }
    if matches!(last_char, '.' | '!' | '?') && confidence >= MIN_CONFIDENCE {
        return Completeness::Complete;
    }
    Completeness::Unsure
}

/// A word as the word lists spell it: lower case, without the marks around
/// it (an apostrophe inside stays: "he's").
fn bare_word(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
        .to_lowercase()
}

/// Words that open a dependent clause: a sentence that starts with one
/// needs a main clause after it ("If it rains, close the windows."), so
/// with no comma yet it has not reached it ("If the reader will excuse
/// me" is followed, after a reader's pause, by "I will say nothing…").
const ENGLISH_SUBORDINATORS: &[&str] = &[
    "if", "when", "whenever", "because", "although", "though", "while", "unless", "since", "once",
    "until", "whereas", "whether", "as",
];

/// Words that end like a participle but are not one: plain verbs a command
/// opens with ("String the lights.", "Shred it."), and nouns.
const ENGLISH_NOT_PARTICIPLES: &[&str] =
    &["string", "spring", "shred", "embed", "morning", "evening"];

/// Does `text` open with a dependent part — a subordinating conjunction or
/// a participle ("Abandoned by all, …", "Looking back, …") — and have no
/// comma after which its main clause could have begun? Such a sentence is
/// more likely paused in than finished, whatever mark Whisper put after
/// it. A question is exempt ("When does the shop open?").
fn opens_a_dependent_part(text: &str) -> bool {
    if text.contains([',', ';', ':']) {
        return false;
    }
    let first = bare_word(text.split_whitespace().next().unwrap_or_default());
    let first = first.as_str();
    if ENGLISH_SUBORDINATORS.contains(&first) {
        return true;
    }
    let participle = (first.ends_with("ed") && !first.ends_with("eed") && first.len() >= 5)
        || (first.ends_with("ing") && !first.ends_with("thing") && first.len() >= 6);
    participle && !ENGLISH_NOT_PARTICIPLES.contains(&first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Completeness::*;

    fn en(text: &str) -> Completeness {
        completeness(text, 0.9, "en")
    }

    #[test]
    fn finished_sentences_are_complete() {
        assert_eq!(en(" Turn on the kitchen lights."), Complete);
        assert_eq!(en("Stop!"), Complete);
        assert_eq!(en("Play some music."), Complete);
        assert_eq!(en("Open the front door.\""), Complete);
    }

    #[test]
    fn questions_are_complete_unless_cut() {
        assert_eq!(en("What time is it?"), Complete);
        assert_eq!(en("Is it going to rain tomorrow?"), Complete);
        assert_eq!(en("What is the?"), Unfinished);
        assert_eq!(en("Can you tell me if"), Unfinished);
    }

    #[test]
    fn a_trailing_function_word_or_mark_is_unfinished() {
        assert_eq!(en("Turn on the"), Unfinished);
        assert_eq!(
            en("Turn on the."),
            Unfinished,
            "whisper adds a period anyway"
        );
        assert_eq!(en("Send a message to"), Unfinished);
        assert_eq!(en("I would like to,"), Unfinished);
        assert_eq!(en("Well..."), Unfinished);
        assert_eq!(en("Remind me to call, um."), Unfinished);
    }

    #[test]
    fn a_question_may_end_with_a_preposition_or_a_pronoun() {
        assert_eq!(en("What is that?"), Complete);
        assert_eq!(en("Can you do that?"), Complete);
        assert_eq!(en("Who is it?"), Complete);
        assert_eq!(
            en("Where are you from?"),
            Unsure,
            "a preposition: the usual silence"
        );
        assert_eq!(en("What is the weather like?"), Unsure);
        assert_eq!(en("What is the?"), Unfinished, "an article never ends one");
    }

    #[test]
    fn a_pronoun_or_auxiliary_with_a_period_is_unsure_not_cut_off() {
        assert_eq!(en("Call her."), Unsure);
        assert_eq!(en("I think so."), Unsure);
        assert_eq!(en("Yes, I can!"), Unsure);
        assert_eq!(en("No one will doubt my being so."), Unsure);
        // With no mark at all, the words still say the speaker went on.
        assert_eq!(en("Call her"), Unfinished);
        assert_eq!(en("The weather is"), Unfinished);
        // A preposition keeps the long wait even with a period.
        assert_eq!(en("Set a timer for."), Unfinished);
    }

    #[test]
    fn particles_end_commands() {
        assert_eq!(en("Turn the lights on."), Complete);
        assert_eq!(en("Switch it off."), Complete);
        assert_eq!(en("Turn it up!"), Complete);
    }

    #[test]
    fn a_preposition_completed_with_a_pronoun_is_unsure() {
        // What Whisper writes for "set a timer for" followed by silence.
        assert_eq!(en("Set a timer for it."), Unsure);
        assert_eq!(en("Send a message to him."), Unsure);
        assert_eq!(en("Call him."), Complete);
    }

    #[test]
    fn numbers_at_the_end_are_unsure() {
        assert_eq!(en("Set a timer for 10."), Unsure);
        assert_eq!(en("Set the temperature to 21.5"), Unsure);
        assert_eq!(en("Set a timer for ten minutes."), Complete);
    }

    #[test]
    fn lists_end_when_their_last_item_is_said() {
        assert_eq!(en("Add eggs, milk and"), Unfinished);
        assert_eq!(en("Add eggs, milk,"), Unfinished);
        assert_eq!(en("Add eggs, milk and bread."), Complete);
    }

    #[test]
    fn a_sentence_opening_with_a_dependent_part_waits_for_its_main_clause() {
        // What Whisper writes at a reader's pause after a fronted clause.
        assert_eq!(en("If the reader will excuse me."), Unsure);
        assert_eq!(en("When you get home."), Unsure);
        assert_eq!(en("Abandoned indeed by God and man."), Unsure);
        assert_eq!(en("Looking back on it all."), Unsure);
        // Once a comma is there, the main clause may have been said.
        assert_eq!(en("If it rains, close the windows."), Complete);
        assert_eq!(en("When the timer ends, play some music."), Complete);
        // A question may open with "when"; commands with plain verbs.
        assert_eq!(en("When does the shop open?"), Complete);
        assert_eq!(en("Feed the cat."), Complete);
        assert_eq!(en("Bring me a glass of water."), Complete);
        assert_eq!(en("String the lights."), Complete);
        assert_eq!(en("Something is burning."), Complete);
        assert_eq!(en("Red alert."), Complete);
    }

    #[test]
    fn a_decode_that_opens_in_lower_case_is_the_middle_of_a_sentence() {
        assert_eq!(en(" somehow or other."), Unsure);
        assert_eq!(
            en("nor of the circumstances which led me to leave."),
            Unsure
        );
        assert_eq!(en("Somehow or other, Cat has taught them."), Complete);
        assert_eq!(en("10 minutes."), Complete, "no letter to go by");
        assert_eq!(
            en("and the"),
            Unfinished,
            "a cut-off end still waits longer"
        );
    }

    #[test]
    fn a_hint_applies_to_exactly_the_audio_it_judged() {
        let hint = EndHint::default();
        assert_eq!(hint.verdict(1, 40), None, "nothing posted");
        hint.post(1, 40, Complete);
        assert_eq!(hint.verdict(1, 40), Some(Complete));
        assert_eq!(hint.verdict(1, 52), None, "the audio grew since");
        assert_eq!(hint.verdict(2, 40), None, "another utterance");
        hint.post(7_000_000, 3_000_000, Unfinished);
        assert_eq!(hint.verdict(7_000_000, 3_000_000), Some(Unfinished));
        hint.post(7_000_000, 3_000_000, Unsure);
        assert_eq!(hint.verdict(7_000_000, 3_000_000), Some(Unsure));
    }

    #[test]
    fn no_mark_low_confidence_or_another_language_is_unsure() {
        assert_eq!(en("Turn on the kitchen lights"), Unsure);
        assert_eq!(en(""), Unsure);
        assert_eq!(
            completeness("Turn on the kitchen lights.", 0.3, "en"),
            Unsure
        );
        assert_eq!(completeness("Mach das Licht an.", 0.9, "de"), Unsure);
    }
}
