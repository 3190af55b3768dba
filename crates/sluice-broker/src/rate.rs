//! Usage against a rate as a token bucket, shared by client quotas and the log mover's
//! throttle. As Kafka's controller-mutation quota (KIP-599):
//! the bucket refills at the quota's rate up to one second's worth, every recorded amount is
//! taken out, and a client in debt waits until the debt is repaid. Unlike a windowed rate,
//! which lets a fresh client burst a whole window (10 s) of quota at once and again each time
//! its oldest sample expires, this holds a client to its rate over any interval, give or take
//! one second's worth.

use std::time::{Duration, Instant};

/// Seconds of quota a client may use at once (the bucket's size).
const BURST_SECS: f64 = 1.0;
/// Longest throttle given at once; a larger debt is repaid over several responses.
const MAX_THROTTLE: Duration = Duration::from_secs(30);

/// One quota entity's usage of one quota type.
#[derive(Debug, Clone, Default)]
pub struct TokenBucket {
    /// Units left (negative: debt).
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` until first used (starts full).
    refilled: Option<Instant>,
}

impl TokenBucket {
    /// Takes `amount` out at `now` for a client allowed `quota` per second and returns how
    /// long it must wait before its next request.
    pub fn record(&mut self, amount: f64, quota: f64, now: Instant) -> Duration {
        self.refill(quota, now);
        self.tokens -= amount;
        if self.tokens >= 0.0 || quota <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(-self.tokens / quota)
            .unwrap_or(MAX_THROTTLE)
            .min(MAX_THROTTLE)
    }

    /// When it was last used (idle buckets are dropped).
    pub fn last_used(&self) -> Option<Instant> {
        self.refilled
    }

    fn refill(&mut self, quota: f64, now: Instant) {
        let burst = quota * BURST_SECS;
        self.tokens = match self.refilled {
            None => burst,
            Some(at) => {
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                (self.tokens + elapsed * quota).min(burst)
            }
        };
        self.refilled = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_a_client_to_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::default();
        // One second's worth passes at once; the next byte is debt.
        assert_eq!(bucket.record(1000.0, 1000.0, t0), Duration::ZERO);
        assert_eq!(bucket.record(500.0, 1000.0, t0), Duration::from_millis(500));
        // Half a second later the debt is repaid.
        assert_eq!(
            bucket.record(0.0, 1000.0, t0 + Duration::from_millis(500)),
            Duration::ZERO
        );
        // A client sending 2x its quota for 20 s gets through 20 s worth plus the burst.
        let mut bucket = TokenBucket::default();
        let mut at = t0;
        let mut sent = 0.0;
        let end = t0 + Duration::from_secs(20);
        while at < end {
            sent += 100.0;
            at += bucket
                .record(100.0, 1000.0, at)
                .max(Duration::from_millis(50));
        }
        assert!((20_000.0..=21_200.0).contains(&sent), "{sent}");
    }

    #[test]
    fn idle_time_refills_only_one_burst_and_debt_is_capped_per_wait() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::default();
        bucket.record(0.0, 100.0, t0);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(bucket.record(100.0, 100.0, later), Duration::ZERO);
        assert_eq!(bucket.record(1e9, 100.0, later), MAX_THROTTLE);
        // The debt outlives one throttle: it is still owed afterwards.
        let after = later + MAX_THROTTLE;
        assert_eq!(bucket.record(0.0, 100.0, after), MAX_THROTTLE);
    }
}
