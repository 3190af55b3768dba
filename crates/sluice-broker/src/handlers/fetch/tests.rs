//! The fetch response encoder must write exactly what `kafka-protocol` writes (clients parse
//! it), whether records come from memory or stay in segment files.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;

use super::encode::{encode, FetchReply};

type GenPartition = (i32, i16, i64, Option<Vec<(i64, i64)>>, Option<Vec<u8>>);

fn partition_strategy() -> impl Strategy<Value = GenPartition> {
    (
        any::<i32>(),
        any::<i16>(),
        any::<i64>(),
        proptest::option::of(proptest::collection::vec(any::<(i64, i64)>(), 0..3)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
    )
}

fn response_strategy() -> impl Strategy<Value = (i32, i16, i32, Vec<(String, Vec<GenPartition>)>)> {
    (
        any::<i32>(),
        any::<i16>(),
        any::<i32>(),
        proptest::collection::vec(
            (
                "[a-z._-]{0,200}",
                proptest::collection::vec(partition_strategy(), 0..4),
            ),
            0..4,
        ),
    )
}

fn build(
    (throttle, error, session, topics): (i32, i16, i32, Vec<(String, Vec<GenPartition>)>),
    version: i16,
) -> FetchResponse {
    let responses = topics
        .into_iter()
        .map(|(name, partitions)| {
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_string(name)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, error, hw, aborted, records)| {
                            PartitionData::default()
                                .with_partition_index(index)
                                .with_error_code(error)
                                .with_high_watermark(hw)
                                .with_last_stable_offset(hw.wrapping_sub(1))
                                .with_log_start_offset(hw / 2)
                                .with_preferred_read_replica(BrokerId(if version >= 11 {
                                    index % 3 - 1
                                } else {
                                    -1
                                }))
                                .with_aborted_transactions(aborted.map(|list| {
                                    list.into_iter()
                                        .map(|(pid, first)| {
                                            AbortedTransaction::default()
                                                .with_producer_id(ProducerId(pid))
                                                .with_first_offset(first)
                                        })
                                        .collect()
                                }))
                                .with_records(records.map(Bytes::from))
                        })
                        .collect(),
                )
        })
        .collect();
    FetchResponse::default()
        .with_throttle_time_ms(throttle)
        .with_error_code(if version >= 7 { error } else { 0 })
        .with_session_id(if version >= 7 { session } else { 0 })
        .with_responses(responses)
}

fn reference(response: &FetchResponse, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    response
        .encode(&mut buf, version)
        .expect("kafka-protocol encodes");
    buf.to_vec()
}

proptest! {
    #[test]
    fn in_memory_records_encode_like_kafka_protocol(generated in response_strategy(), version in 4i16..=12) {
        let response = build(generated, version);
        let reply = FetchReply { response, files: Vec::new() };
        let ours = encode(&reply, version, BytesMut::new()).expect("encodes");
        let bytes = ours.to_bytes().expect("in memory");
        prop_assert_eq!(ours.len(), bytes.len());
        prop_assert_eq!(bytes.to_vec(), reference(&reply.response, version));
    }
}

/// Records left in a segment file go out exactly as if they had been read into the response.
#[test]
fn file_records_encode_like_read_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log =
        sluice_log::PartitionLog::open(dir.path(), sluice_log::LogConfig::default()).expect("log");
    for value in [&b"first"[..], b"second", b"third"] {
        let batch = crate::test_support::record_batch(value);
        log.append(batch, 1).expect("append");
    }
    let read = log.read(1, 1 << 20).expect("plan");
    let in_memory = read.read().expect("read");
    assert!(!in_memory.is_empty());
    for version in 4..=12 {
        let partition = |records: Option<Bytes>| {
            PartitionData::default()
                .with_partition_index(0)
                .with_high_watermark(3)
                .with_records(records)
        };
        let topic = |records: Option<Bytes>| {
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![partition(Some(Bytes::new())), partition(records)])
        };
        let from_files = FetchReply {
            response: FetchResponse::default().with_responses(vec![topic(None)]),
            files: vec![(0, 1, log.read(1, 1 << 20).expect("plan"))],
        };
        let encoded = encode(&from_files, version, BytesMut::new()).expect("encodes");
        assert!(encoded
            .parts()
            .iter()
            .any(|p| matches!(p, crate::handlers::response::Part::File(_))));
        let expected =
            FetchResponse::default().with_responses(vec![topic(Some(in_memory.clone()))]);
        assert_eq!(
            encoded.to_bytes().expect("read").to_vec(),
            reference(&expected, version),
            "v{version}"
        );
    }
}

/// Records for a partition the response does not have are a bug, reported rather than
/// silently dropped.
#[test]
fn files_for_missing_partitions_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log =
        sluice_log::PartitionLog::open(dir.path(), sluice_log::LogConfig::default()).expect("log");
    let reply = FetchReply {
        response: FetchResponse::default(),
        files: vec![(0, 0, log.read(0, 100).expect("plan"))],
    };
    assert!(encode(&reply, 12, BytesMut::new()).is_err());
}
