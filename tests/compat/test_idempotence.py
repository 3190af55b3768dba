"""Idempotent producing: no duplicates from a real client, and the sequence rules on the wire."""

from __future__ import annotations

from clients import assert_roundtrip, confluent_consume, confluent_produce, create_topic, make_messages
from kafka_wire import ERR_NONE, ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, KafkaConnection, build_batch


def test_confluent_idempotent_producer_no_duplicates(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 3)
    msgs = make_messages(20_000, 3, seed=9)
    delivery = confluent_produce(broker.bootstrap, topic_name, msgs,
                                 {"enable.idempotence": True, "compression.type": "snappy"})
    assert delivery.errors == []
    got = confluent_consume(broker.bootstrap, topic_name, 3, expected=len(msgs), settle_s=1)
    assert_roundtrip(msgs, got, delivery)


def test_duplicate_batch_acknowledged_with_original_offset(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    with KafkaConnection(broker.bootstrap) as conn:
        error, pid, epoch = conn.init_producer_id()
        assert error == ERR_NONE and pid >= 0 and epoch >= 0

        first = build_batch([(b"k", b"a"), (b"k", b"b")], producer_id=pid, producer_epoch=epoch, base_sequence=0)
        r1 = conn.produce(topic_name, 0, first)
        assert (r1.error_code, r1.base_offset) == (ERR_NONE, 0)

        # A retry of the same batch is acknowledged at its original offset and not appended again.
        r2 = conn.produce(topic_name, 0, first)
        assert (r2.error_code, r2.base_offset) == (ERR_NONE, 0)

        second = build_batch([(b"k", b"c")], producer_id=pid, producer_epoch=epoch, base_sequence=2)
        r3 = conn.produce(topic_name, 0, second)
        assert (r3.error_code, r3.base_offset) == (ERR_NONE, 2)

        # Skipping sequence numbers (expected 3, sent 10) is refused.
        gap = build_batch([(b"k", b"d")], producer_id=pid, producer_epoch=epoch, base_sequence=10)
        r4 = conn.produce(topic_name, 0, gap)
        assert r4.error_code == ERR_OUT_OF_ORDER_SEQUENCE_NUMBER

    got = confluent_consume(broker.bootstrap, topic_name, 1, expected=3, settle_s=1)
    assert [(r.offset, r.value) for r in got] == [(0, b"a"), (1, b"b"), (2, b"c")]
