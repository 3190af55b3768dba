"""Incremental fetch sessions (KIP-227): the wire contract, and kafka-python (which uses them by
default) consuming many partitions through them."""

from __future__ import annotations

import logging

from confluent_kafka import Producer
from kafka import KafkaConsumer, TopicPartition as KpTopicPartition

from clients import create_topic
from kafka_wire import KafkaConnection

ERR_FETCH_SESSION_ID_NOT_FOUND = 70
ERR_INVALID_FETCH_SESSION_EPOCH = 71


def produce(bootstrap: str, topic: str, partition: int, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    for value in values:
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(15) == 0


def test_incremental_fetches_list_only_partitions_with_news(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 3)
    produce(broker.bootstrap, topic_name, 0, [b"a"])
    tp = [(topic_name, p) for p in range(3)]
    with KafkaConnection(broker.bootstrap) as conn:
        # A full fetch with epoch 0 opens a session and lists every partition.
        error, session, listed = conn.fetch_v7_session(0, 0, {t: 0 for t in tp})
        assert error == 0 and session > 0
        assert set(listed) == set(tp)
        assert listed[tp[0]].records and listed[tp[0]].high_watermark == 1
        assert all(not listed[t].records for t in tp[1:])

        # Nothing new: the client moves partition 0 on and the response lists nothing.
        error, answered, listed = conn.fetch_v7_session(session, 1, {tp[0]: 1})
        assert (error, answered, listed) == (0, session, {})

        # A record in partition 1 (whose offset the broker remembers: 0) is the only news.
        produce(broker.bootstrap, topic_name, 1, [b"b"])
        error, answered, listed = conn.fetch_v7_session(session, 2, {})
        assert error == 0 and answered == session
        assert set(listed) == {tp[1]} and listed[tp[1]].records

        # Wrong epoch, unknown session: refused at the top level.
        assert conn.fetch_v7_session(session, 2, {})[0] == ERR_INVALID_FETCH_SESSION_EPOCH
        assert conn.fetch_v7_session(session + 1, 3, {})[0] == ERR_FETCH_SESSION_ID_NOT_FOUND
        # ... which does not disturb the session: epoch 3 still works. Partition 1 moves on and
        # partition 2 is forgotten, so a record there is no news.
        error, _, listed = conn.fetch_v7_session(session, 3, {tp[1]: 1}, forgotten=[tp[2]])
        assert error == 0 and listed == {}
        produce(broker.bootstrap, topic_name, 2, [b"c"])
        error, _, listed = conn.fetch_v7_session(session, 4, {})
        assert error == 0 and listed == {}

        # Epoch -1 closes the session: a sessionless full fetch.
        error, answered, listed = conn.fetch_v7_session(session, -1, {tp[2]: 0})
        assert error == 0 and answered == 0 and listed[tp[2]].records
        assert conn.fetch_v7_session(session, 5, {})[0] == ERR_FETCH_SESSION_ID_NOT_FOUND


def test_kafka_python_consumes_many_partitions_through_a_session(broker, topic_name, caplog):
    partitions = 24
    per_partition = 40
    create_topic(broker.bootstrap, topic_name, partitions)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(per_partition):
        for p in range(partitions):
            producer.produce(topic_name, value=f"{p}:{i}".encode(), partition=p)
    assert producer.flush(30) == 0

    caplog.set_level(logging.DEBUG, logger="kafka.consumer.fetcher")
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Small responses force many fetches, most of them incremental.
        max_partition_fetch_bytes=512,
        fetch_max_wait_ms=50,
    )
    try:
        consumer.assign([KpTopicPartition(topic_name, p) for p in range(partitions)])
        seen: dict[int, list[int]] = {p: [] for p in range(partitions)}
        total = partitions * per_partition
        received = 0
        for _ in range(2000):
            for tp, records in consumer.poll(timeout_ms=200).items():
                for record in records:
                    p, i = record.value.decode().split(":")
                    assert int(p) == tp.partition
                    seen[tp.partition].append(int(i))
                    received += 1
            if received >= total:
                break
        # Every record exactly once, in order, per partition.
        assert all(seen[p] == list(range(per_partition)) for p in range(partitions)), seen
    finally:
        consumer.close()
    text = caplog.text
    assert "Built incremental fetch" in text, "kafka-python never used an incremental session"
    assert "unable to process the fetch request" not in text
