"""Retention and compaction as a client sees them (fast housekeeping so the test takes seconds)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer, TopicPartition

from clients import confluent_consume, confluent_consumer, create_topic

pytestmark = pytest.mark.broker_args("--housekeeping-interval-ms", "200")

KEYS = [b"k%d" % i for i in range(10)]
ROUNDS = 10


def produce_rounds(bootstrap: str, topic: str) -> None:
    """Writes every key ROUNDS times (one flush per round); k9's last version is a tombstone."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    for rnd in range(ROUNDS):
        for key in KEYS:
            last = rnd == ROUNDS - 1
            value = None if (last and key == b"k9") else b"%s-round-%d" % (key, rnd)
            producer.produce(topic, key=key, value=value, partition=0)
        assert producer.flush(30) == 0
    # An append after segment.ms has passed rolls the segment, so all rounds become compactable.
    time.sleep(0.6)
    producer.produce(topic, key=b"sentinel", value=b"last", partition=0)
    assert producer.flush(30) == 0


def compacted_view(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    consumer = confluent_consumer(bootstrap)
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    if high <= low:
        return []
    # Compaction leaves offset gaps, so the count to expect is unknown: read until quiet.
    recs = confluent_consume(bootstrap, topic, 1, expected=1, settle_s=1.0, timeout_s=20)
    return [(r.offset, r.key, r.value) for r in recs]


def test_compaction_keeps_latest_per_key(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1, config={
        "cleanup.policy": "compact", "segment.ms": "200", "min.cleanable.dirty.ratio": "0.01"})
    produce_rounds(broker.bootstrap, topic_name)
    total = ROUNDS * len(KEYS) + 1

    expected_live = {key: b"%s-round-%d" % (key, ROUNDS - 1) for key in KEYS if key != b"k9"}
    expected_live[b"sentinel"] = b"last"
    deadline = time.monotonic() + 30
    while True:
        view = compacted_view(broker.bootstrap, topic_name)
        live = {k: v for _, k, v in view if v is not None}
        if len(view) <= len(KEYS) + 1 and live == expected_live:
            break
        assert time.monotonic() < deadline, (
            f"not compacted after 30s: {len(view)} records, keys {sorted(k for _, k, _ in view)}")
        time.sleep(0.5)

    offsets = [o for o, _, _ in view]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), "offsets must stay unique and ordered"
    assert offsets[-1] == total - 1, "compaction must not renumber records"
    # Older versions of k9 are gone; its tombstone may still be there (delete.retention.ms).
    assert [v for _, k, v in view if k == b"k9"] in ([], [None])


def test_retention_ms_deletes_old_segments(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1, config={"retention.ms": "1000", "segment.ms": "200"})
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0})
    for i in range(50):
        producer.produce(topic_name, value=b"old-%d" % i, partition=0)
        if i % 10 == 9:
            assert producer.flush(30) == 0
            time.sleep(0.25)
    assert producer.flush(30) == 0

    consumer = confluent_consumer(broker.bootstrap)
    try:
        tp = TopicPartition(topic_name, 0)
        deadline = time.monotonic() + 30
        while True:
            low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            if low > 0:
                break
            assert time.monotonic() < deadline, "retention.ms=1000 deleted nothing within 30s"
            time.sleep(0.3)
        assert high == 50, "retention must not change the log end offset"
        assert 0 < low <= high
    finally:
        consumer.close()
