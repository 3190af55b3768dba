//! Property test: arbitrary bytes fed through the request path (framing, header decoding,
//! dispatch and body decoding) never panic or abort the broker; they either answer or are
//! refused with a reason.

// Test code: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use sluice_broker::handlers::SUPPORTED_APIS;
use sluice_broker::net::connection::start_request;
use sluice_broker::net::frame::take_frame;

/// A request frame: a real API key and a version near its supported range, then random bytes.
fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        0..SUPPORTED_APIS.len(),
        -1i16..=2,
        any::<i32>(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(api, version_offset, correlation, client_id, body)| {
            let (key, min, max) = SUPPORTED_APIS[api];
            let version = if version_offset < 0 {
                min - 1
            } else {
                (min + version_offset * (max - min) / 2).min(max + 1)
            };
            let mut frame = Vec::new();
            frame.extend_from_slice(&(key as i16).to_be_bytes());
            frame.extend_from_slice(&version.to_be_bytes());
            frame.extend_from_slice(&correlation.to_be_bytes());
            let len = i16::try_from(client_id.len()).unwrap_or(0);
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(&client_id);
            frame.extend_from_slice(&body);
            frame
        })
}

/// Valid encoded requests (without size prefix) to mutate: the hot-path APIs at several versions.
fn valid_frames() -> Vec<Vec<u8>> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::Compression;

    let topic = TopicName(StrBytes::from_static_str("fuzz"));
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic.clone())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(support::batch(
                    &[b"v1", b"v2"],
                    support::PLAIN,
                    0,
                    Compression::Lz4,
                )))])]);
    let fetch = FetchRequest::default()
        .with_max_wait_ms(5)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic)
            .with_partitions(vec![
                FetchPartition::default().with_partition_max_bytes(1 << 20)
            ])]);
    let mut encoder = support::Encoder::default();
    let mut frames = Vec::new();
    for version in [3, 9, 11] {
        frames.push(encoder.encode(&produce, version));
    }
    for version in [4, 11, 12] {
        frames.push(encoder.encode(&fetch, version));
    }
    for version in [0, 5, 12] {
        frames.push(encoder.encode(&MetadataRequest::default(), version));
    }
    frames
}

/// A valid request with random bytes overwritten and possibly truncated.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    let frames = valid_frames();
    (
        0..frames.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |(which, edits, cut, truncate)| {
            let mut frame = frames[which].clone();
            for (at, byte) in edits {
                let i = at.index(frame.len());
                frame[i] = byte;
            }
            if truncate {
                frame.truncate(cut.index(frame.len() + 1));
            }
            frame
        })
}

/// Cases per property: `default` in `cargo test`, more for a long local run with
/// `SLUICE_FUZZ_CASES=1000000 cargo test --release -p sluice-broker --test decode_fuzz`.
fn cases(default: u32) -> u32 {
    std::env::var("SLUICE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn framing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256), max in 0usize..512) {
        let mut buf = BytesMut::from(&bytes[..]);
        // Drains whole frames until more input is needed or the stream is refused.
        while let Ok(Some(frame)) = take_frame(&mut buf, max) {
            prop_assert!(frame.len() <= max);
        }
    }
}

#[test]
fn random_requests_never_panic_the_request_path() {
    let rt = runtime();
    let broker = rt.block_on(support::TestBroker::start());
    let shared = broker.handle.as_ref().expect("running").broker().clone();
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(3000),
        ..ProptestConfig::default()
    });
    let strategy = prop_oneof![
        mutated_frame(),
        plausible_frame(),
        prop::collection::vec(any::<u8>(), 0..128),
    ];
    runner
        .run(&strategy, |frame| {
            let mut buf = BytesMut::new();
            buf.put_i32(i32::try_from(frame.len()).unwrap_or(0));
            buf.extend_from_slice(&frame);
            let Ok(Some(frame)) = take_frame(&mut buf, 1 << 20) else {
                return Ok(());
            };
            if let Ok(request) = start_request(&shared, peer, Bytes::clone(&frame)) {
                // Some requests legitimately park (long-poll Fetch, JoinGroup waiting for a
                // rebalance) for as long as the random input asks; a client hanging up ends
                // them, which dropping the future after a short while simulates.
                let done = rt.block_on(async {
                    tokio::time::timeout(std::time::Duration::from_millis(500), request).await
                });
                if matches!(done, Ok(Ok(Some(_)))) {
                    answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(())
        })
        .expect("no input panics the request path");
    // Mutations of valid requests must often still decode and reach the handlers, or this
    // test would only exercise the header checks.
    let answered = answered.into_inner();
    assert!(answered > 100, "only {answered} requests reached a handler");
    drop(shared);
    let mut broker = broker;
    rt.block_on(broker.stop());
}
