"""ListOffsets: earliest, latest and by timestamp, through two independent clients."""

from __future__ import annotations

import time

from confluent_kafka import Producer, TopicPartition
from kafka import KafkaConsumer, TopicPartition as KpTopicPartition

from clients import confluent_consumer, create_topic

STEP_MS = 10


def produce_timestamped(bootstrap: str, topic: str, base_ts: int, count: int, batches: int) -> None:
    """Writes `count` records with CreateTime base_ts + i*STEP_MS, flushed as `batches` separate batches."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 50})
    per_batch = count // batches
    for i in range(count):
        producer.produce(topic, value=b"v%d" % i, key=b"k%d" % i, partition=0, timestamp=base_ts + i * STEP_MS)
        if (i + 1) % per_batch == 0:
            assert producer.flush(30) == 0
    assert producer.flush(30) == 0


def test_offsets_for_times_confluent(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1, config={"segment.bytes": "4096"})
    base = int(time.time() * 1000) - 600_000
    count = 400
    produce_timestamped(broker.bootstrap, topic_name, base, count, batches=20)

    consumer = confluent_consumer(broker.bootstrap)
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10) == (0, count)

        probes = {
            base - 1_000: 0,                      # before everything -> first record
            base: 0,                              # exact first
            base + 57 * STEP_MS: 57,              # exact, mid-log
            base + 57 * STEP_MS + 1: 58,          # between two records -> the next one
            base + 399 * STEP_MS: 399,            # exact last
            base + 123 * STEP_MS - 5: 123,
            base + 300 * STEP_MS: 300,
        }
        for ts, want in probes.items():
            (res,) = consumer.offsets_for_times([TopicPartition(topic_name, 0, ts)], timeout=10)
            assert res.error is None
            assert res.offset == want, f"timestamp {ts - base}ms after base: expected offset {want}, got {res.offset}"

        # A timestamp after the last record has no offset: librdkafka reports -1 (OFFSET_END).
        (res,) = consumer.offsets_for_times([TopicPartition(topic_name, 0, base + 10 * count * STEP_MS)],
                                            timeout=10)
        assert res.offset == -1
    finally:
        consumer.close()


def test_offsets_for_times_kafka_python(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    base = int(time.time() * 1000) - 120_000
    count = 200
    produce_timestamped(broker.bootstrap, topic_name, base, count, batches=10)

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = KpTopicPartition(topic_name, 0)
        assert consumer.beginning_offsets([tp])[tp] == 0
        assert consumer.end_offsets([tp])[tp] == count
        for i in (0, 1, 19, 20, 21, 150, 199):
            found = consumer.offsets_for_times({tp: base + i * STEP_MS - 3})[tp]
            assert found is not None and found.offset == i, f"probe {i}: got {found}"
            assert found.timestamp == base + i * STEP_MS
        assert consumer.offsets_for_times({tp: base + count * STEP_MS + 1})[tp] is None
    finally:
        consumer.close()
