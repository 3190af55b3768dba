"""Shared client-side helpers: deterministic test messages and produce/consume with each client."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, IsolationLevel, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@dataclass(frozen=True)
class Msg:
    """One test message; `mid` is its position in the produce order."""

    mid: int
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def make_messages(count: int, partitions: int, seed: int = 7, tombstone_every: int = 0) -> list[Msg]:
    """Deterministic messages: compressible values of varied size, keys, and repeated header keys."""
    rng = random.Random(seed)
    msgs = []
    for i in range(count):
        body = b"sluice-%08d|" % i
        value = body * rng.randint(1, 12) + rng.randbytes(rng.randint(0, 24))
        if tombstone_every and i % tombstone_every == tombstone_every - 1:
            value = None
        headers = (("mid", b"%d" % i), ("trace", rng.randbytes(8)), ("mid", b"dup"))
        msgs.append(Msg(i, i % partitions, b"key-%d" % (i % 977), value, headers))
    return msgs


def mid_of(headers) -> int:
    """Recovers a message id from its `mid` header (the first one)."""
    for k, v in headers or ():
        if k == "mid":
            return int(v)
    raise AssertionError(f"message without a mid header: {headers!r}")


def create_topic(bootstrap: str, name: str, partitions: int, config: dict[str, str] | None = None) -> None:
    """Creates a topic through confluent's AdminClient and waits until metadata lists all partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=10)
    futures[name].result(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.1)
    raise AssertionError(f"topic {name} not visible with {partitions} partitions after create")


@dataclass
class Delivery:
    """What the producer's delivery callbacks reported."""

    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # mid -> (partition, offset)
    errors: list[str] = field(default_factory=list)


def confluent_produce(bootstrap: str, topic: str, msgs: list[Msg], extra_conf: dict | None = None) -> Delivery:
    """Produces every message to its partition and waits for all delivery reports."""
    conf = {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "batch.num.messages": 10_000,
        "acks": "all",
        "queue.buffering.max.messages": 200_000,
        "message.timeout.ms": 60_000,
    }
    conf.update(extra_conf or {})
    producer = Producer(conf)
    delivery = Delivery()

    def on_delivery(err, msg, mid):
        if err is not None:
            delivery.errors.append(f"mid {mid}: {err}")
        else:
            delivery.offsets[mid] = (msg.partition(), msg.offset())

    for m in msgs:
        while True:
            try:
                producer.produce(topic, value=m.value, key=m.key, headers=list(m.headers), partition=m.partition,
                                 on_delivery=lambda err, msg, mid=m.mid: on_delivery(err, msg, mid))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(120)
    assert remaining == 0, f"{remaining} messages still undelivered after 120s"
    return delivery


def confluent_consumer(bootstrap: str, extra_conf: dict | None = None) -> Consumer:
    """A consumer for explicit assignments only (no group coordination, no offset commits)."""
    conf = {
        "bootstrap.servers": bootstrap,
        # librdkafka insists on a group id even for assign(); offsets are never committed.
        "group.id": f"compat-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
    }
    conf.update(extra_conf or {})
    return Consumer(conf)


@dataclass(frozen=True)
class Consumed:
    """One consumed record as a client saw it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int = 0


def confluent_consume(bootstrap: str, topic: str, partitions: int, expected: int, timeout_s: float = 120,
                      settle_s: float = 0.5, start_offset: int = OFFSET_BEGINNING,
                      extra_conf: dict | None = None) -> list[Consumed]:
    """Reads every partition from `start_offset` until `expected` records arrived and nothing more comes.

    `extra_conf` adds librdkafka settings (e.g. SASL credentials)."""
    consumer = confluent_consumer(bootstrap, extra_conf)
    try:
        consumer.assign([TopicPartition(topic, p, start_offset) for p in range(partitions)])
        out: list[Consumed] = []
        deadline = time.monotonic() + timeout_s
        quiet_until = None
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=0.2)
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consume error: {err}")
                ts = msg.timestamp()[1]
                out.append(Consumed(msg.partition(), msg.offset(), msg.key(), msg.value(),
                                    tuple(msg.headers() or ()), ts))
            if len(out) >= expected:
                # Keep polling briefly so duplicates or extra records would be noticed.
                quiet_until = quiet_until or time.monotonic() + settle_s
                if time.monotonic() >= quiet_until:
                    break
        return out
    finally:
        consumer.close()


def by_partition(records: list[Consumed]) -> dict[int, list[Consumed]]:
    out: dict[int, list[Consumed]] = {}
    for r in records:
        out.setdefault(r.partition, []).append(r)
    return out


def assert_roundtrip(sent: list[Msg], got: list[Consumed], delivery: Delivery | None = None) -> None:
    """Every sent message came back exactly once, byte-identical, in produce order per partition."""
    assert len(got) == len(sent), f"sent {len(sent)} messages, consumed {len(got)}"
    parts = by_partition(got)
    expected_parts: dict[int, list[Msg]] = {}
    for m in sent:
        expected_parts.setdefault(m.partition, []).append(m)
    assert sorted(parts) == sorted(expected_parts), f"partitions differ: {sorted(parts)} vs {sorted(expected_parts)}"
    for p, exp in expected_parts.items():
        recs = parts[p]
        offsets = [r.offset for r in recs]
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), f"partition {p}: offsets not contiguous"
        for m, r in zip(exp, recs):
            assert (r.key, r.value, r.headers) == (m.key, m.value, m.headers), (
                f"partition {p} offset {r.offset}: expected mid {m.mid} "
                f"{(m.key, m.value, m.headers)!r}, got {(r.key, r.value, r.headers)!r}"
            )
            if delivery is not None:
                assert delivery.offsets[m.mid] == (p, r.offset), (
                    f"mid {m.mid} acknowledged at {delivery.offsets[m.mid]} but read at {(p, r.offset)}"
                )


def plain_produce(bootstrap: str, records: list[tuple[str, int, bytes]]) -> dict[tuple[str, int, bytes], int]:
    """Non-transactional acks=all produce of (topic, partition, value) records; returns each one's offset."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2})
    offsets: dict[tuple[str, int, bytes], int] = {}
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"{msg.topic()}[{msg.partition()}] {msg.value()!r}: {err}")
        else:
            offsets[(msg.topic(), msg.partition(), msg.value())] = msg.offset()

    for topic, partition, value in records:
        producer.produce(topic, value=value, partition=partition, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "records still undelivered after 30s"
    assert errors == [], errors[:5]
    return offsets


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    """Polls `predicate` until it returns something truthy, which is returned; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def end_offsets(bootstrap: str, topic: str, partitions: int, isolation: str = "read_uncommitted") -> dict[int, int]:
    """Each partition's end through AdminClient.list_offsets: the high watermark for
    isolation "read_uncommitted", the last stable offset for "read_committed"."""
    level = {"read_committed": IsolationLevel.READ_COMMITTED,
             "read_uncommitted": IsolationLevel.READ_UNCOMMITTED}[isolation]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                                 isolation_level=level, request_timeout=10)
    return {tp.partition: f.result(timeout=20).offset for tp, f in futures.items()}


def confluent_read_to_end(bootstrap: str, topic: str, partitions: int, isolation: str,
                          timeout_s: float = 30) -> list[Consumed]:
    """Reads every partition from the beginning up to its end as the consumer sees it at
    `isolation` ("read_committed" stops at the last stable offset), using partition-EOF events,
    so an exact expected record set can be asserted without guessing a count or a settle time."""
    consumer = confluent_consumer(bootstrap, {"isolation.level": isolation, "enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out: list[Consumed] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, (
                f"{isolation} consumer of {topic} reached the end of only partitions {sorted(at_end)} "
                f"after {timeout_s}s ({len(out)} records read)"
            )
            for msg in consumer.consume(num_messages=10_000, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                        continue
                    raise AssertionError(f"consume error: {err}")
                at_end.discard(msg.partition())
                out.append(Consumed(msg.partition(), msg.offset(), msg.key(), msg.value(),
                                    tuple(msg.headers() or ()), msg.timestamp()[1]))
        return out
    finally:
        consumer.close()


def values_by_partition(records: list[Consumed], partitions: int) -> dict[int, list[bytes | None]]:
    """{partition: [value, ...] in offset order} with an entry (maybe empty) for every partition."""
    out: dict[int, list[bytes | None]] = {p: [] for p in range(partitions)}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.partition].append(r.value)
    return out


def wait_stable(bootstrap: str, topic: str, partitions: int, timeout_s: float = 20) -> dict[int, int]:
    """Waits until no transaction is open on any partition of `topic` (last stable offset == high
    watermark everywhere, so every commit or abort marker is written); returns the high watermarks."""

    def stable():
        lso = end_offsets(bootstrap, topic, partitions, "read_committed")
        hw = end_offsets(bootstrap, topic, partitions, "read_uncommitted")
        return hw if lso == hw else None

    return wait_until(stable, timeout_s, f"every partition of {topic} to have LSO == high watermark", 0.2)


def read_values(bootstrap: str, topic: str, partitions: int, isolation: str,
                settled: bool = True) -> dict[int, list[bytes | None]]:
    """{partition: values} of everything a consumer at `isolation` reads from the beginning to the end.

    Transaction markers may be written after commit_transaction() returns (Kafka writes them
    asynchronously), so with `settled` a read_committed read first waits until no transaction is
    open; pass settled=False to read up to the last stable offset of a deliberately open one.
    """
    if settled and isolation == "read_committed":
        wait_stable(bootstrap, topic, partitions)
    return values_by_partition(confluent_read_to_end(bootstrap, topic, partitions, isolation), partitions)
