//! Serialize+frame and decode of a ~1 KB protobuf message, the per-record work the SDK adds on
//! the hot path once the schema id is cached. Run: `cargo bench -p sluice-sdk --bench codec`
//! (criterion; the target is serialize+frame plus typed decode under 2 µs).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage};
use sluice_sdk::wire;

#[derive(Clone, PartialEq, prost::Message)]
struct Money {
    #[prost(string, tag = "1")]
    currency: String,
    #[prost(int64, tag = "2")]
    cents: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Line {
    #[prost(string, tag = "1")]
    sku: String,
    #[prost(uint32, tag = "2")]
    quantity: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Order {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(message, optional, tag = "2")]
    total: Option<Money>,
    #[prost(message, repeated, tag = "3")]
    lines: Vec<Line>,
    #[prost(string, tag = "4")]
    note: String,
}

fn codec(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/protos");
    let pool = protox::compile(["shop/order.proto"], [dir])
        .map_err(|e| e.to_string())
        .and_then(|fds| DescriptorPool::from_file_descriptor_set(fds).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("test protos: {e}"));
    let desc = pool
        .get_message_by_name("shop.Order")
        .unwrap_or_else(|| panic!("shop.Order missing"));
    let order = Order {
        id: "order-000123".into(),
        total: Some(Money {
            currency: "EUR".into(),
            cents: 129_900,
        }),
        lines: (0..10)
            .map(|i| Line {
                sku: format!("sku-{i:04}"),
                quantity: i,
            })
            .collect(),
        note: "x".repeat(860),
    };
    let mut framed = Vec::new();
    wire::frame_protobuf(&mut framed, 42, &desc, &order);
    // The case names below say "1 KB": keep the payload at that size.
    assert!(
        (900..1200).contains(&order.encoded_len()),
        "payload is {} bytes",
        order.encoded_len()
    );

    c.bench_function("serialize+frame (1 KB protobuf)", |b| {
        b.iter(|| {
            let mut buf = Vec::new();
            wire::frame_protobuf(&mut buf, black_box(42), &desc, black_box(&order));
            buf
        })
    });
    c.bench_function("decode typed (1 KB protobuf)", |b| {
        b.iter(|| {
            let o: Order = wire::decode_protobuf(black_box(&framed)).unwrap_or_default();
            o
        })
    });
    c.bench_function("decode dynamic (1 KB protobuf)", |b| {
        b.iter(|| {
            let m = wire::parse(black_box(&framed))
                .ok()
                .and_then(|f| wire::read_indexes(f.body).ok())
                .and_then(|(_, body)| DynamicMessage::decode(desc.clone(), body).ok());
            m.map(|m| m.descriptor())
        })
    });
    let headers = sluice_sdk::Provenance {
        service_id: Some("payments-svc".into()),
        event_time_ms: Some(1_764_000_000_000),
        event_type: Some("shop.Payment".into()),
        event_id: Some("019ab1c2-0000-7000-8000-000000000000".into()),
        producer_id: Some("019ab1c2-0000-7000-8000-000000000001".into()),
        producer_seq: Some(12_345),
    }
    .to_headers();
    c.bench_function("read headers + filter (skipped, no decode)", |b| {
        b.iter(|| {
            let p = sluice_sdk::Provenance::from_headers(Some(black_box(&headers).as_borrowed()));
            p.event_type.as_deref() == Some("shop.Order")
        })
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
