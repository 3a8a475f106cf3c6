//! Scoring transcripts: a Whisper-style English text normalisation and word
//! error counts, for the accuracy tests and the benchmarks.

/// Whisper-style English normalisation, enough for these references: lower
/// case, no punctuation, numbers as words, a few spellings unified.
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase().replace(['-', '—'], " ");
    let cleaned: String = lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut words = Vec::new();
    for w in cleaned.split_whitespace() {
        let w = w.trim_matches('\'');
        if let Ok(n) = w.parse::<u64>() {
            words.extend(number_words(n));
        } else if !w.is_empty() {
            words.push(match w {
                "mr" => "mister".to_string(),
                "mrs" => "missus".to_string(),
                "ok" => "okay".to_string(),
                other => other.to_string(),
            });
        }
    }
    words.join(" ")
}

fn number_words(n: u64) -> Vec<String> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    fn below_100(n: u64) -> Vec<String> {
        if n < 20 {
            vec![ONES[n as usize].to_string()]
        } else if n % 10 == 0 {
            vec![TENS[(n / 10) as usize].to_string()]
        } else {
            vec![
                TENS[(n / 10) as usize].to_string(),
                ONES[(n % 10) as usize].to_string(),
            ]
        }
    }
    // Years as spoken ("1455" → "fourteen fifty five"); other numbers plainly.
    if (1100..2000).contains(&n) && n % 100 != 0 {
        let mut v = below_100(n / 100);
        if n % 100 < 10 {
            v.push("oh".into());
        }
        v.extend(below_100(n % 100));
        return v;
    }
    if n < 100 {
        return below_100(n);
    }
    if n < 1000 {
        let mut v = vec![ONES[(n / 100) as usize].to_string(), "hundred".into()];
        if n % 100 != 0 {
            v.extend(below_100(n % 100));
        }
        return v;
    }
    vec![n.to_string()]
}

/// Word errors (substitutions + deletions + insertions) and reference length.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r: Vec<&str> = reference.split_whitespace().collect();
    let h: Vec<&str> = hypothesis.split_whitespace().collect();
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            let sub = prev[j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_drops_case_and_punctuation_and_unifies_spellings() {
        assert_eq!(
            normalize("Turn on the Kitchen-lights!"),
            "turn on the kitchen lights"
        );
        assert_eq!(
            normalize("  'Quoted,' he said—loudly. "),
            "quoted he said loudly"
        );
        assert_eq!(
            normalize("Mr. and Mrs. Smith, OK?"),
            "mister and missus smith okay"
        );
        assert_eq!(normalize("It's John's"), "it's john's");
        assert_eq!(normalize("…"), "");
    }

    #[test]
    fn numbers_become_words_as_spoken() {
        assert_eq!(normalize("7"), "seven");
        assert_eq!(normalize("19"), "nineteen");
        assert_eq!(normalize("40"), "forty");
        assert_eq!(normalize("42"), "forty two");
        assert_eq!(normalize("100"), "one hundred");
        assert_eq!(normalize("305"), "three hundred five");
        assert_eq!(normalize("in 1455"), "in fourteen fifty five");
        assert_eq!(normalize("1905"), "nineteen oh five");
    }

    #[test]
    fn word_errors_count_edits_against_the_reference() {
        assert_eq!(word_errors("a b c", "a b c"), (0, 3));
        assert_eq!(word_errors("a b c", "a x c"), (1, 3), "a substitution");
        assert_eq!(word_errors("a b c", "a c"), (1, 3), "a deletion");
        assert_eq!(word_errors("a b c", "a b b c"), (1, 3), "an insertion");
        assert_eq!(word_errors("a b c", ""), (3, 3));
        assert_eq!(word_errors("", "a b"), (2, 0));
        assert_eq!(
            word_errors("turn on the lights", "turn off lights now"),
            (3, 4)
        );
    }
}
