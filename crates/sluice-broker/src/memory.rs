//! Broker-wide memory budgets: bytes that requests may hold at once, shared by all connections.
//!
//! A budget is a semaphore counting bytes. Large request bodies being read, requests being
//! processed and fetch responses being assembled hold a [`Reservation`], and wait when the
//! budget is spent, so the broker's memory for in-flight work stays bounded however many
//! clients ask at once (Kafka's `queued.max.request.bytes`; Redpanda bounds fetch memory the
//! same way).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A pool of bytes that reservations draw from.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// Bytes held from a [`MemoryBudget`] until dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    /// A budget of `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        MemoryBudget {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// How many permits a request for `bytes` takes: a request larger than the whole budget
    /// takes the whole budget (it could never run otherwise).
    fn permits_for(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.min(self.capacity)).unwrap_or(u32::MAX)
    }

    /// Waits until `bytes` are free and holds them.
    pub async fn reserve(&self, bytes: usize) -> Reservation {
        if bytes == 0 {
            return Reservation::default();
        }
        Reservation {
            // The semaphore is never closed, so acquiring only fails after a bug elsewhere;
            // then the request goes on without holding bytes rather than failing.
            permit: self
                .permits
                .clone()
                .acquire_many_owned(self.permits_for(bytes))
                .await
                .ok(),
        }
    }

    /// Holds `bytes` if they are free right now.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        if bytes == 0 {
            return Some(Reservation::default());
        }
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(self.permits_for(bytes))
            .ok()?;
        Some(Reservation {
            permit: Some(permit),
        })
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Adds `other`'s bytes to this reservation.
    pub fn merge(&mut self, other: Reservation) {
        match (&mut self.permit, other.permit) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
    }

    /// Moves up to `bytes` of this reservation into a new one.
    pub fn split(&mut self, bytes: usize) -> Reservation {
        let n = bytes.min(self.bytes());
        if n == 0 {
            return Reservation::default();
        }
        Reservation {
            permit: self.permit.as_mut().and_then(|p| p.split(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_released_bytes() {
        let budget = MemoryBudget::new(100);
        let a = budget.reserve(70).await;
        assert_eq!(budget.available(), 30);
        assert!(budget.try_reserve(31).is_none());
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(50).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        let b = waiting.await.unwrap();
        assert_eq!(budget.available(), 50);
        drop(b);
        // Larger than the whole budget: takes all of it instead of waiting forever.
        let all = budget.reserve(1_000).await;
        assert_eq!(budget.available(), 0);
        drop(all);
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test]
    async fn reservations_merge_and_split() {
        let budget = MemoryBudget::new(100);
        let mut held = budget.try_reserve(10).unwrap();
        held.merge(budget.try_reserve(20).unwrap());
        assert_eq!(held.bytes(), 30);
        let part = held.split(25);
        assert_eq!((part.bytes(), held.bytes()), (25, 5));
        drop(part);
        assert_eq!(budget.available(), 95);
        assert_eq!(held.split(50).bytes(), 5);
    }
}
