//! Per-sender call budget for the D-Bus methods: a token bucket per unique bus
//! name. A call over its sender's budget is refused with
//! `org.freedesktop.DBus.Error.LimitsExceeded`; others are unaffected. The
//! refusal is sent when the sender's next token is due (at most
//! [`MAX_HOLD`] later): a refusal sent at once only invites the next call, and a
//! client calling in a loop then costs sottod as much as it did when it was
//! answered (measured: ~10 000 refusals a second, half a core). A sender with
//! [`MAX_HELD`] refusals already waiting gets the next at once, so held calls
//! stay bounded. Memory is bounded: at most [`MAX_SENDERS`] buckets, and a
//! bucket that has refilled (its sender quiet for a while) carries nothing and
//! is the first to go.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Calls a sender may make per second, sustained.
pub const CALLS_PER_SECOND: f64 = 20.0;
/// Calls a sender may make at once after being quiet.
pub const BURST: f64 = 40.0;
/// Buckets kept at most (one per sender seen recently).
pub const MAX_SENDERS: usize = 256;
/// Longest a refusal is held back.
pub const MAX_HOLD: Duration = Duration::from_millis(50);
/// Refusals held back per sender at most.
pub const MAX_HELD: u32 = 4;

/// What to do with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the budget: serve it.
    Admit,
    /// Over it: refuse after `hold` (call [`RateLimiter::released`] then,
    /// when `hold` is not zero).
    Refuse { hold: Duration },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    held: u32,
}

/// The buckets of every recent sender.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
    /// Callers that arrive while the table is full of busy senders share one
    /// bucket, so the table never grows past [`MAX_SENDERS`].
    overflow: Bucket,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(CALLS_PER_SECOND, BURST, Instant::now())
    }
}

impl RateLimiter {
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            buckets: HashMap::new(),
            overflow: Bucket {
                tokens: burst,
                at: now,
                held: 0,
            },
        }
    }

    /// May `sender` make a call at `now`? Takes one token if so.
    pub fn allow(&mut self, sender: &str, now: Instant) -> bool {
        self.check(sender, now) == Verdict::Admit
    }

    /// Admits a call from `sender` at `now` (taking a token) or says how long
    /// to hold its refusal.
    pub fn check(&mut self, sender: &str, now: Instant) -> Verdict {
        let (rate, burst) = (self.rate, self.burst);
        let bucket = self.bucket(sender, now);
        if take(bucket, rate, burst, now) {
            return Verdict::Admit;
        }
        if bucket.held >= MAX_HELD {
            return Verdict::Refuse {
                hold: Duration::ZERO,
            };
        }
        bucket.held += 1;
        let due = Duration::from_secs_f64((1.0 - bucket.tokens) / rate);
        Verdict::Refuse {
            hold: due.clamp(Duration::from_millis(1), MAX_HOLD),
        }
    }

    /// A held refusal for `sender` was sent.
    pub fn released(&mut self, sender: &str) {
        let bucket = match self.buckets.get_mut(sender) {
            Some(b) => b,
            None => &mut self.overflow,
        };
        bucket.held = bucket.held.saturating_sub(1);
    }

    fn bucket(&mut self, sender: &str, now: Instant) -> &mut Bucket {
        let (rate, burst) = (self.rate, self.burst);
        if !self.buckets.contains_key(sender) && self.buckets.len() >= MAX_SENDERS {
            self.buckets
                .retain(|_, b| b.held > 0 || refill(*b, rate, burst, now).tokens < burst);
            if self.buckets.len() >= MAX_SENDERS {
                return &mut self.overflow;
            }
        }
        self.buckets.entry(sender.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
            held: 0,
        })
    }

    /// Senders with a bucket.
    pub fn senders(&self) -> usize {
        self.buckets.len()
    }
}

fn refill(b: Bucket, rate: f64, burst: f64, now: Instant) -> Bucket {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    Bucket {
        tokens: (b.tokens + elapsed * rate).min(burst),
        at: now.max(b.at),
        held: b.held,
    }
}

fn take(b: &mut Bucket, rate: f64, burst: f64, now: Instant) -> bool {
    *b = refill(*b, rate, burst, now);
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(20.0, 40.0, t0);
        let allowed = (0..100).filter(|_| l.allow(":1.5", t0)).count();
        assert_eq!(allowed, 40, "the burst, then nothing");
        // Half a second later: ten more.
        let t1 = t0 + Duration::from_millis(500);
        let allowed = (0..100).filter(|_| l.allow(":1.5", t1)).count();
        assert_eq!(allowed, 10);
        // Over ten seconds of calls every millisecond: ~20 per second.
        let mut allowed = 0;
        for ms in 1..=10_000 {
            allowed += usize::from(l.allow(":1.5", t1 + Duration::from_millis(ms)));
        }
        assert!((199..=201).contains(&allowed), "{allowed}");
    }

    #[test]
    fn a_refusal_is_held_until_the_next_token_and_held_ones_are_bounded() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(20.0, 2.0, t0);
        assert_eq!(l.check(":1.5", t0), Verdict::Admit);
        assert_eq!(l.check(":1.5", t0), Verdict::Admit);
        // Empty: the next token is 50 ms away.
        assert_eq!(
            l.check(":1.5", t0),
            Verdict::Refuse {
                hold: Duration::from_millis(50)
            }
        );
        // 30 ms later it is 20 ms away.
        let t1 = t0 + Duration::from_millis(30);
        let Verdict::Refuse { hold } = l.check(":1.5", t1) else {
            panic!("still over")
        };
        assert!(
            hold <= Duration::from_millis(21) && hold >= Duration::from_millis(19),
            "{hold:?}"
        );
        for _ in 2..MAX_HELD {
            assert!(
                matches!(l.check(":1.5", t1), Verdict::Refuse { hold } if hold > Duration::ZERO)
            );
        }
        assert_eq!(
            l.check(":1.5", t1),
            Verdict::Refuse {
                hold: Duration::ZERO
            },
            "past MAX_HELD waiting refusals, the next goes at once"
        );
        l.released(":1.5");
        assert!(matches!(l.check(":1.5", t1), Verdict::Refuse { hold } if hold > Duration::ZERO));
        assert_eq!(
            l.check(":1.5", t0 + Duration::from_millis(60)),
            Verdict::Admit
        );
    }

    #[test]
    fn one_sender_over_its_budget_leaves_the_others_served() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(20.0, 40.0, t0);
        for _ in 0..1000 {
            l.allow(":1.7", t0);
        }
        assert!(!l.allow(":1.7", t0));
        assert!(l.allow(":1.8", t0), "another sender has its own budget");
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_quiet_senders() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(20.0, 40.0, t0);
        for i in 0..MAX_SENDERS {
            assert!(l.allow(&format!(":1.{i}"), t0));
        }
        assert_eq!(l.senders(), MAX_SENDERS);
        // All busy (each took a token just now): a newcomer shares the
        // overflow bucket, the table does not grow.
        assert!(l.allow(":2.0", t0));
        assert_eq!(l.senders(), MAX_SENDERS);
        // Later every old sender has refilled: they are forgotten, the
        // newcomer gets its own bucket.
        let later = t0 + Duration::from_secs(5);
        assert!(l.allow(":2.1", later));
        assert_eq!(l.senders(), 1);
    }
}
