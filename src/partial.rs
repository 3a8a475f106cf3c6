//! Partial results: which words of an open utterance's interim decodes are
//! settled. LocalAgreement-2: a word is committed once two consecutive
//! decodes agree on it and on every word before it; a committed word is
//! never taken back. Pure logic; the whisper thread feeds it each decode.

/// One utterance's interim decodes so far.
#[derive(Debug, Default, Clone)]
pub struct Agreement {
    id: u64,
    /// Committed words, as first agreed.
    committed: Vec<String>,
    /// The previous decode's words.
    previous: Vec<String>,
}

/// What a Partial carries: the text, and how many of its leading characters
/// no later Partial of the utterance changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialText {
    pub text: String,
    pub stable: u32,
}

/// Words compared without case or punctuation ("lights." agrees with "lights").
fn same(a: &str, b: &str) -> bool {
    let key = |w: &str| -> String {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    key(a) == key(b)
}

impl Agreement {
    /// Takes the interim decode `text` of utterance `id` (a new id starts
    /// over) and returns the Partial to publish.
    pub fn update(&mut self, id: u64, text: &str) -> PartialText {
        if id != self.id {
            *self = Agreement {
                id,
                ..Agreement::default()
            };
        }
        let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        // Commit what this decode and the previous one agree on, past what is
        // committed already (and only where this decode agrees with that too).
        let agrees_with_committed = self.committed.iter().zip(&words).all(|(c, w)| same(c, w))
            && words.len() >= self.committed.len();
        if agrees_with_committed {
            let n = self.committed.len();
            let more = words[n..]
                .iter()
                .zip(self.previous.get(n..).unwrap_or_default())
                .take_while(|(w, p)| same(w, p))
                .count();
            // This decode's spelling: the newer one has seen what follows
            // each word ("quiet." becomes "quiet" once "music" comes after).
            self.committed.extend(words[n..n + more].iter().cloned());
        }
        // The text: the committed words, then this decode's words after them.
        let tail = words.get(self.committed.len()..).unwrap_or_default();
        let head = self.committed.join(" ");
        let stable = head.chars().count() as u32;
        let text = if tail.is_empty() {
            head
        } else if head.is_empty() {
            tail.join(" ")
        } else {
            format!("{head} {}", tail.join(" "))
        };
        self.previous = words;
        PartialText { text, stable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds decodes and checks the contract: `stable` never decreases and
    /// the committed prefix of every Partial starts every later one.
    fn run(decodes: &[&str]) -> Vec<PartialText> {
        let mut a = Agreement::default();
        let out: Vec<PartialText> = decodes.iter().map(|d| a.update(1, d)).collect();
        for pair in out.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            assert!(after.stable >= before.stable, "{out:?}");
            let committed: String = before.text.chars().take(before.stable as usize).collect();
            assert!(after.text.starts_with(&committed), "{out:?}");
        }
        out
    }

    #[test]
    fn words_two_decodes_agree_on_are_committed() {
        let out = run(&[
            "Turn on",
            "Turn on the",
            "Turn on the kitchen",
            "Turn on the kitchen lights.",
        ]);
        assert_eq!(out[0].stable, 0, "nothing agreed yet");
        assert_eq!(out[1].stable, "Turn on".len() as u32);
        assert_eq!(out[2].stable, "Turn on the".len() as u32);
        assert_eq!(out[3].text, "Turn on the kitchen lights.");
        assert_eq!(out[3].stable, "Turn on the kitchen".len() as u32);
    }

    #[test]
    fn a_committed_word_is_never_taken_back() {
        let out = run(&[
            "Turn on the kitten",
            "Turn on the kitten light",
            // The model changes its mind about a committed word.
            "Turn on the kitchen lights",
            "Turn on the kitchen lights.",
        ]);
        assert_eq!(out[1].stable, "Turn on the kitten".len() as u32);
        assert!(out[2].text.starts_with("Turn on the kitten"), "{out:?}");
        assert!(out[3].text.starts_with("Turn on the kitten"), "{out:?}");
    }

    #[test]
    fn case_and_punctuation_do_not_break_agreement() {
        let out = run(&["Turn on the quiet.", "Turn on the quiet music"]);
        assert_eq!(out[1].text, "Turn on the quiet music", "the newer spelling");
        assert_eq!(out[1].stable, "Turn on the quiet".len() as u32);
        let out = run(&["turn on the lights", "Turn on, the lights."]);
        assert_eq!(out[1].text, "Turn on, the lights.");
        assert_eq!(out[1].stable, out[1].text.len() as u32);
    }

    #[test]
    fn a_shorter_decode_keeps_the_committed_words() {
        let out = run(&["What time is", "What time is it", "What"]);
        assert_eq!(out[2].text, "What time is");
        assert_eq!(out[2].stable, "What time is".len() as u32);
    }

    #[test]
    fn a_new_utterance_starts_over() {
        let mut a = Agreement::default();
        a.update(1, "Stop the alarm");
        a.update(1, "Stop the alarm");
        let p = a.update(2, "Play");
        assert_eq!(
            p,
            PartialText {
                text: "Play".into(),
                stable: 0
            }
        );
    }
}
