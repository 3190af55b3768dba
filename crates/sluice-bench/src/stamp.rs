//! The timestamp header every benchmark payload starts with.
//!
//! The stamp lives in the payload rather than in a Kafka record header so that producing a
//! message needs no header allocation and works with brokers or proxies that drop headers.
//! Send times are nanoseconds on one process-wide monotonic clock, so producer and consumer
//! must run in the same process (as `sluice bench` does).

use std::sync::OnceLock;
use std::time::Instant;

/// Bytes taken by the stamp at the front of every payload.
pub const STAMP_LEN: usize = 32;

const MAGIC: u32 = u32::from_le_bytes(*b"SLBN");
const FLAG_WARMUP: u16 = 1;

/// What the producer wrote at the front of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Random tag of the run, so stale messages in a reused topic are ignored.
    pub run_tag: u64,
    /// Index of the payload size within the run's size list.
    pub size_index: u16,
    /// True for warm-up messages, which are excluded from the results.
    pub warmup: bool,
    /// Sequence number within the size.
    pub seq: u64,
    /// Time the send was due, in nanoseconds of [`now_ns`].
    pub due_ns: u64,
}

impl Stamp {
    /// Writes the stamp over the first [`STAMP_LEN`] bytes of `payload`; returns false if the
    /// payload is too short.
    pub fn write(&self, payload: &mut [u8]) -> bool {
        let Some(head) = payload.get_mut(..STAMP_LEN) else {
            return false;
        };
        let flags = if self.warmup { FLAG_WARMUP } else { 0 };
        head[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        head[4..6].copy_from_slice(&self.size_index.to_le_bytes());
        head[6..8].copy_from_slice(&flags.to_le_bytes());
        head[8..16].copy_from_slice(&self.run_tag.to_le_bytes());
        head[16..24].copy_from_slice(&self.seq.to_le_bytes());
        head[24..32].copy_from_slice(&self.due_ns.to_le_bytes());
        true
    }

    /// Reads a stamp from the front of a payload; `None` if it is not a benchmark payload.
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let head: &[u8; STAMP_LEN] = payload.get(..STAMP_LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[i..i + 8]);
            u64::from_le_bytes(b)
        };
        if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) != MAGIC {
            return None;
        }
        Some(Stamp {
            size_index: u16_at(4),
            warmup: u16_at(6) & FLAG_WARMUP != 0,
            run_tag: u64_at(8),
            seq: u64_at(16),
            due_ns: u64_at(24),
        })
    }
}

fn clock_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Nanoseconds since the process-wide benchmark clock started (monotonic).
pub fn now_ns() -> u64 {
    u64::try_from(clock_base().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Converts an [`Instant`] to nanoseconds on the [`now_ns`] clock (0 if before its start).
pub fn instant_ns(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(clock_base()).as_nanos()).unwrap_or(u64::MAX)
}

/// Builds a payload of `size` bytes whose body compresses roughly like text (about 2:1), so
/// compression benchmarks are neither trivial nor pointless.
pub fn build_payload(size: usize, seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8; 16] = b"etaoinshrdlucmfw";
    let mut state = seed | 1;
    (0..size)
        .map(|_| {
            // xorshift64: cheap, deterministic filler.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state & 15) as usize]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn stamp_roundtrips(run_tag: u64, size_index: u16, warmup: bool, seq: u64, due_ns: u64,
                            extra in 0usize..64) {
            let stamp = Stamp { run_tag, size_index, warmup, seq, due_ns };
            let mut buf = build_payload(STAMP_LEN + extra, 7);
            prop_assert!(stamp.write(&mut buf));
            prop_assert_eq!(Stamp::read(&buf), Some(stamp));
        }

        #[test]
        fn read_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Stamp::read(&bytes);
        }
    }

    #[test]
    fn short_or_foreign_payloads_are_rejected() {
        let stamp = Stamp {
            run_tag: 1,
            size_index: 0,
            warmup: false,
            seq: 2,
            due_ns: 3,
        };
        let mut short = vec![0u8; STAMP_LEN - 1];
        assert!(!stamp.write(&mut short));
        assert_eq!(Stamp::read(&short), None);
        assert_eq!(Stamp::read(&[0u8; 64]), None);
    }

    #[test]
    fn clock_is_monotonic() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        assert!(instant_ns(Instant::now()) >= b);
    }
}
