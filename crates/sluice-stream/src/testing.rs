//! An in-memory destination for tests: keeps what it is sent, fails while told to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::event::Event;
use crate::sinks::{BatchLimits, Failure, Receipt, Service};

/// Events received, and a switch that makes every send fail (retriably or not).
#[derive(Default)]
pub(crate) struct Memory {
    pub(crate) received: Mutex<Vec<Event>>,
    pub(crate) down: AtomicBool,
    pub(crate) permanent: AtomicBool,
}

impl Memory {
    pub(crate) fn values(&self) -> Vec<String> {
        self.received
            .lock()
            .iter()
            .map(|e| String::from_utf8_lossy(&e.value).into_owned())
            .collect()
    }
}

impl Service for Arc<Memory> {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: 100,
            max_bytes: 1 << 20,
        }
    }

    fn check(&self, event: &Event) -> Result<usize, Failure> {
        Ok(event.size())
    }

    async fn send(&self, batch: &[Event]) -> Result<Vec<Result<Receipt, Failure>>, Failure> {
        if self.down.load(Ordering::SeqCst) {
            let f = if self.permanent.load(Ordering::SeqCst) {
                Failure::permanent("Refused", "refused")
            } else {
                Failure::transient("Unavailable", "down")
            };
            return Err(f);
        }
        self.received.lock().extend(batch.iter().cloned());
        Ok(batch.iter().map(|_| Ok(Receipt::default())).collect())
    }
}
