//! End-to-end tests of the broker core against a real broker on a loopback port.

mod support;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse,
    InitProducerIdRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest, ProduceResponse,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::Compression;
use support::{batch, decode_records, Client, Producer, TestBroker, PLAIN};

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    min_bytes: i32,
    max_wait_ms: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(10 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

/// Error code and base offset of the single partition in a produce response.
fn produced(resp: &ProduceResponse) -> (i16, i64) {
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

async fn fetch_all(
    client: &mut Client,
    topic: &str,
    offset: i64,
) -> (FetchResponse, Vec<(i64, Option<Bytes>, Option<Bytes>)>) {
    let resp = client
        .request(&fetch_request(topic, 0, offset, 0, 0), 12)
        .await;
    let records = resp.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let decoded = decode_records(&records);
    (resp, decoded)
}

#[tokio::test]
async fn produce_fetch_round_trip_with_every_codec() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let meta = client
        .request(
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic_name("rt")))
                ]))
                .with_allow_auto_topic_creation(true),
            12,
        )
        .await;
    assert_eq!(meta.topics[0].error_code, 0, "auto-created");
    assert_eq!(meta.topics[0].partitions.len(), 1);
    assert_eq!(meta.brokers[0].port, i32::from(broker.addr.port()));

    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut sent = Vec::new();
    for (i, codec) in codecs.iter().enumerate() {
        let values: Vec<Vec<u8>> = (0..10).map(|j| format!("v{i}-{j}").into_bytes()).collect();
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let resp = client
            .request(
                &produce_request("rt", 0, batch(&refs, PLAIN, 0, *codec), -1),
                9,
            )
            .await;
        assert_eq!(produced(&resp), (0, i64::try_from(i * 10).unwrap()));
        sent.extend(values);
    }
    let (resp, records) = fetch_all(&mut client, "rt", 0).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(
        (
            p.error_code,
            p.high_watermark,
            p.last_stable_offset,
            p.log_start_offset
        ),
        (0, 50, 50, 0)
    );
    let values: Vec<Vec<u8>> = records
        .iter()
        .map(|r| r.2.clone().unwrap().to_vec())
        .collect();
    assert_eq!(values, sent);
    assert!(records
        .iter()
        .enumerate()
        .all(|(i, r)| r.0 == i64::try_from(i).unwrap()));

    // Reading in the middle of the log starts at the batch holding the offset.
    let (_, tail) = fetch_all(&mut client, "rt", 45).await;
    assert!(tail.iter().any(|r| r.0 == 45));

    // Out of range.
    let resp = client.request(&fetch_request("rt", 0, 51, 0, 0), 12).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);

    // Restart keeps data.
    broker.restart().await;
    let mut client = broker.client().await;
    let (_, again) = fetch_all(&mut client, "rt", 0).await;
    assert_eq!(again, records);
    broker.stop().await;
}

#[tokio::test]
async fn pipelined_idempotent_produces_keep_order_and_dedupe() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let pid = client
        .request(
            &InitProducerIdRequest::default().with_transactional_id(None),
            4,
        )
        .await;
    assert_eq!(pid.error_code, 0);
    let producer = Producer {
        id: pid.producer_id.0,
        epoch: pid.producer_epoch,
    };

    // Many acks=-1 requests without waiting: all must append in order.
    let n = 40;
    let mut ids = Vec::new();
    for i in 0..n {
        let b = batch(&[b"a", b"b"], producer, i * 2, Compression::None);
        ids.push(client.send(&produce_request("idem", 0, b, -1), 9).await);
    }
    let rounds_before = broker
        .handle
        .as_ref()
        .unwrap()
        .broker()
        .flusher
        .sync_rounds();
    for (i, id) in ids.into_iter().enumerate() {
        let resp = client.recv::<ProduceRequest>(9, id).await;
        assert_eq!(
            produced(&resp),
            (0, i64::try_from(i * 2).unwrap()),
            "request {i}"
        );
    }
    // Group commit: pipelined acks=-1 requests share fsyncs instead of taking one each.
    let rounds = broker
        .handle
        .as_ref()
        .unwrap()
        .broker()
        .flusher
        .sync_rounds()
        - rounds_before;
    assert!(
        rounds < u64::try_from(n).unwrap(),
        "{rounds} fsync rounds for {n} requests"
    );
    // A retried batch (one of the last five, as Kafka remembers) is acknowledged with its
    // original offset and not appended again.
    let dup = client
        .request(
            &produce_request(
                "idem",
                0,
                batch(&[b"a", b"b"], producer, 76, Compression::None),
                -1,
            ),
            9,
        )
        .await;
    assert_eq!(produced(&dup), (0, 76));
    // A gap is refused.
    let gap = client
        .request(
            &produce_request(
                "idem",
                0,
                batch(&[b"z"], producer, 1000, Compression::None),
                -1,
            ),
            9,
        )
        .await;
    assert_eq!(produced(&gap).0, 45);
    let (_, records) = fetch_all(&mut client, "idem", 0).await;
    assert_eq!(records.len(), 80);
    broker.stop().await;
}

#[tokio::test]
async fn long_poll_fetch_is_woken_by_produce() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client
        .request(
            &produce_request("lp", 0, batch(&[b"first"], PLAIN, 0, Compression::None), 1),
            9,
        )
        .await;
    let started = Instant::now();
    let id = client.send(&fetch_request("lp", 0, 1, 1, 15_000), 12).await;
    let addr = broker.addr;
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut other = Client::connect(addr).await;
        other
            .request(
                &produce_request("lp", 0, batch(&[b"second"], PLAIN, 0, Compression::None), 1),
                9,
            )
            .await
    });
    let resp = client.recv::<FetchRequest>(12, id).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "parked until the produce ({elapsed:?})"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "woken by the append, not the timeout ({elapsed:?})"
    );
    let records = decode_records(resp.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(records[0].2.as_deref(), Some(&b"second"[..]));
    assert_eq!(produced(&producer.await.unwrap()), (0, 1));

    // With nothing arriving, the fetch answers empty after max_wait.
    let started = Instant::now();
    let resp = client.request(&fetch_request("lp", 0, 2, 1, 300), 12).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(resp.responses[0].partitions[0]
        .records
        .as_ref()
        .is_none_or(|r| r.is_empty()));
    broker.stop().await;
}

#[tokio::test]
async fn acks_zero_gets_no_response_and_order_is_kept() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client
        .send(
            &produce_request("a0", 0, batch(&[b"x"], PLAIN, 0, Compression::None), 0),
            9,
        )
        .await;
    let resp = client
        .request(
            &produce_request("a0", 0, batch(&[b"y"], PLAIN, 0, Compression::None), 1),
            9,
        )
        .await;
    assert_eq!(produced(&resp), (0, 1));
    broker.stop().await;
}

#[tokio::test]
async fn bad_batches_are_refused_and_the_log_stays_intact() {
    let mut broker = TestBroker::start_with(|c| c.log_defaults.max_message_bytes = 2048).await;
    let mut client = broker.client().await;
    client
        .request(
            &produce_request("bad", 0, batch(&[b"ok"], PLAIN, 0, Compression::None), -1),
            9,
        )
        .await;
    let mut corrupt = BytesMut::from(&batch(&[b"payload"], PLAIN, 0, Compression::None)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let resp = client
        .request(&produce_request("bad", 0, corrupt.freeze(), -1), 9)
        .await;
    assert_eq!(produced(&resp).0, 2, "CORRUPT_MESSAGE");
    let big = vec![7u8; 4096];
    let resp = client
        .request(
            &produce_request("bad", 0, batch(&[&big], PLAIN, 0, Compression::None), -1),
            9,
        )
        .await;
    assert_eq!(produced(&resp).0, 10, "MESSAGE_TOO_LARGE");
    let (_, records) = fetch_all(&mut client, "bad", 0).await;
    assert_eq!(records.len(), 1);
    broker.stop().await;
}

#[tokio::test]
async fn oversized_and_negative_frames_close_the_connection() {
    let mut broker = TestBroker::start_with(|c| c.socket_request_max_bytes = 1024).await;
    let mut client = broker.client().await;
    let mut frame = BytesMut::new();
    frame.put_i32(4096);
    frame.put_bytes(0, 64);
    let _ = client.send_raw(&frame).await;
    assert!(client.is_closed().await, "oversized frame closes");

    let mut client = broker.client().await;
    let _ = client.send_raw(&(-5i32).to_be_bytes()).await;
    assert!(client.is_closed().await, "negative size closes");

    // Garbage headers: too short, unknown api key, truncated client id.
    for garbage in [
        &[1u8, 2, 3][..],
        &[0x7f, 0x7f, 0, 0, 0, 0, 0, 1],
        &[0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0x7f],
    ] {
        let mut client = broker.client().await;
        let mut frame = BytesMut::new();
        frame.put_i32(i32::try_from(garbage.len()).unwrap());
        frame.extend_from_slice(garbage);
        let _ = client.send_raw(&frame).await;
        assert!(client.is_closed().await, "garbage {garbage:?} closes");
    }

    // The broker still serves.
    let mut client = broker.client().await;
    let versions = client.request(&ApiVersionsRequest::default(), 3).await;
    assert_eq!(versions.error_code, 0);
    broker.stop().await;
}

#[tokio::test]
async fn api_versions_with_unsupported_version_answers_v0_error() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let (id, frame) = client.encode(&ApiVersionsRequest::default(), 3);
    let mut frame = frame.to_vec();
    // Patch the version field (after the size prefix and api key) to 99.
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    client.send_raw(&frame).await.unwrap();
    let mut body = client.read_frame().await.expect("answered");
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    assert_eq!(header.correlation_id, id);
    let resp = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(resp.error_code, 35);
    assert!(resp
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));

    // An unsupported version of another API closes the connection.
    let mut client = broker.client().await;
    let (_, frame) = client.encode(&MetadataRequest::default(), 12);
    let mut frame = frame.to_vec();
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    client.send_raw(&frame).await.unwrap();
    assert!(client.is_closed().await);
    broker.stop().await;
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_timestamp() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client
        .request(
            &produce_request(
                "lo",
                0,
                batch(&[b"a", b"b", b"c"], PLAIN, 0, Compression::None),
                // acks=-1: LATEST is the high watermark, which moves once the data is fsynced.
                -1,
            ),
            9,
        )
        .await;
    let query = |ts: i64| {
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name("lo"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(ts)])])
    };
    let offset =
        |r: &kafka_protocol::messages::ListOffsetsResponse| r.topics[0].partitions[0].offset;
    assert_eq!(offset(&client.request(&query(-2), 7).await), 0);
    assert_eq!(offset(&client.request(&query(-1), 7).await), 3);
    // support::batch stamps 1_700_000_000_000 + i.
    assert_eq!(
        offset(&client.request(&query(1_700_000_000_001), 7).await),
        1
    );
    assert_eq!(offset(&client.request(&query(-3), 7).await), 2);
    assert_eq!(
        offset(&client.request(&query(1_800_000_000_000), 1).await),
        -1
    );
    broker.stop().await;
}

#[tokio::test]
async fn producer_ids_are_not_reused_after_restart() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let req = InitProducerIdRequest::default().with_transactional_id(None);
    let first = client.request(&req, 4).await.producer_id.0;
    broker.restart().await;
    let mut client = broker.client().await;
    let second = client.request(&req, 4).await.producer_id.0;
    assert!(second > first, "{second} > {first}");
    let bumped = client
        .request(
            &req.clone()
                .with_producer_id(second.into())
                .with_producer_epoch(0),
            4,
        )
        .await;
    assert_eq!((bumped.producer_id.0, bumped.producer_epoch), (second, 1));
    // Transactional producers draw from the same allocator.
    let txn = client
        .request(
            &req.clone()
                .with_transactional_id(Some(StrBytes::from_static_str("t").into()))
                .with_transaction_timeout_ms(60_000),
            4,
        )
        .await;
    assert_eq!(txn.error_code, 0);
    assert!(txn.producer_id.0 > second);
    broker.stop().await;
}

#[tokio::test]
async fn failed_acks_zero_produce_closes_the_connection() {
    let mut broker = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let mut client = broker.client().await;
    client
        .send(
            &produce_request("missing", 0, batch(&[b"x"], PLAIN, 0, Compression::None), 0),
            9,
        )
        .await;
    assert!(client.is_closed().await);
    broker.stop().await;
}

#[tokio::test]
async fn shutdown_answers_parked_fetches_and_closes_promptly() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client
        .request(
            &produce_request("sd", 0, batch(&[b"a"], PLAIN, 0, Compression::None), 1),
            9,
        )
        .await;
    let id = client.send(&fetch_request("sd", 0, 1, 1, 60_000), 12).await;
    // Let the fetch park before shutting down.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let handle = broker.handle.take().unwrap();
    let shutdown = tokio::spawn(handle.shutdown());
    let resp = client.recv::<FetchRequest>(12, id).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);
    shutdown.await.unwrap().expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(client.is_closed().await);
}
