//! Round trips against a real in-process broker and registry: protobuf with an import (typed and
//! dynamic), Avro, JSON, header filtering, the audit, dead-lettering and registry errors.

mod support;

use std::time::Duration;

use prost_reflect::{ReflectMessage, Value};
use sluice_sdk::{Consumer, DynamicValue, Error, Producer, RetryPolicy, SubjectStrategy};
use support::{next, order, Env, Payment, Shipment};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_round_trip_with_import() {
    let env = Env::full().await;
    let producer = Producer::new(env.config("orders-svc")).unwrap();
    for i in 0..3 {
        producer
            .send(
                "orders",
                Some(format!("k{i}").as_bytes()),
                &order(&format!("o{i}"), 10),
            )
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
    }
    // The import is registered under its file name and referenced by the topic subject.
    let reg = reqwest::get(format!(
        "{}/subjects/orders-value/versions/1",
        env.registry_url
    ))
    .await
    .unwrap()
    .json::<serde_json::Value>()
    .await
    .unwrap();
    assert_eq!(reg["references"][0]["name"], "shop/money.proto", "{reg}");
    assert_eq!(reg["references"][0]["subject"], "shop/money.proto", "{reg}");

    let consumer = Consumer::new(env.config("reader"), "g-proto", &["orders"]).unwrap();
    for i in 0..3u64 {
        let r = next(&consumer).await;
        assert_eq!(&r.payload[..1], &[0]);
        let p = &r.provenance;
        assert_eq!(p.service_id.as_deref(), Some("orders-svc"));
        assert_eq!(p.event_type.as_deref(), Some("shop.Order"));
        assert_eq!(p.producer_seq, Some(i));
        let id = uuid::Uuid::parse_str(p.event_id.as_deref().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let typed: support::Order = consumer.decode(&r).await.unwrap();
        assert_eq!(typed, order(&format!("o{i}"), 10));
        let DynamicValue::Protobuf(dynamic) = consumer.decode_dynamic(&r).await.unwrap() else {
            panic!("expected a protobuf value");
        };
        assert_eq!(dynamic.descriptor().full_name(), "shop.Order");
        assert_eq!(
            dynamic.get_field_by_name("id").as_deref(),
            Some(&Value::String(format!("o{i}")))
        );
        let total = dynamic.get_field_by_name("total").unwrap();
        let total = total.as_message().unwrap();
        assert_eq!(
            total.get_field_by_name("cents").as_deref(),
            Some(&Value::I64(1999))
        );
    }
    assert_eq!(consumer.metrics().decoded, 6);
    drop((producer, consumer));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_and_json_round_trips() {
    let env = Env::full().await;
    let producer = Producer::new(env.config("pay-svc")).unwrap();
    let pay = Payment {
        id: "p1".into(),
        amount: 42,
        memo: Some("thanks".into()),
    };
    let ship = Shipment {
        id: "s1".into(),
        carrier: "dhl".into(),
    };
    producer.send_avro("payments", None, &pay).await.unwrap();
    producer.send_json("shipments", None, &ship).await.unwrap();

    let c = Consumer::new(env.config("reader"), "g-avro", &["payments"]).unwrap();
    let r = next(&c).await;
    assert_eq!(r.provenance.event_type.as_deref(), Some("shop.Payment"));
    assert_eq!(c.decode_avro::<Payment>(&r).await.unwrap(), pay);
    // A typed protobuf decode of an Avro record is refused, not misread.
    match c.decode::<support::Order>(&r).await {
        Err(Error::Undecodable { reason, .. }) => {
            assert!(reason.contains("not a PROTOBUF"), "{reason}")
        }
        other => panic!("expected Undecodable, got {other:?}"),
    }
    let DynamicValue::Avro(v) = c.decode_dynamic(&r).await.unwrap() else {
        panic!("expected an Avro value")
    };
    assert_eq!(v["amount"], 42, "{v}");

    let json_c = Consumer::new(env.config("reader"), "g-json", &["shipments"]).unwrap();
    let r = next(&json_c).await;
    assert_eq!(r.provenance.event_type.as_deref(), Some("shop.Shipment"));
    assert_eq!(json_c.decode_json::<Shipment>(&r).await.unwrap(), ship);
    let DynamicValue::Json(v) = json_c.decode_dynamic(&r).await.unwrap() else {
        panic!("expected a JSON value")
    };
    assert_eq!(v["carrier"], "dhl");
    drop((producer, c, json_c));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_filter_skips_decoding_and_audit_finds_gaps_and_duplicates() {
    let env = Env::full().await;
    // Two record types on one topic need a per-record subject.
    let mut config = env.config("mixed-svc");
    config.subject_strategy = SubjectStrategy::TopicRecordName;
    let producer = Producer::new(config).unwrap();
    // seq 0..=5 prepared; 2 is dropped and 3 sent twice, interleaved with Avro records.
    let mut prepared = Vec::new();
    for i in 0..6 {
        prepared.push(
            producer
                .prepare("mixed", None, &order(&format!("o{i}"), 5))
                .await
                .unwrap(),
        );
    }
    let pay = Payment {
        id: "p".into(),
        amount: 1,
        memo: None,
    };
    let mut config = env.config("pay-svc");
    config.subject_strategy = SubjectStrategy::TopicRecordName;
    let other = Producer::new(config).unwrap();
    for i in [0usize, 1, 3, 3, 4, 5] {
        other.send_avro("mixed", None, &pay).await.unwrap();
        producer.send_prepared(&prepared[i]).await.unwrap();
    }
    let c = Consumer::new(env.config("reader"), "g-filter", &["mixed"])
        .unwrap()
        .with_filter(|p| p.event_type.as_deref() == Some("shop.Order"));
    let mut ids = Vec::new();
    for _ in 0..6 {
        let r = next(&c).await;
        let o: support::Order = c.decode(&r).await.unwrap();
        ids.push(o.id);
    }
    assert_eq!(ids, ["o0", "o1", "o3", "o3", "o4", "o5"]);
    let m = c.metrics();
    assert_eq!(m.skipped_decodes, 6, "{m:?}");
    assert_eq!(m.decoded, 6, "{m:?}");
    assert_eq!(m.received, 12, "{m:?}");

    let report = c.report();
    assert!(!report.is_complete());
    let order_seq = report
        .producers
        .iter()
        .find(|p| p.key.service_id == "mixed-svc")
        .unwrap_or_else(|| panic!("no audit entry for the order sequence:\n{report}"));
    assert_eq!(order_seq.missing, vec![2], "{report}");
    assert_eq!(order_seq.duplicates, 1, "{report}");
    assert_eq!(order_seq.received, 6, "{report}");
    let pay_seq = report
        .producers
        .iter()
        .find(|p| p.key.service_id == "pay-svc");
    assert!(
        pay_seq.is_some_and(|p| p.received == 6 && p.missing_count == 0 && p.duplicates == 0),
        "{report}"
    );
    assert_eq!(report.latency.count, 12);
    assert!(report.latency.max_ms < 60_000, "{report}");
    drop((producer, other, c));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_payload_is_dead_lettered_and_consumer_moves_on() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let env = Env::full().await;
    let raw: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.bootstrap)
        .create()
        .unwrap();
    // Not framed; truncated message indexes; a schema id the registry never issued.
    for payload in [
        &b"not framed"[..],
        &[0, 0, 0, 0, 1, 0xff, 0xff][..],
        &[0, 0, 0, 0x7f, 0, 0, 2][..],
    ] {
        raw.send(
            FutureRecord::<(), [u8]>::to("raw").payload(payload),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    let producer = Producer::new(env.config("ok-svc")).unwrap();
    producer.send("raw", None, &order("fine", 1)).await.unwrap();

    let c = Consumer::new(env.config("reader"), "g-dlq", &["raw"])
        .unwrap()
        .with_dead_letter("raw.dlq")
        .unwrap();
    let r = next(&c).await;
    match c.decode_dynamic(&r).await {
        Err(Error::Undecodable { dead_letter, .. }) => {
            assert_eq!(dead_letter.as_deref(), Some("raw.dlq"))
        }
        other => panic!("expected Undecodable, got {other:?}"),
    }
    for _ in 0..2 {
        let r = next(&c).await;
        let got = c.decode::<support::Order>(&r).await;
        assert!(
            matches!(
                got,
                Err(Error::Undecodable {
                    dead_letter: Some(_),
                    ..
                })
            ),
            "{got:?}"
        );
    }
    let r = next(&c).await;
    assert_eq!(c.decode::<support::Order>(&r).await.unwrap().id, "fine");
    assert_eq!(c.metrics().dead_lettered, 3);

    let dlq = Consumer::new(env.config("dlq-reader"), "g-dlq-read", &["raw.dlq"]).unwrap();
    let r = next(&dlq).await;
    assert_eq!(r.payload, b"not framed");
    drop((raw, producer, c, dlq));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_errors_are_actionable() {
    let env = Env::full().await;
    // Incompatible: a new required field without a default breaks BACKWARD compatibility.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct PaymentV2 {
        id: String,
        amount: i64,
        currency: String,
    }
    impl sluice_sdk::AvroRecord for PaymentV2 {
        fn schema() -> &'static str {
            r#"{"type":"record","name":"Payment","namespace":"shop","fields":[
                {"name":"id","type":"string"},{"name":"amount","type":"long"},
                {"name":"currency","type":"string"}]}"#
        }
    }
    let producer = Producer::new(env.config("pay-svc")).unwrap();
    let v1 = Payment {
        id: "a".into(),
        amount: 1,
        memo: None,
    };
    producer.send_avro("pay", None, &v1).await.unwrap();
    let v2 = PaymentV2 {
        id: "b".into(),
        amount: 2,
        currency: "EUR".into(),
    };
    match producer.send_avro("pay", None, &v2).await {
        Err(Error::SchemaIncompatible { subject, reasons }) => {
            assert_eq!(subject, "pay-value");
            assert!(!reasons.is_empty());
        }
        other => panic!("expected SchemaIncompatible, got {other:?}"),
    }

    // Unreachable: retried with backoff, then a clear error; a bounded number may wait.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut config = env.config("pay-svc");
    config.registry_url = dead_url;
    config.buffer_capacity = 1;
    config.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_millis(400),
    };
    let producer = std::sync::Arc::new(Producer::new(config).unwrap());
    let p2 = producer.clone();
    let first = tokio::spawn(async move {
        p2.send_avro(
            "pay2",
            None,
            &Payment {
                id: "x".into(),
                amount: 1,
                memo: None,
            },
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = producer.send_avro("pay2", None, &v1).await;
    assert!(
        matches!(second, Err(Error::BufferFull { capacity: 1 })),
        "{second:?}"
    );
    match first.await.unwrap() {
        Err(Error::RegistryUnreachable { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("expected RegistryUnreachable, got {other:?}"),
    }
    drop(producer);
    env.stop().await;
}
