//! Scoring transcripts: a Whisper-style English text normalisation and word
//! error counts, shared by the accuracy tests and the benchmarks.

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
