"""Produce and consume with each real client and codec; everything must come back byte-identical."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KpTopicPartition
from kafka.record.default_records import DefaultRecordBatch

from clients import (
    CODECS,
    Consumed,
    Delivery,
    Msg,
    assert_roundtrip,
    by_partition,
    confluent_consume,
    confluent_produce,
    create_topic,
    make_messages,
    mid_of,
)
from kafka_wire import KafkaConnection, batch_codec, split_batches

PARTITIONS = 6
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("codec", CODECS)
def test_confluent_100k_roundtrip(broker, topic_name, codec):
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    msgs = make_messages(100_000, PARTITIONS, seed=hash(codec) & 0xFFFF, tombstone_every=997)
    delivery = confluent_produce(broker.bootstrap, topic_name, msgs, {"compression.type": codec})
    assert delivery.errors == []
    assert len(delivery.offsets) == len(msgs)
    got = confluent_consume(broker.bootstrap, topic_name, PARTITIONS, expected=len(msgs))
    assert_roundtrip(msgs, got, delivery)
    assert_stored_as_sent(broker.bootstrap, topic_name, codec)


def assert_stored_as_sent(bootstrap: str, topic: str, codec: str) -> None:
    """Fetch serves the producer's batches: still compressed with its codec and with valid CRCs."""
    with KafkaConnection(bootstrap) as conn:
        error, data = conn.fetch_v4(topic, 0, 0)
    assert error == 0
    batches = split_batches(data)
    assert batches, "fetch returned no complete batch"
    codecs = {batch_codec(b) for b in batches}
    # librdkafka sends a batch uncompressed when compressing it would not make it smaller (small
    # tail batches), so "none" may appear beside the codec; any other codec would mean the
    # broker re-encoded what it was sent.
    assert CODEC_IDS[codec] in codecs
    assert codecs <= {CODEC_IDS[codec], 0}
    for b in batches:
        assert DefaultRecordBatch(bytearray(b)).validate_crc(), "served batch fails its CRC"


def kafka_python_consume(bootstrap: str, topic: str, partitions: int, expected: int, timeout_s: float = 120):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        max_poll_records=5000,
    )
    try:
        tps = [KpTopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[Consumed] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < expected and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                for r in records:
                    out.append(Consumed(tp.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp))
        # A short extra poll notices duplicates.
        for _, records in consumer.poll(timeout_ms=300).items():
            out.extend(Consumed(r.partition, r.offset, r.key, r.value, tuple(r.headers or ())) for r in records)
        return out
    finally:
        consumer.close()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_roundtrip(broker, topic_name, codec):
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    msgs = make_messages(20_000, PARTITIONS, seed=11)
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        batch_size=256 * 1024,
    )
    try:
        futures = [
            producer.send(topic_name, key=m.key, value=m.value, headers=list(m.headers), partition=m.partition)
            for m in msgs
        ]
        producer.flush(timeout=120)
    finally:
        producer.close(timeout=10)
    offsets = {}
    for m, f in zip(msgs, futures):
        md = f.get(timeout=1)
        offsets[m.mid] = (md.partition, md.offset)
    got = kafka_python_consume(broker.bootstrap, topic_name, PARTITIONS, expected=len(msgs))
    assert_roundtrip(msgs, got, Delivery(offsets=offsets))
    assert_stored_as_sent(broker.bootstrap, topic_name, codec)


def test_kcat_roundtrip(broker, topic_name):
    """kcat (librdkafka's CLI) produces lz4 with keys and headers; kcat reads it back as JSON."""
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    count = 3000
    lines = "".join(f"key-{i % 50}\tvalue-{i}-" + "x" * (i % 40) + "\n" for i in range(count))
    produce = subprocess.run(
        ["kcat", "-P", "-b", broker.bootstrap, "-t", topic_name, "-K", "\t", "-z", "lz4",
         "-H", "origin=kcat", "-H", "run=compat", "-X", "linger.ms=5"],
        input=lines.encode(), capture_output=True, timeout=60,
    )
    assert produce.returncode == 0, produce.stderr.decode()

    consume = subprocess.run(
        ["kcat", "-C", "-b", broker.bootstrap, "-t", topic_name, "-o", "beginning", "-e", "-J", "-q"],
        capture_output=True, timeout=60,
    )
    assert consume.returncode == 0, consume.stderr.decode()
    records = [json.loads(line) for line in consume.stdout.decode().splitlines() if line.strip()]
    assert len(records) == count

    per_partition: dict[int, list[dict]] = {}
    for r in records:
        per_partition.setdefault(r["partition"], []).append(r)
    seen = set()
    for p, recs in per_partition.items():
        ids = [int(r["payload"].split("-")[1]) for r in recs]
        assert ids == sorted(ids), f"partition {p} out of produce order"
        assert [r["offset"] for r in recs] == list(range(len(recs))), f"partition {p} offsets not 0..n-1"
        for r, i in zip(recs, ids):
            assert r["key"] == f"key-{i % 50}"
            assert r["payload"] == f"value-{i}-" + "x" * (i % 40)
            assert r["headers"] == ["origin", "kcat", "run", "compat"]
        seen.update(ids)
    assert seen == set(range(count))
    # Keyed messages spread over more than one partition (the partitioner saw all 6).
    assert len(per_partition) > 1


def test_kcat_reads_confluent_zstd(broker, topic_name):
    """A batch written by one client (confluent, zstd) is served unchanged to another (kcat)."""
    create_topic(broker.bootstrap, topic_name, 2)
    msgs = [Msg(i, i % 2, b"k%d" % i, b"value-%d-" % i + b"z" * (i % 30), (("mid", b"%d" % i),))
            for i in range(500)]
    confluent_produce(broker.bootstrap, topic_name, msgs, {"compression.type": "zstd"})
    consume = subprocess.run(
        ["kcat", "-C", "-b", broker.bootstrap, "-t", topic_name, "-o", "beginning", "-e", "-q", "-J"],
        capture_output=True, timeout=60,
    )
    assert consume.returncode == 0, consume.stderr.decode()
    records = [json.loads(line) for line in consume.stdout.decode().splitlines() if line.strip()]
    assert len(records) == len(msgs)
    by_mid = {m.mid: m for m in msgs}
    for r in records:
        assert r["headers"][0] == "mid"
        m = by_mid[int(r["headers"][1])]
        assert (r["partition"], r["key"], r["payload"]) == (m.partition, m.key.decode(), m.value.decode())


def test_aiokafka_roundtrip(broker, topic_name):
    """aiokafka only speaks old API versions (Produce v8, Fetch v11, Metadata v5)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as AioTopicPartition

    create_topic(broker.bootstrap, topic_name, 3)
    msgs = make_messages(300, 3, seed=5)

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type="gzip")
        await producer.start()
        try:
            for m in msgs:
                await producer.send(topic_name, key=m.key, value=m.value, headers=list(m.headers),
                                    partition=m.partition)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        out: list[Consumed] = []
        try:
            tps = [AioTopicPartition(topic_name, p) for p in range(3)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            deadline = time.monotonic() + 60
            while len(out) < len(msgs) and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, records in batch.items():
                    out.extend(Consumed(tp.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                               for r in records)
        finally:
            await consumer.stop()
        return out

    got = asyncio.run(asyncio.wait_for(run(), timeout=120))
    assert_roundtrip(msgs, got)
    assert {mid_of(r.headers) for r in got} == {m.mid for m in msgs}
    assert set(by_partition(got)) == {0, 1, 2}
