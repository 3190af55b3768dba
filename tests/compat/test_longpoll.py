"""Long-poll fetch: a parked fetch is woken by the append, not by its max-wait timer."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Producer, TopicPartition
from kafka import KafkaConsumer, TopicPartition as KpTopicPartition

from clients import confluent_consumer, create_topic
from kafka_wire import KafkaConnection

MAX_WAIT_MS = 5000
# The broker should answer within ~100 ms; the bound is generous for noisy 2-core CI machines but
# still far below the 5 s the fetch would wait if only its timer woke it.
LATENCY_BOUND_S = 2.0


def produce_one_later(bootstrap: str, topic: str, delay_s: float, sent_at: list[float]) -> threading.Thread:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0})
    producer.list_topics(topic, timeout=10)  # connect before the clock starts

    def run():
        time.sleep(delay_s)
        sent_at.append(time.monotonic())
        producer.produce(topic, value=b"wake-up", partition=0)
        producer.flush(10)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_long_poll_woken_by_append_confluent(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    consumer = confluent_consumer(broker.bootstrap, {"fetch.wait.max.ms": MAX_WAIT_MS, "fetch.min.bytes": 1})
    try:
        consumer.assign([TopicPartition(topic_name, 0, 0)])
        # Let the consumer park a fetch on the empty partition before producing.
        assert consumer.poll(1.5) is None
        sent_at: list[float] = []
        producer_thread = produce_one_later(broker.bootstrap, topic_name, 1.0, sent_at)
        msg = None
        deadline = time.monotonic() + 15
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.05)
        received_at = time.monotonic()
        producer_thread.join(10)
        assert msg is not None and msg.error() is None and msg.value() == b"wake-up"
        latency = received_at - sent_at[0]
        assert latency < LATENCY_BOUND_S, f"parked fetch took {latency:.3f}s to see the new record"
    finally:
        consumer.close()


def test_long_poll_woken_by_append_kafka_python(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=MAX_WAIT_MS, fetch_min_bytes=1, auto_offset_reset="earliest")
    try:
        tp = KpTopicPartition(topic_name, 0)
        consumer.assign([tp])
        assert consumer.poll(timeout_ms=1500) == {}
        sent_at: list[float] = []
        producer_thread = produce_one_later(broker.bootstrap, topic_name, 1.0, sent_at)
        records = []
        deadline = time.monotonic() + 15
        while not records and time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=50).get(tp, [])
        received_at = time.monotonic()
        producer_thread.join(10)
        assert [r.value for r in records] == [b"wake-up"]
        latency = received_at - sent_at[0]
        assert latency < LATENCY_BOUND_S, f"parked fetch took {latency:.3f}s to see the new record"
    finally:
        consumer.close()


def test_fetch_max_wait_honoured_when_nothing_arrives(broker, topic_name):
    """An empty fetch returns after max-wait rather than hanging or spinning (checked on the wire)."""
    create_topic(broker.bootstrap, topic_name, 1)
    with KafkaConnection(broker.bootstrap, timeout=10) as conn:
        start = time.monotonic()
        error, data = conn.fetch_v4(topic_name, 0, 0, max_wait_ms=500)
        elapsed = time.monotonic() - start
    assert (error, data) == (0, b"")
    assert 0.3 < elapsed < 3.0, f"empty fetch with max_wait=500ms returned after {elapsed:.3f}s"
