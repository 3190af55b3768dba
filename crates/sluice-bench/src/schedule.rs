//! Open-loop send scheduling.
//!
//! Sends are due at fixed intervals from the start, whatever happened to earlier sends; a send
//! that starts late still counts its latency from when it was due. This is what keeps a stall
//! visible in the percentiles instead of silently lowering the offered load (coordinated
//! omission).

use std::time::{Duration, Instant};

/// The due times of an open-loop run at a fixed rate.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoopSchedule {
    start: Instant,
    interval_ns: f64,
    total: u64,
}

impl OpenLoopSchedule {
    /// A schedule of `rate` sends per second starting at `start` and lasting `length`.
    pub fn new(start: Instant, rate: f64, length: Duration) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        let total = (length.as_secs_f64() * rate).floor() as u64;
        OpenLoopSchedule {
            start,
            interval_ns: 1e9 / rate,
            total,
        }
    }

    /// Number of sends in the schedule.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True if the schedule has no sends (rate × length < 1).
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// When send number `seq` is due (computed from the start, so rounding never accumulates).
    pub fn due(&self, seq: u64) -> Instant {
        self.start + Duration::from_nanos((seq as f64 * self.interval_ns) as u64)
    }
}

/// Sleeps until `deadline`; returns at once if it has passed.
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

/// Lowers this thread's timer slack to 1 µs so scheduled sends are not delayed by the kernel's
/// default 50 µs slack (which would be counted as latency).
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer argument and affects only this thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("could not lower the timer slack; send times may be up to 50 µs late");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_evenly_spaced_from_start() {
        let start = Instant::now();
        let s = OpenLoopSchedule::new(start, 1000.0, Duration::from_secs(2));
        assert_eq!(s.len(), 2000);
        assert_eq!(s.due(0), start);
        assert_eq!(s.due(1) - start, Duration::from_millis(1));
        assert_eq!(s.due(1500) - start, Duration::from_millis(1500));
    }

    #[test]
    fn fractional_rates_do_not_drift() {
        let start = Instant::now();
        let s = OpenLoopSchedule::new(start, 3.0, Duration::from_secs(10));
        assert_eq!(s.len(), 30);
        let d = s.due(29) - start;
        // 29 / 3 s, within a nanosecond of rounding.
        assert!((d.as_secs_f64() - 29.0 / 3.0).abs() < 1e-6, "{d:?}");
    }

    #[test]
    fn invalid_rate_falls_back_to_one_per_second() {
        let s = OpenLoopSchedule::new(Instant::now(), 0.0, Duration::from_secs(3));
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
    }

    #[test]
    fn sleep_until_waits_at_least_until_deadline() {
        tighten_timer_slack();
        let deadline = Instant::now() + Duration::from_millis(5);
        sleep_until(deadline);
        assert!(Instant::now() >= deadline);
        // A past deadline returns immediately.
        let t = Instant::now();
        sleep_until(t - Duration::from_millis(1));
        assert!(t.elapsed() < Duration::from_millis(5));
    }
}
