//! The driver against a scripted service: partial failures, permanent failures, limits,
//! order, back-pressure and shutdown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::*;

/// A service that fails records by script: `fail[value]` = remaining transient failures;
/// values starting with `bad` fail permanently; it records every request.
#[derive(Default)]
struct Scripted {
    fail: Mutex<BTreeMap<String, u32>>,
    requests: Mutex<Vec<Vec<String>>>,
    whole_request_failures: AtomicUsize,
    gate: Option<Arc<Semaphore>>,
}

impl Service for Arc<Scripted> {
    fn kind(&self) -> &'static str {
        "test"
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: 3,
            max_bytes: 10,
        }
    }

    fn check(&self, event: &Event) -> Result<usize, Failure> {
        if event.value.len() > 10 {
            return Err(Failure::permanent("TooLarge", "over 10 bytes"));
        }
        Ok(event.value.len())
    }

    async fn send(&self, batch: &[Event]) -> Result<Vec<Result<Receipt, Failure>>, Failure> {
        if batch.len() > 1 && batch.iter().any(|e| e.value.starts_with(b"poison")) {
            return Err(Failure::permanent(
                "InvalidParameterValue",
                "one entry is invalid",
            ));
        }
        if let Some(gate) = &self.gate {
            let _ = gate.acquire().await.map(|p| p.forget());
        }
        let values: Vec<String> = batch
            .iter()
            .map(|e| String::from_utf8_lossy(&e.value).into_owned())
            .collect();
        self.requests.lock().push(values.clone());
        if self
            .whole_request_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Failure::transient("ServiceUnavailable", "try later"));
        }
        let mut fail = self.fail.lock();
        Ok(values
            .iter()
            .map(|v| {
                if v.starts_with("bad") {
                    return Err(Failure::permanent("Invalid", "bad record"));
                }
                match fail.get_mut(v) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        Err(Failure::transient("Throttled", "slow down"))
                    }
                    _ => Ok(Receipt {
                        id: Some(format!("id-{v}")),
                    }),
                }
            })
            .collect())
    }
}

fn fast() -> SinkOptions {
    SinkOptions {
        linger: Duration::from_millis(2),
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        ..SinkOptions::default()
    }
}

fn ev(v: &str) -> Event {
    Event::new(v.as_bytes().to_vec())
}

#[tokio::test]
async fn partial_failures_are_retried_until_delivered() {
    let svc = Arc::new(Scripted::default());
    svc.fail.lock().insert("b".into(), 2);
    svc.whole_request_failures.store(1, Ordering::SeqCst);
    let sink = Sink::spawn("t", Arc::clone(&svc), fast(), &StreamMetrics::default());
    let mut waits = Vec::new();
    for v in ["a", "b", "c"] {
        waits.push(sink.enqueue(ev(v)).await);
    }
    for (w, v) in waits.into_iter().zip(["a", "b", "c"]) {
        let r = w.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.id, Some(format!("id-{v}")));
    }
    assert_eq!(sink.metrics().sent.get(), 3);
    // 1 whole-request failure × 3 records + 2 record failures of "b".
    assert_eq!(sink.metrics().retried.get(), 5);
    assert_eq!(sink.metrics().buffered.get(), 0);
    let sent: usize = svc.requests.lock().iter().map(Vec::len).sum();
    assert_eq!(sent, 3 + 3 + 1 + 1);
}

#[tokio::test]
async fn permanent_failures_are_not_retried_and_checks_fail_early() {
    let svc = Arc::new(Scripted::default());
    let sink = Sink::spawn("t", Arc::clone(&svc), fast(), &StreamMetrics::default());
    let e = sink.send(ev("bad1")).await.err();
    assert_eq!(
        e.as_ref().map(|e| (e.failure.code.as_str(), e.attempts)),
        Some(("Invalid", 1))
    );
    let e = sink.send(ev("waytoolongvalue")).await.err();
    assert_eq!(
        e.as_ref().map(|e| (e.failure.code.as_str(), e.attempts)),
        Some(("TooLarge", 0))
    );
    assert_eq!(
        svc.requests.lock().len(),
        1,
        "the oversized record was never sent"
    );
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let svc = Arc::new(Scripted::default());
    svc.fail.lock().insert("x".into(), 100);
    let opts = SinkOptions {
        max_attempts: 3,
        ..fast()
    };
    let sink = Sink::spawn("t", Arc::clone(&svc), opts, &StreamMetrics::default());
    let e = sink.send(ev("x")).await.err();
    assert_eq!(
        e.map(|e| (e.failure.code, e.attempts)),
        Some(("Throttled".into(), 3))
    );
}

#[tokio::test]
async fn batches_respect_record_and_byte_limits() {
    let svc = Arc::new(Scripted::default());
    let opts = SinkOptions {
        linger: Duration::from_millis(50),
        ..fast()
    };
    let sink = Sink::spawn("t", Arc::clone(&svc), opts, &StreamMetrics::default());
    let mut waits = Vec::new();
    for v in ["1", "2", "3", "4", "55555", "666666", "7"] {
        waits.push(sink.enqueue(ev(v)).await);
    }
    for w in waits {
        assert!(w.await.is_ok());
    }
    for req in svc.requests.lock().iter() {
        assert!(req.len() <= 3, "{req:?}");
        assert!(req.iter().map(String::len).sum::<usize>() <= 10, "{req:?}");
    }
}

#[tokio::test]
async fn ordered_mode_keeps_acceptance_order_across_retries() {
    let svc = Arc::new(Scripted::default());
    svc.fail.lock().insert("2".into(), 2);
    let opts = SinkOptions {
        ordered: true,
        linger: Duration::ZERO,
        ..fast()
    };
    let sink = Sink::spawn("t", Arc::clone(&svc), opts, &StreamMetrics::default());
    let mut waits = Vec::new();
    for i in 1..=9 {
        waits.push(sink.enqueue(ev(&i.to_string())).await);
    }
    for w in waits {
        assert!(w.await.is_ok());
    }
    let reqs = svc.requests.lock().clone();
    let mut delivered: Vec<String> = reqs.iter().flatten().cloned().collect();
    delivered.sort();
    delivered.dedup();
    assert_eq!(
        delivered,
        (1..=9).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    let last_2 = reqs
        .iter()
        .rposition(|r| r.contains(&"2".to_owned()))
        .unwrap_or(0);
    let first_2 = reqs
        .iter()
        .position(|r| r.contains(&"2".to_owned()))
        .unwrap_or(0);
    for r in &reqs[first_2 + 1..last_2] {
        assert_eq!(
            r,
            &vec!["2".to_owned()],
            "only the retry goes out while it waits: {reqs:?}"
        );
    }
}

#[tokio::test]
async fn a_stalled_destination_pushes_back_within_the_buffer() {
    let gate = Arc::new(Semaphore::new(0));
    let svc = Arc::new(Scripted {
        gate: Some(Arc::clone(&gate)),
        ..Scripted::default()
    });
    let opts = SinkOptions {
        buffer_bytes: 4 * (OVERHEAD + 1),
        max_in_flight: 1,
        ..fast()
    };
    let sink = Sink::spawn("t", Arc::clone(&svc), opts, &StreamMetrics::default());
    let mut waits = Vec::new();
    for i in 0..4 {
        waits.push(sink.enqueue(ev(&i.to_string())).await);
    }
    // The fifth does not fit until something is acknowledged.
    let blocked = tokio::time::timeout(Duration::from_millis(100), sink.enqueue(ev("5"))).await;
    assert!(blocked.is_err(), "the buffer is bounded");
    assert_eq!(sink.metrics().buffered.get(), 4);
    gate.add_permits(1000);
    for w in waits {
        assert!(w.await.is_ok());
    }
    assert!(sink.send(ev("5")).await.is_ok());
}

#[tokio::test]
async fn dropping_every_handle_still_answers_every_event() {
    let svc = Arc::new(Scripted::default());
    svc.fail.lock().insert("r".into(), 1);
    let sink = Sink::spawn("t", Arc::clone(&svc), fast(), &StreamMetrics::default());
    let a = sink.enqueue(ev("r")).await;
    let b = sink.enqueue(ev("s")).await;
    drop(sink);
    assert!(a.await.is_ok());
    assert!(b.await.is_ok());
}

#[tokio::test]
async fn a_request_refused_as_a_whole_is_split_to_find_the_bad_record() {
    let svc = Arc::new(Scripted::default());
    let opts = SinkOptions {
        linger: Duration::from_millis(30),
        ..fast()
    };
    let sink = Sink::spawn("t", Arc::clone(&svc), opts, &StreamMetrics::default());
    let a = sink.enqueue(ev("a")).await;
    let poison = sink.enqueue(ev("poison")).await;
    let c = sink.enqueue(ev("c")).await;
    assert!(a.await.is_ok());
    assert!(c.await.is_ok());
    // Alone, the poison record passes this service; what matters is that it went alone.
    assert!(poison.await.is_ok());
    let reqs = svc.requests.lock().clone();
    assert!(
        reqs.iter()
            .filter(|r| r.contains(&"poison".to_owned()))
            .all(|r| r.len() == 1),
        "{reqs:?}"
    );
    assert_eq!(sink.metrics().retried.get(), 0, "isolating is not a retry");
}
