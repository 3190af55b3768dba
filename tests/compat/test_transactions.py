"""Kafka transactions with real clients: commit/abort visibility, zombie fencing, exactly-once
consume-transform-produce, timeouts, the last stable offset, and crash safety across kill -9."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from clients import create_topic, end_offsets, plain_produce, read_values, wait_stable, wait_until
from kafka_wire import READ_COMMITTED, READ_UNCOMMITTED, KafkaConnection, batch_header, split_batches

# Groups that subscribe() get their first assignment quickly.
FAST_GROUPS = ("--group-initial-rebalance-delay-ms", "300")
# Timed-out transactions are aborted within a fraction of a second of their deadline.
FAST_TXN_ABORT = ("--transaction-abort-timed-out-interval-ms", "200")

# What librdkafka reports to the zombie of a fenced transactional id.
FENCED_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH, KafkaError._FATAL}


def txn_id(name: str) -> str:
    """A transactional id no other test (or earlier run against the same broker) uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def txn_producer(bootstrap: str, transactional_id: str, conf: dict | None = None) -> Producer:
    """A confluent transactional producer whose init_transactions() has completed."""
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5,
                  **(conf or {})})
    p.init_transactions(30)
    return p


Rec = tuple[str, int, bytes]  # (topic, partition, value)


def run_txn(producer: Producer, records: list[Rec], outcome: str = "commit") -> dict[Rec, int]:
    """Begins a transaction, produces `records` and waits until every one is written to the log
    (so aborted data really is in the partitions), then commits, aborts, or leaves it open
    (`outcome` "commit" / "abort" / "open"). Returns the offset of each record."""
    offsets: dict[Rec, int] = {}
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"{msg.topic()}[{msg.partition()}] {msg.value()!r}: {err}")
        else:
            offsets[(msg.topic(), msg.partition(), msg.value())] = msg.offset()

    producer.begin_transaction()
    for topic, partition, value in records:
        producer.produce(topic, value=value, partition=partition, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "transactional records still undelivered after 30s"
    assert errors == [], f"delivery errors inside the transaction: {errors[:5]}"
    assert len(offsets) == len(records)
    if outcome == "commit":
        producer.commit_transaction(30)
    elif outcome == "abort":
        producer.abort_transaction(30)
    else:
        assert outcome == "open", outcome
    return offsets


def layout(records: list[Rec], topic: str, partitions: int) -> dict[int, list[bytes]]:
    """The per-partition value lists `records` (in produce order) leave in `topic`."""
    out: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    for t, p, v in records:
        if t == topic:
            out[p].append(v)
    return out


def kafka_error(exc: KafkaException) -> KafkaError:
    return exc.args[0]


# ---------------------------------------------------------------------------------------------
# 1. Commit and abort with confluent-kafka.


def test_commit_and_abort_visibility_across_topics_and_partitions(broker, topic_name):
    topics = [f"{topic_name}-a", f"{topic_name}-b"]
    for t in topics:
        create_topic(broker.bootstrap, t, 3)
    p = txn_producer(broker.bootstrap, txn_id("vis"))

    committed1 = [(topics[i % 2], (i // 2) % 3, b"c1-%03d" % i) for i in range(60)]
    aborted = [(topics[i % 2], (i // 2) % 3, b"ab-%03d" % i) for i in range(30)]
    committed2 = [(topics[i % 2], (i // 2) % 3, b"c2-%03d" % i) for i in range(12)]
    run_txn(p, committed1, "commit")
    run_txn(p, aborted, "abort")
    run_txn(p, committed2, "commit")

    for t in topics:
        # (read_values waits until no transaction holds the last stable offset back.)
        assert read_values(broker.bootstrap, t, 3, "read_committed") == layout(committed1 + committed2, t, 3), (
            f"read_committed view of {t} is not exactly the committed records"
        )
        everything = layout(committed1 + aborted + committed2, t, 3)
        assert read_values(broker.bootstrap, t, 3, "read_uncommitted") == everything, (
            f"read_uncommitted view of {t} is not every data record (committed and aborted)"
        )


# ---------------------------------------------------------------------------------------------
# 2. Zombie fencing.


def test_zombie_producer_is_fenced_and_its_transaction_aborted(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 2)
    tid = txn_id("zombie")
    a = txn_producer(broker.bootstrap, tid)
    zombie_records = [(topic_name, i % 2, b"A-%d" % i) for i in range(10)]
    run_txn(a, zombie_records, "open")

    # A new instance with the same transactional.id takes over: A's open transaction is aborted.
    b = txn_producer(broker.bootstrap, tid)
    b_records = [(topic_name, i % 2, b"B-%d" % i) for i in range(6)]
    run_txn(b, b_records, "commit")

    # The zombie can neither produce nor commit any more, and the error is fatal (fenced).
    errors: list[KafkaError] = []
    late_delivery: list[KafkaError | None] = []
    committed = False
    try:
        a.produce(topic_name, value=b"A-late", partition=0, on_delivery=lambda err, _m: late_delivery.append(err))
        a.commit_transaction(15)
        committed = True
    except KafkaException as e:
        errors.append(kafka_error(e))
    a.poll(0)
    errors.extend(err for err in late_delivery if err is not None)
    assert not committed, "the fenced producer committed a transaction after a newer instance took over"
    assert any(e.fatal() or e.code() in FENCED_CODES for e in errors), (
        f"expected a fatal fenced error for the zombie, got {[(e.code(), e.str(), e.fatal()) for e in errors]}"
    )
    # By identity: `KafkaError == None` leaves a TypeError set inside confluent-kafka, which
    # later surfaces as a SystemError in an unrelated call.
    assert all(err is not None for err in late_delivery), "the zombie's late record was acknowledged"

    assert read_values(broker.bootstrap, topic_name, 2, "read_committed") == layout(b_records, topic_name, 2)
    assert read_values(broker.bootstrap, topic_name, 2, "read_uncommitted") == layout(zombie_records + b_records,
                                                                                      topic_name, 2)


# ---------------------------------------------------------------------------------------------
# 3. Consume-transform-produce with send_offsets_to_transaction.


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int,
                      isolation: str = "read_committed") -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "isolation.level": isolation})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
        for tp in tps:
            assert tp.error is None, f"committed() error for {tp}: {tp.error}"
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def consume_n(consumer: Consumer, n: int, timeout_s: float = 20):
    """Polls a subscribed consumer until exactly `n` records arrived (more is a failure)."""
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n:
        assert time.monotonic() < deadline, f"only {len(got)} of {n} input records consumed in {timeout_s}s"
        for m in consumer.consume(num_messages=n - len(got), timeout=0.5):
            if m.error() is None:
                got.append(m)
            elif m.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(f"consume error: {m.error()}")
    return got


@pytest.mark.broker_args(*FAST_GROUPS)
def test_consume_transform_produce_commits_offsets_exactly_once(broker, topic_name):
    src, dst = f"{topic_name}-in", f"{topic_name}-out"
    create_topic(broker.bootstrap, src, 3)
    create_topic(broker.bootstrap, dst, 3)
    inputs = [(src, i % 3, b"in-%02d" % i) for i in range(30)]
    plain_produce(broker.bootstrap, inputs)
    group = f"eos-{topic_name}"

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    consumer.subscribe([src])
    producer = txn_producer(broker.bootstrap, txn_id("eos"))

    def process(msgs, outcome: str) -> None:
        producer.begin_transaction()
        for m in msgs:
            producer.produce(dst, value=b"out-" + m.value()[3:], partition=m.partition())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        if outcome == "commit":
            producer.commit_transaction(30)
        else:
            assert producer.flush(30) == 0  # the transformed records reach the log before the abort
            producer.abort_transaction(30)

    try:
        processed = []
        while len(processed) < 30:
            batch = consume_n(consumer, min(7, 30 - len(processed)))
            process(batch, "commit")
            processed.extend(batch)
        assert sorted(m.value() for m in processed) == sorted(v for _, _, v in inputs)
        assert committed_offsets(broker.bootstrap, group, src, 3) == {0: 10, 1: 10, 2: 10}

        # A round that aborts: its output is invisible and the group's offsets do not move.
        more = [(src, i % 3, b"in-%02d" % i) for i in range(30, 36)]
        plain_produce(broker.bootstrap, more)
        aborted_batch = consume_n(consumer, 6)
        process(aborted_batch, "abort")
        assert committed_offsets(broker.bootstrap, group, src, 3) == {0: 10, 1: 10, 2: 10}, (
            "offsets sent in an aborted transaction were committed"
        )
        assert read_values(broker.bootstrap, dst, 3, "read_committed") == {
            p: [b"out-%02d" % i for i in range(30) if i % 3 == p] for p in range(3)
        }

        # Rewind to the committed offsets (what a restarted application does) and redo the round.
        for p, off in committed_offsets(broker.bootstrap, group, src, 3).items():
            consumer.seek(TopicPartition(src, p, off))
        redo = consume_n(consumer, 6)
        assert sorted(m.value() for m in redo) == sorted(m.value() for m in aborted_batch)
        process(redo, "commit")
    finally:
        consumer.close()

    assert committed_offsets(broker.bootstrap, group, src, 3) == {0: 12, 1: 12, 2: 12}
    assert end_offsets(broker.bootstrap, src, 3) == {0: 12, 1: 12, 2: 12}
    # Every input is in the output exactly once, in input order per partition.
    assert read_values(broker.bootstrap, dst, 3, "read_committed") == {
        p: [b"out-%02d" % i for i in range(36) if i % 3 == p] for p in range(3)
    }
    # The aborted attempt's records are in the log (read_uncommitted), before their redo.
    uncommitted = read_values(broker.bootstrap, dst, 3, "read_uncommitted")
    for p in range(3):
        first = [b"out-%02d" % i for i in range(30) if i % 3 == p]
        twice = [b"out-%02d" % i for i in range(30, 36) if i % 3 == p]
        assert uncommitted[p] == first + twice + twice


# ---------------------------------------------------------------------------------------------
# 4. kafka-python and aiokafka transactional producers.


def kafka_python_read(bootstrap: str, topic: str, partitions: int, isolation: str, expected: int,
                      timeout_s: float = 20) -> dict[int, list[bytes]]:
    """kafka-python consumer at `isolation`; reads until `expected` records, then 1s more for extras."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False,
                      group_id=None, consumer_timeout_ms=500)
    try:
        tps = [KTP(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        count = 0
        deadline = time.monotonic() + timeout_s
        settle_until = None
        while time.monotonic() < deadline:
            for tp, msgs in c.poll(timeout_ms=200).items():
                for m in msgs:
                    out[tp.partition].append((m.offset, m.value))
                    count += 1
            if count >= expected:
                settle_until = settle_until or time.monotonic() + 1.0
                if time.monotonic() >= settle_until:
                    break
        return {p: [v for _, v in sorted(recs)] for p, recs in out.items()}
    finally:
        c.close()


def test_kafka_python_transactional_producer(broker, topic_name):
    from kafka import KafkaProducer
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    create_topic(broker.bootstrap, topic_name, 2)
    group = f"kp-txn-{topic_name}"
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=txn_id("kafka-python"),
                      max_block_ms=30_000, linger_ms=5)
    c1 = [(topic_name, i % 2, b"kp-c1-%d" % i) for i in range(10)]
    ab = [(topic_name, i % 2, b"kp-ab-%d" % i) for i in range(6)]
    c2 = [(topic_name, i % 2, b"kp-c2-%d" % i) for i in range(4)]
    try:
        p.init_transactions()
        for records, outcome in ((c1, "commit"), (ab, "abort"), (c2, "commit")):
            p.begin_transaction()
            futures = [p.send(t, value=v, partition=part) for t, part, v in records]
            p.flush(timeout=30)
            for f in futures:
                f.get(timeout=30)
            if outcome == "commit":
                # kafka-python's TxnOffsetCommit path, with a bare group id.
                p.send_offsets_to_transaction({KTP(topic_name, 0): OffsetAndMetadata(len(records), "", -1)}, group)
                p.commit_transaction()
            else:
                p.send_offsets_to_transaction({KTP(topic_name, 0): OffsetAndMetadata(999, "", -1)}, group)
                p.abort_transaction()
    finally:
        p.close(timeout=10)

    want = layout(c1 + c2, topic_name, 2)
    assert kafka_python_read(broker.bootstrap, topic_name, 2, "read_committed", len(c1) + len(c2)) == want
    assert read_values(broker.bootstrap, topic_name, 2, "read_committed") == want
    assert read_values(broker.bootstrap, topic_name, 2, "read_uncommitted") == layout(c1 + ab + c2, topic_name, 2)
    # The last committed transaction's offset, not the aborted one's.
    assert committed_offsets(broker.bootstrap, group, topic_name, 1) == {0: len(c2)}


def test_aiokafka_transactional_producer(broker, topic_name):
    from aiokafka import AIOKafkaProducer
    from aiokafka.structs import TopicPartition as ATP

    create_topic(broker.bootstrap, topic_name, 2)
    group = f"aio-txn-{topic_name}"
    c1 = [(topic_name, i % 2, b"aio-c1-%d" % i) for i in range(10)]
    ab = [(topic_name, i % 2, b"aio-ab-%d" % i) for i in range(6)]
    c2 = [(topic_name, i % 2, b"aio-c2-%d" % i) for i in range(4)]

    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=txn_id("aiokafka"),
                             request_timeout_ms=20_000)
        try:
            await p.start()  # InitProducerId happens here
            async with p.transaction():
                await asyncio.gather(*[await p.send(t, value=v, partition=part) for t, part, v in c1])
                await p.send_offsets_to_transaction({ATP(topic_name, 1): 5}, group)
            await p.begin_transaction()
            await asyncio.gather(*[await p.send(t, value=v, partition=part) for t, part, v in ab])
            await p.send_offsets_to_transaction({ATP(topic_name, 1): 999}, group)
            await p.abort_transaction()
            async with p.transaction():
                await asyncio.gather(*[await p.send(t, value=v, partition=part) for t, part, v in c2])
        finally:
            await p.stop()

    asyncio.run(asyncio.wait_for(run(), 60))

    want = layout(c1 + c2, topic_name, 2)
    assert kafka_python_read(broker.bootstrap, topic_name, 2, "read_committed", len(c1) + len(c2)) == want
    assert read_values(broker.bootstrap, topic_name, 2, "read_committed") == want
    assert read_values(broker.bootstrap, topic_name, 2, "read_uncommitted") == layout(c1 + ab + c2, topic_name, 2)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "isolation.level": "read_committed"})
    try:
        (tp,) = c.committed([TopicPartition(topic_name, 1)], timeout=15)
    finally:
        c.close()
    assert tp.offset == 5, f"group {group} committed {tp.offset}; the aborted transaction's 999 must not count"


# ---------------------------------------------------------------------------------------------
# 5. kcat at both isolation levels.


def test_kcat_isolation_levels(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    p = txn_producer(broker.bootstrap, txn_id("kcat"))
    run_txn(p, [(topic_name, 0, b"c-%d" % i) for i in range(3)], "commit")
    run_txn(p, [(topic_name, 0, b"a-%d" % i) for i in range(3)], "abort")
    run_txn(p, [(topic_name, 0, b"c-3")], "commit")

    def kcat(isolation: str) -> list[str]:
        out = subprocess.run(
            ["kcat", "-C", "-b", broker.bootstrap, "-t", topic_name, "-X", f"isolation.level={isolation}",
             "-e", "-q", "-o", "beginning", "-f", "%s\n"],
            capture_output=True, text=True, timeout=30,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    wait_stable(broker.bootstrap, topic_name, 1)
    assert kcat("read_committed") == ["c-0", "c-1", "c-2", "c-3"]
    assert kcat("read_uncommitted") == ["c-0", "c-1", "c-2", "a-0", "a-1", "a-2", "c-3"]


# ---------------------------------------------------------------------------------------------
# 6. Transaction timeouts.


@pytest.mark.broker_args("--transaction-max-timeout-ms", "5000")
def test_transaction_timeout_above_broker_maximum_is_refused(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id("too-long"),
                  "transaction.timeout.ms": 10_000})
    with pytest.raises(KafkaException) as info:
        p.init_transactions(20)
    err = kafka_error(info.value)
    assert err.code() == KafkaError.INVALID_TRANSACTION_TIMEOUT, f"got {err.code()} {err.str()}"

    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KafkaPythonError

    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=txn_id("too-long-kp"),
                       transaction_timeout_ms=10_000, max_block_ms=20_000)
    try:
        # kafka-python wraps it: KafkaError("Unexpected error in InitProducerIdResponse: InvalidTransactionTimeout...")
        with pytest.raises(KafkaPythonError, match="InvalidTransactionTimeout"):
            kp.init_transactions()
    finally:
        kp.close(timeout=5)

    # Exactly the maximum is allowed.
    ok = txn_producer(broker.bootstrap, txn_id("max"), {"transaction.timeout.ms": 5000})
    run_txn(ok, [(topic_name, 0, b"fits")], "commit")
    assert read_values(broker.bootstrap, topic_name, 1, "read_committed") == {0: [b"fits"]}


@pytest.mark.broker_args(*FAST_TXN_ABORT)
def test_abandoned_transaction_is_aborted_after_its_timeout(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    # 2 s rather than librdkafka's 1 s minimum: enough margin to observe the LSO held back first.
    p = txn_producer(broker.bootstrap, txn_id("abandoned"), {"transaction.timeout.ms": 2000})
    began = time.monotonic()
    txn_records = [(topic_name, 0, b"t-%d" % i) for i in range(3)]
    offsets = run_txn(p, txn_records, "open")
    assert sorted(offsets.values()) == [0, 1, 2]
    # The producer now just stops. A plain producer keeps writing to the same partition.
    after = [(topic_name, 0, b"after-%d" % i) for i in range(3)]
    plain_produce(broker.bootstrap, after)
    if time.monotonic() - began < 1.5:
        assert end_offsets(broker.bootstrap, topic_name, 1, "read_committed") == {0: 0}, (
            "the last stable offset must stay at the open transaction's first offset"
        )

    hw = wait_stable(broker.bootstrap, topic_name, 1, timeout_s=15)
    waited = time.monotonic() - began
    assert hw == {0: 7}, f"expected 3 + 3 records and one abort marker, high watermark {hw}"
    assert waited < 12, f"the abandoned transaction was only aborted after {waited:.1f}s"
    assert read_values(broker.bootstrap, topic_name, 1, "read_committed") == {0: [v for _, _, v in after]}
    assert read_values(broker.bootstrap, topic_name, 1, "read_uncommitted") == {
        0: [v for _, _, v in txn_records + after]
    }

    # The timed-out transaction cannot be committed late.
    with pytest.raises(KafkaException):
        p.commit_transaction(10)
    assert read_values(broker.bootstrap, topic_name, 1, "read_committed") == {0: [v for _, _, v in after]}


# ---------------------------------------------------------------------------------------------
# 7. Crash safety.


@pytest.mark.broker_args(*FAST_TXN_ABORT)
@pytest.mark.parametrize("phase", ["open", "committed", "aborted"])
@pytest.mark.timeout(90)
def test_kill9_transaction_outcome_survives(broker, topic_name, phase):
    """kill -9 with a transaction open / just committed / just aborted: after restart the
    outcome is exactly what the producer was told (open ones time out and abort)."""
    create_topic(broker.bootstrap, topic_name, 2)
    p = txn_producer(broker.bootstrap, txn_id(f"kill9-{phase}"), {"transaction.timeout.ms": 3000})
    before = [(topic_name, i % 2, b"before-%d" % i) for i in range(6)]
    run_txn(p, before, "commit")
    txn = [(topic_name, i % 2, b"%s-%d" % (phase.encode(), i)) for i in range(10)]
    run_txn(p, txn, {"open": "open", "committed": "commit", "aborted": "abort"}[phase])
    if phase == "open":
        assert end_offsets(broker.bootstrap, topic_name, 2, "read_committed") == {0: 4, 1: 4}, (
            "the open transaction should hold the LSO at its first offsets"
        )

    broker.kill9()
    broker.start()

    # Records produced after the restart prove a read_committed reader got past the transaction.
    after = [(topic_name, i % 2, b"after-%d" % i) for i in range(4)]
    plain_produce(broker.bootstrap, after)
    wait_stable(broker.bootstrap, topic_name, 2, timeout_s=30)
    visible = before + (txn if phase == "committed" else []) + after
    assert read_values(broker.bootstrap, topic_name, 2, "read_committed") == layout(visible, topic_name, 2)
    everything = layout(before + txn + after, topic_name, 2)
    assert read_values(broker.bootstrap, topic_name, 2, "read_uncommitted") == everything


TXN_LOOP_SCRIPT = r"""
import sys
from confluent_kafka import Producer
bootstrap, topic, tid, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": 10000,
              "linger.ms": 1})
p.init_transactions(30)
n = 0
while True:
    p.begin_transaction()
    for part in range(partitions):
        for i in range(2):
            p.produce(topic, value=b"txn-%d-p%d-%d" % (n, part, i), partition=part)
    p.commit_transaction(30)
    print(n, flush=True)  # only after commit_transaction() returned
    n += 1
"""


def txn_values(n: int, partitions: int) -> dict[int, list[bytes]]:
    return {p: [b"txn-%d-p%d-%d" % (n, p, i) for i in range(2)] for p in range(partitions)}


@pytest.mark.timeout(120)
def test_kill9_during_committing_stream_is_all_or_nothing_per_transaction(broker, topic_name, tmp_path):
    partitions = 3
    create_topic(broker.bootstrap, topic_name, partitions)
    tid = txn_id("stream")
    script = tmp_path / "txn_loop.py"
    script.write_text(TXN_LOOP_SCRIPT)
    stderr_path = tmp_path / "txn_loop.stderr"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, str(script), broker.bootstrap, topic_name, tid, str(partitions)],
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
    acknowledged: list[int] = []
    lock = threading.Lock()

    def reader():
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip().isdigit():
                with lock:
                    acknowledged.append(int(line))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    delay = random.uniform(0.0, 0.5)
    try:
        wait_until(lambda: len(acknowledged) >= 20 or proc.poll() is not None, 60, "20 committed transactions")
        assert proc.poll() is None, (
            f"the transactional producer died before the broker was killed:\n{stderr_path.read_text()[-3000:]}"
        )
        time.sleep(delay)  # land the kill at a random point of a begin/produce/commit cycle
        broker.kill9()
    finally:
        proc.kill()
        proc.wait(10)
    t.join(5)
    with lock:
        acked = set(acknowledged)
    assert acked == set(range(len(acked)))

    broker.start()
    # A new instance of the producer resolves whatever the crash left pending, then goes on.
    p = txn_producer(broker.bootstrap, tid)
    tail = list(range(100_000, 100_005))
    for n in tail:
        run_txn(p, [(topic_name, part, v) for part, vs in txn_values(n, partitions).items() for v in vs], "commit")
    wait_stable(broker.bootstrap, topic_name, partitions, timeout_s=30)

    got = read_values(broker.bootstrap, topic_name, partitions, "read_committed")
    per_txn: dict[int, dict[int, list[bytes]]] = {}
    order: dict[int, list[int]] = {part: [] for part in range(partitions)}
    for part, values in got.items():
        for v in values:
            n = int(v.split(b"-")[1])
            per_txn.setdefault(n, {}).setdefault(part, []).append(v)
            if not order[part] or order[part][-1] != n:
                order[part].append(n)
    for n, parts in sorted(per_txn.items()):
        assert parts == txn_values(n, partitions), (
            f"transaction {n} is only partly visible after kill -9 (kill {delay:.2f}s after the 20th commit): "
            f"{parts}"
        )
    missing = sorted(acked - set(per_txn))
    assert not missing, f"transactions acknowledged as committed are gone after kill -9: {missing}"
    assert set(tail) <= set(per_txn)
    extra = sorted(set(per_txn) - acked - set(tail))
    assert all(n == len(acked) for n in extra), f"unexpected transactions {extra} (acked 0..{len(acked) - 1})"
    for part, ns in order.items():
        assert ns == sorted(ns) and len(ns) == len(set(ns)), f"partition {part}: transactions out of order {ns}"


# ---------------------------------------------------------------------------------------------
# 8. The last stable offset as reported by ListOffsets, watermarks and Fetch.


def test_last_stable_offset_holds_at_open_transaction(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    tp = TopicPartition(topic_name, 0)
    plain_produce(broker.bootstrap, [(topic_name, 0, b"pre-%d" % i) for i in range(3)])  # offsets 0..2
    p = txn_producer(broker.bootstrap, txn_id("lso"))
    offsets = run_txn(p, [(topic_name, 0, b"t-0"), (topic_name, 0, b"t-1")], "open")
    assert sorted(offsets.values()) == [3, 4]
    plain_produce(broker.bootstrap, [(topic_name, 0, b"post")])  # offset 5, behind the open transaction

    def check(lso: int, hw: int) -> None:
        assert end_offsets(broker.bootstrap, topic_name, 1, "read_committed") == {0: lso}
        assert end_offsets(broker.bootstrap, topic_name, 1, "read_uncommitted") == {0: hw}
        for isolation, end in (("read_committed", lso), ("read_uncommitted", hw)):
            c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"wm-{uuid.uuid4().hex[:6]}",
                          "isolation.level": isolation})
            try:
                assert c.get_watermark_offsets(tp, timeout=10, cached=False) == (0, end), isolation
            finally:
                c.close()
        with KafkaConnection(broker.bootstrap) as conn:
            assert conn.list_offsets_v2(topic_name, 0, -1, READ_COMMITTED) == (0, lso)
            assert conn.list_offsets_v2(topic_name, 0, -1, READ_UNCOMMITTED) == (0, hw)
            fetched = conn.fetch_v4_partition(topic_name, 0, 0, READ_COMMITTED)
            assert (fetched.error_code, fetched.high_watermark, fetched.last_stable_offset) == (0, hw, lso)
            served = [batch_header(b) for b in split_batches(fetched.records)]
            assert served and max(h.last_offset for h in served) < lso, (
                f"read_committed fetch served batches past the LSO {lso}: {served}"
            )

    check(lso=3, hw=6)
    assert read_values(broker.bootstrap, topic_name, 1, "read_committed", settled=False) == {
        0: [b"pre-0", b"pre-1", b"pre-2"]
    }

    p.commit_transaction(30)
    wait_stable(broker.bootstrap, topic_name, 1)
    check(lso=7, hw=7)  # one commit marker at offset 6
    assert read_values(broker.bootstrap, topic_name, 1, "read_committed") == {
        0: [b"pre-0", b"pre-1", b"pre-2", b"t-0", b"t-1", b"post"]
    }

    offsets = run_txn(p, [(topic_name, 0, b"x")], "open")
    assert list(offsets.values()) == [7]
    check(lso=7, hw=8)
    p.abort_transaction(30)
    wait_stable(broker.bootstrap, topic_name, 1)
    check(lso=9, hw=9)


# ---------------------------------------------------------------------------------------------
# 9. Aborted-transaction filtering survives a restart.


@pytest.mark.parametrize("how", ["SIGTERM", "kill9"])
@pytest.mark.timeout(90)
def test_aborted_transactions_stay_filtered_after_restart(broker, topic_name, how):
    create_topic(broker.bootstrap, topic_name, 2)
    p = txn_producer(broker.bootstrap, txn_id(f"restart-{how}"))
    ab1 = [(topic_name, i % 2, b"ab1-%d" % i) for i in range(4)]
    c1 = [(topic_name, i % 2, b"c1-%d" % i) for i in range(4)]
    plain = [(topic_name, i % 2, b"plain-%d" % i) for i in range(2)]
    ab2 = [(topic_name, i % 2, b"ab2-%d" % i) for i in range(4)]
    c2 = [(topic_name, i % 2, b"c2-%d" % i) for i in range(4)]
    ab1_offsets = run_txn(p, ab1, "abort")
    run_txn(p, c1, "commit")
    plain_produce(broker.bootstrap, plain)
    run_txn(p, ab2, "abort")
    run_txn(p, c2, "commit")

    def aborted_lists() -> dict[int, list[tuple[int, int]]]:
        with KafkaConnection(broker.bootstrap) as conn:
            out = {}
            for part in range(2):
                f = conn.fetch_v4_partition(topic_name, part, 0, READ_COMMITTED)
                assert f.error_code == 0
                out[part] = sorted(f.aborted_transactions)
            return out

    # The producer id of the first aborted transaction, from its batch on partition 0.
    with KafkaConnection(broker.bootstrap) as conn:
        first = ab1_offsets[(topic_name, 0, b"ab1-0")]
        raw = conn.fetch_v4_partition(topic_name, 0, first, READ_UNCOMMITTED)
        header = batch_header(split_batches(raw.records)[0])
        assert header.is_transactional and header.base_offset == first
    wait_stable(broker.bootstrap, topic_name, 2)
    before = aborted_lists()
    assert (header.producer_id, first) in before[0], f"Fetch lists aborted transactions {before[0]}"
    assert [len(v) for v in before.values()] == [2, 2], before

    if how == "SIGTERM":
        broker.restart()
    else:
        broker.kill9()
        broker.start()

    wait_stable(broker.bootstrap, topic_name, 2)
    assert aborted_lists() == before, "the aborted-transaction index changed across the restart"
    want = layout(c1 + plain + c2, topic_name, 2)
    assert read_values(broker.bootstrap, topic_name, 2, "read_committed") == want
    everything = layout(ab1 + c1 + plain + ab2 + c2, topic_name, 2)
    assert read_values(broker.bootstrap, topic_name, 2, "read_uncommitted") == everything
    # The same producer keeps working against the restarted broker.
    c3 = [(topic_name, i % 2, b"c3-%d" % i) for i in range(2)]
    ab3 = [(topic_name, i % 2, b"ab3-%d" % i) for i in range(2)]
    run_txn(p, ab3, "abort")
    run_txn(p, c3, "commit")
    assert read_values(broker.bootstrap, topic_name, 2, "read_committed") == layout(c1 + plain + c2 + c3, topic_name, 2)


# ---------------------------------------------------------------------------------------------
# 10. OffsetFetch with require_stable while transactional offsets are pending.


def test_pending_transactional_offsets_are_unstable_until_commit(broker, topic_name):
    src = topic_name
    create_topic(broker.bootstrap, src, 1)
    plain_produce(broker.bootstrap, [(src, 0, b"in-%d" % i) for i in range(10)])
    group = f"stable-{topic_name}"
    meta_consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                              "enable.auto.commit": False, "isolation.level": "read_committed"})
    meta_consumer.assign([TopicPartition(src, 0, 0)])
    group_metadata = meta_consumer.consumer_group_metadata()
    p = txn_producer(broker.bootstrap, txn_id("stable"))

    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(src, 0, 4)], group_metadata, 30)
    p.commit_transaction(30)
    assert committed_offsets(broker.bootstrap, group, src, 1) == {0: 4}

    p.begin_transaction()
    p.produce(src, value=b"txn-record", partition=0)
    p.send_offsets_to_transaction([TopicPartition(src, 0, 10)], group_metadata, 30)
    assert p.flush(30) == 0

    # Without require_stable the pending offset is invisible: the last committed one is returned.
    assert committed_offsets(broker.bootstrap, group, src, 1, "read_uncommitted") == {0: 4}

    # With require_stable (librdkafka sends it for read_committed) the broker answers
    # UNSTABLE_OFFSET_COMMIT while the offset is pending; librdkafka retries or reports it.
    result: dict = {}

    def fetch_stable():
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
                      "isolation.level": "read_committed"})
        try:
            (tp,) = c.committed([TopicPartition(src, 0)], timeout=10)
            result["offset"] = tp.offset
            result["error"] = tp.error
        except KafkaException as e:
            result["exception"] = kafka_error(e)
        finally:
            result["at"] = time.monotonic()
            c.close()

    t = threading.Thread(target=fetch_stable, daemon=True)
    t.start()
    time.sleep(2.0)
    committing_at = time.monotonic()
    p.commit_transaction(30)
    t.join(20)
    assert not t.is_alive()
    meta_consumer.close()

    if "exception" in result or result.get("error") is not None:
        err = result.get("exception") or result["error"]
        assert err.code() == KafkaError.UNSTABLE_OFFSET_COMMIT, f"unexpected committed() error {err}"
    else:
        assert result["offset"] != 4, "a require_stable OffsetFetch returned the stale offset while one was pending"
        assert result["offset"] == 10
        assert result["at"] >= committing_at, "the stable offset was reported before the transaction committed"

    assert committed_offsets(broker.bootstrap, group, src, 1) == {0: 10}
    assert committed_offsets(broker.bootstrap, group, src, 1, "read_uncommitted") == {0: 10}


@pytest.mark.parametrize("point", ["txn-before-markers", "txn-after-first-marker"])
@pytest.mark.parametrize("outcome", ["commit", "abort"])
def test_crash_between_decision_and_markers_completes_the_transaction(broker, topic_name, point, outcome):
    """The broker dies (SLUICE_FAILPOINT aborts it, like kill -9) after the commit or abort
    decision is durable but before all markers are written: after the restart the decision is
    carried out in every partition, so read_committed sees the transaction whole or not at all."""
    partitions = 3
    create_topic(broker.bootstrap, topic_name, partitions)
    broker.extra_env = {"SLUICE_FAILPOINT": point}
    broker.kill9()
    broker.start()
    p = txn_producer(broker.bootstrap, txn_id(f"crash-{outcome}"),
                     {"transaction.timeout.ms": 60_000, "socket.timeout.ms": 2000})
    txn = [(topic_name, i % partitions, b"%s-%d" % (outcome.encode(), i)) for i in range(9)]
    run_txn(p, txn, "open")
    try:
        if outcome == "commit":
            p.commit_transaction(3)
        else:
            p.abort_transaction(3)
    except KafkaException:
        pass  # the broker died under the request
    assert broker.proc is not None
    assert broker.proc.wait(30) != 0, "the failpoint should have crashed the broker"
    broker.extra_env = {}
    broker.proc = None
    broker.start()

    after = [(topic_name, i % partitions, b"after-%d" % i) for i in range(3)]
    plain_produce(broker.bootstrap, after)
    wait_stable(broker.bootstrap, topic_name, partitions, timeout_s=30)
    visible = (txn if outcome == "commit" else []) + after
    assert read_values(broker.bootstrap, topic_name, partitions, "read_committed") == layout(visible, topic_name, partitions)
    assert read_values(broker.bootstrap, topic_name, partitions, "read_uncommitted") == layout(txn + after, topic_name, partitions)
