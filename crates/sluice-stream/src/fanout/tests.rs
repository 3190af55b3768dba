//! Policies against in-memory destinations.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::metrics::StreamMetrics;
use crate::sinks::SinkOptions;
use crate::testing::Memory;

fn quick() -> SinkOptions {
    SinkOptions {
        linger: Duration::ZERO,
        max_attempts: 2,
        backoff: Duration::from_millis(1),
        ..SinkOptions::default()
    }
}

fn sink(name: &str, m: &Arc<Memory>) -> Sink {
    Sink::spawn(name, Arc::clone(m), quick(), &StreamMetrics::default())
}

fn down(m: &Arc<Memory>) {
    m.down.store(true, Ordering::SeqCst);
    m.permanent.store(true, Ordering::SeqCst);
}

#[tokio::test]
async fn all_needs_every_destination() {
    let (a, b) = (Arc::new(Memory::default()), Arc::new(Memory::default()));
    let fan = FanOut::new(vec![sink("a", &a), sink("b", &b)], Policy::All, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let report = fan.send(Event::new("1")).await.unwrap_or_default();
    assert_eq!(report.delivered.len(), 2);
    down(&b);
    let err = fan.send(Event::new("2")).await.err();
    let err = err.unwrap_or_else(|| panic!("b is down"));
    assert_eq!(err.failures.len(), 1);
    assert_eq!(err.failures[0].destination, "b");
    assert_eq!(err.delivered, vec!["a".to_owned()]);
    assert_eq!(a.values(), ["1", "2"]);
}

#[tokio::test]
async fn best_effort_dead_letters_with_the_error() {
    let (a, b, dlq) = (
        Arc::new(Memory::default()),
        Arc::new(Memory::default()),
        Arc::new(Memory::default()),
    );
    assert!(FanOut::new(vec![sink("a", &a)], Policy::BestEffort, None).is_err());
    let fan = FanOut::new(
        vec![sink("a", &a), sink("b", &b)],
        Policy::BestEffort,
        Some(sink("dlq", &dlq)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    down(&b);
    let report = fan
        .send(Event::new("x").with_key("k"))
        .await
        .unwrap_or_default();
    assert_eq!(report.delivered.len(), 1);
    assert_eq!(report.dead_lettered.len(), 1);
    let dead = dlq.received.lock().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value, "x");
    assert_eq!(dead[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(
        dead[0]
            .header(dead_letter_headers::DESTINATION)
            .map(|v| v.as_ref()),
        Some(&b"b"[..])
    );
    assert_eq!(
        dead[0]
            .header(dead_letter_headers::CODE)
            .map(|v| v.as_ref()),
        Some(&b"Refused"[..])
    );
    // The dead-letter destination failing too is an error, never a silent drop.
    down(&dlq);
    assert!(fan.send(Event::new("y")).await.is_err());
}

#[tokio::test]
async fn fallback_tries_in_order() {
    let (a, b) = (Arc::new(Memory::default()), Arc::new(Memory::default()));
    let fan = FanOut::new(vec![sink("a", &a), sink("b", &b)], Policy::Fallback, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let r = fan.send(Event::new("1")).await.unwrap_or_default();
    assert_eq!(r.delivered[0].0, "a");
    down(&a);
    let r = fan.send(Event::new("2")).await.unwrap_or_default();
    assert_eq!(r.delivered[0].0, "b");
    down(&b);
    let e = fan
        .send(Event::new("3"))
        .await
        .err()
        .map(|e| e.failures.len());
    assert_eq!(e, Some(2));
    assert_eq!(
        (a.values(), b.values()),
        (vec!["1".to_owned()], vec!["2".to_owned()])
    );
}

#[tokio::test]
async fn routes_send_to_a_subset() {
    let (a, b) = (Arc::new(Memory::default()), Arc::new(Memory::default()));
    let fan = FanOut::new(vec![sink("a", &a), sink("b", &b)], Policy::All, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let idx = fan.index_of("b").unwrap_or(usize::MAX);
    assert!(fan
        .enqueue_to(Event::new("only-b"), &[idx])
        .await
        .await
        .is_ok());
    assert!(fan
        .enqueue_to(Event::new("nowhere"), &[])
        .await
        .await
        .is_ok());
    assert!(a.values().is_empty());
    assert_eq!(b.values(), ["only-b"]);
}
