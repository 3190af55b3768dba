//! Test helpers: an in-memory destination that keeps what it is sent and fails while told to,
//! and arbitrary AWS-shaped answers for property tests.

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

/// Arbitrary JSON shaped like AWS batch answers (their field names, any types), for property
/// tests of the answer readers.
pub(crate) fn json_answer() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        (-3i64..20).prop_map(|n| serde_json::json!(n)),
        "[0-9a-z]{0,3}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("Id".to_owned()),
                    Just("Successful".to_owned()),
                    Just("Failed".to_owned()),
                    Just("Code".to_owned()),
                    Just("SenderFault".to_owned()),
                    Just("Records".to_owned()),
                    Just("ErrorCode".to_owned()),
                    Just("SequenceNumber".to_owned()),
                    Just("ShardId".to_owned())
                ],
                inner,
                0..5,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
