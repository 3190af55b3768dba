//! A token bucket per API key: `rate` tokens a second up to `burst`. A request takes one token
//! per record. One larger than the burst is served from a full bucket and leaves it in debt
//! (the balance goes negative), so big batches still pass and the caller then waits the debt
//! off.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A token bucket.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes `n` tokens, or says how long until some are available.
    pub(crate) fn take(&self, n: f64) -> Result<(), Duration> {
        self.take_at(n, Instant::now())
    }

    fn take_at(&self, n: f64, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock();
        let (tokens, last) = *state;
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let tokens = (tokens + elapsed * self.rate).min(self.burst);
        let need = n.min(self.burst);
        if tokens < need {
            *state = (tokens, now);
            let wait = (need - tokens) / self.rate;
            return Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX));
        }
        *state = (tokens - n, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_and_lets_one_large_batch_through() {
        let t0 = Instant::now();
        let bucket = TokenBucket::new(100.0, 100.0);
        bucket.take_at(250.0, t0).unwrap();
        let wait = bucket.take_at(1.0, t0).unwrap_err();
        assert!(wait >= Duration::from_millis(1500), "{wait:?}");
        assert!(bucket.take_at(1.0, t0 + Duration::from_secs(1)).is_err());
        let later = t0 + Duration::from_millis(1515);
        bucket.take_at(1.0, later).unwrap();
        // Not a record more than the balance holds.
        assert!(bucket.take_at(1.0, later).is_err());
    }

    #[test]
    fn never_holds_more_than_the_burst() {
        let t0 = Instant::now();
        let bucket = TokenBucket::new(10.0, 5.0);
        bucket.take_at(5.0, t0 + Duration::from_secs(60)).unwrap();
        assert!(bucket.take_at(1.0, t0 + Duration::from_secs(60)).is_err());
    }
}
