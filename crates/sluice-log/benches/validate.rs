//! Produce-time validation of a ~0.9 MiB record set of 1 KiB records: CRC plus the walk over every
//! record, uncompressed and for each codec (where the walk streams through the decompressor).
//! Run: `cargo bench -p sluice-log --bench validate`; compare with the `crc only` line, which
//! is what validation cost before records were walked.

// Test code: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_log::batch::{check_batch, validate_record_set};
use sluice_log::LogConfig;

/// 900 records of 1 KiB (16-byte key, pseudo-random printable value) in one batch, just under
/// the default max.message.bytes.
fn batch(compression: Compression) -> BytesMut {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let records: Vec<Record> = (0..900)
        .map(|i| {
            let value: Vec<u8> = (0..1024)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b'a' + (seed % 16) as u8
                })
                .collect();
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                // The encoder starts a new batch whenever offset - sequence changes.
                sequence: i as i32,
                timestamp: 1_700_000_000_000,
                key: Some(format!("key-{i:012}").into_bytes().into()),
                value: Some(value.into()),
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("bench batch encodes");
    buf
}

fn validate(c: &mut Criterion) {
    let config = LogConfig::default();
    let mut group = c.benchmark_group("validate 900 x 1 KiB");
    group.throughput(Throughput::Bytes(900 * 1040));
    let plain = batch(Compression::None);
    assert_eq!(
        check_batch(&plain).expect("valid").total_size(),
        plain.len(),
        "one batch"
    );
    group.bench_function("crc only", |b| {
        b.iter(|| check_batch(black_box(&plain)).expect("valid"))
    });
    for (name, compression) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let records = batch(compression);
        group.bench_function(name, |b| {
            b.iter(|| validate_record_set(black_box(&records), &config).expect("valid"))
        });
    }
    group.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
