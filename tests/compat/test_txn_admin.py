"""Transaction administration: ListTransactions / DescribeTransactions / DescribeProducers through
kafka-python's KafkaAdminClient (confluent-kafka 2.16 has no transaction admin calls), admin
aborts of hanging transactions (WriteTxnMarkers), and the `sluice txn` command-line tool."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Producer

from clients import create_topic, end_offsets, plain_produce, read_values, wait_stable, wait_until

FAST_TXN_ABORT = ("--transaction-abort-timed-out-interval-ms", "200")
TXN_TIMEOUT_MS = 45_000


def txn_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def kafka_admin(bootstrap: str):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)


def open_txn(bootstrap: str, tid: str, records: list[tuple[str, int, bytes]],
             timeout_ms: int = TXN_TIMEOUT_MS) -> tuple[Producer, dict[tuple[str, int, bytes], int]]:
    """A confluent transactional producer with a transaction left open after `records` were
    written to the log; returns it and each record's offset."""
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": timeout_ms,
                  "linger.ms": 5})
    p.init_transactions(30)
    offsets: dict[tuple[str, int, bytes], int] = {}
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            offsets[(msg.topic(), msg.partition(), msg.value())] = msg.offset()

    p.begin_transaction()
    for topic, partition, value in records:
        p.produce(topic, value=value, partition=partition, on_delivery=on_delivery)
    assert p.flush(30) == 0
    assert errors == [], errors[:5]
    return p, offsets


def listing(admin, tid: str, **filters):
    """This transactional id's row in ListTransactions (sent to every broker), or None."""
    rows = [row for rows in admin.list_transactions(**filters).values() for row in rows
            if row.transactional_id == tid]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def state_name(state) -> str:
    return getattr(state, "value", state)


def wait_state(admin, tid: str, want: str, timeout_s: float = 10):
    """Waits until DescribeTransactions and ListTransactions report `want` for `tid`; on the way
    only the matching Prepare* state is allowed (Kafka writes the markers after EndTxn returns)."""
    allowed = {want, {"CompleteCommit": "PrepareCommit", "CompleteAbort": "PrepareAbort"}.get(want, want)}
    seen: list[str] = []

    def poll():
        desc = admin.describe_transactions([tid])[tid]
        row = listing(admin, tid)
        assert row is not None, f"{tid} missing from ListTransactions"
        seen.extend([state_name(desc.state), state_name(row.state)])
        assert set(seen) <= allowed, f"{tid}: states {seen} while waiting for {want}"
        return desc if seen[-2:] == [want, want] else None

    return wait_until(poll, timeout_s, f"{tid} to be {want}")


def test_list_describe_and_producers_follow_the_transaction(broker, topic_name):
    from kafka import TopicPartition as KTP
    from kafka.errors import TransactionalIdNotFoundError

    create_topic(broker.bootstrap, topic_name, 2)
    tid = txn_id("admin")
    admin = kafka_admin(broker.bootstrap)
    try:
        p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": tid,
                      "transaction.timeout.ms": TXN_TIMEOUT_MS})
        p.init_transactions(30)
        desc = admin.describe_transactions([tid])[tid]
        assert state_name(desc.state) == "Empty"
        assert desc.producer_id >= 0 and desc.producer_epoch >= 0
        assert desc.transaction_timeout_ms == TXN_TIMEOUT_MS
        assert desc.topic_partitions == set()
        row = listing(admin, tid)
        assert row is not None and state_name(row.state) == "Empty" and row.producer_id == desc.producer_id
        pid = desc.producer_id

        plain_produce(broker.bootstrap, [(topic_name, 0, b"plain")])  # the transaction starts at offset 1 on p0
        began_ms = time.time() * 1000
        p.begin_transaction()
        p.produce(topic_name, value=b"t0", partition=0)
        p.produce(topic_name, value=b"t1", partition=1)
        assert p.flush(30) == 0

        desc = admin.describe_transactions([tid])[tid]
        assert state_name(desc.state) == "Ongoing"
        assert desc.producer_id == pid
        assert desc.topic_partitions == {KTP(topic_name, 0), KTP(topic_name, 1)}
        assert began_ms - 5_000 <= desc.transaction_start_time_ms <= time.time() * 1000 + 5_000, (
            f"start time {desc.transaction_start_time_ms} vs begin at {began_ms:.0f}"
        )
        assert state_name(listing(admin, tid).state) == "Ongoing"
        assert listing(admin, tid, state_filters=["Ongoing"]) is not None
        assert listing(admin, tid, state_filters=["CompleteCommit"]) is None
        assert listing(admin, tid, producer_id_filters=[pid]) is not None
        assert listing(admin, tid, producer_id_filters=[pid + 1_000_000]) is None

        producers = admin.describe_producers([KTP(topic_name, 0), KTP(topic_name, 1)])
        for part, start in ((0, 1), (1, 0)):
            active = {s.producer_id: s for s in producers[KTP(topic_name, part)].active_producers}
            assert pid in active, f"partition {part}: DescribeProducers lists {active}"
            assert active[pid].producer_epoch == desc.producer_epoch
            assert active[pid].current_transaction_start_offset == start

        p.commit_transaction(30)
        desc = wait_state(admin, tid, "CompleteCommit")
        assert desc.producer_id == pid
        assert desc.topic_partitions == set()

        def txn_start(part: int) -> int:
            producers = admin.describe_producers([KTP(topic_name, part)])
            return {s.producer_id: s for s in producers[KTP(topic_name, part)].active_producers}[pid] \
                .current_transaction_start_offset

        assert txn_start(0) == -1 and txn_start(1) == -1

        p.begin_transaction()
        p.produce(topic_name, value=b"a0", partition=1)
        assert p.flush(30) == 0
        assert txn_start(1) == 2  # after t1 at 0 and the commit marker at 1
        p.abort_transaction(30)
        desc = wait_state(admin, tid, "CompleteAbort")
        assert desc.topic_partitions == set()
        assert txn_start(1) == -1

        with pytest.raises(TransactionalIdNotFoundError):
            admin.describe_transactions([txn_id("never-used")])
    finally:
        admin.close()


@pytest.mark.broker_args(*FAST_TXN_ABORT)
def test_timed_out_transaction_is_described_as_aborted(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    tid = txn_id("admin-timeout")
    _p, _ = open_txn(broker.bootstrap, tid, [(topic_name, 0, b"t")], timeout_ms=2000)
    admin = kafka_admin(broker.bootstrap)
    try:
        first = admin.describe_transactions([tid])[tid]
        assert state_name(first.state) == "Ongoing"
        desc = wait_until(
            lambda: (lambda d: d if state_name(d.state) == "CompleteAbort" else None)(
                admin.describe_transactions([tid])[tid]),
            15, "the timed-out transaction to be aborted", 0.2,
        )
        assert desc.producer_id == first.producer_id
        # Kafka fences the timed-out producer by bumping its epoch.
        assert desc.producer_epoch > first.producer_epoch
    finally:
        admin.close()


def test_admin_abort_of_hanging_transaction_with_write_txn_markers(broker, topic_name):
    """kafka-python's abort_transaction (WriteTxnMarkers, as Kafka's Admin.abortTransaction sends it)."""
    from kafka import TopicPartition as KTP
    from kafka.admin._transactions import AbortTransactionSpec

    create_topic(broker.bootstrap, topic_name, 1)
    plain_produce(broker.bootstrap, [(topic_name, 0, b"pre")])
    _p, offsets = open_txn(broker.bootstrap, txn_id("hanging-admin"), [(topic_name, 0, b"h-%d" % i)
                                                                      for i in range(3)])
    assert sorted(offsets.values()) == [1, 2, 3]
    plain_produce(broker.bootstrap, [(topic_name, 0, b"post")])
    assert end_offsets(broker.bootstrap, topic_name, 1, "read_committed") == {0: 1}

    admin = kafka_admin(broker.bootstrap)
    try:
        tp = KTP(topic_name, 0)
        (hanging,) = [s for s in admin.describe_producers([tp])[tp].active_producers
                      if s.current_transaction_start_offset == 1]
        admin.abort_transaction(AbortTransactionSpec(tp, hanging.producer_id, hanging.producer_epoch, -1))
        assert wait_stable(broker.bootstrap, topic_name, 1, timeout_s=10) == {0: 6}  # abort marker at 5
        after = {s.producer_id: s for s in admin.describe_producers([tp])[tp].active_producers}
        assert after[hanging.producer_id].current_transaction_start_offset == -1
    finally:
        admin.close()
    assert read_values(broker.bootstrap, topic_name, 1, "read_committed") == {0: [b"pre", b"post"]}
    assert read_values(broker.bootstrap, topic_name, 1, "read_uncommitted") == {
        0: [b"pre", b"h-0", b"h-1", b"h-2", b"post"]
    }


# ---------------------------------------------------------------------------------------------
# `sluice txn`


def txn_cli(sluice_bin: str, broker, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sluice_bin, "txn", *args, "--bootstrap", broker.bootstrap], capture_output=True,
                          text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")})


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args} failed ({result.returncode}): {result.stderr}"
    return result.stdout


def line_with(output: str, tid: str) -> str:
    lines = [line for line in output.splitlines() if tid in line]
    assert len(lines) == 1, f"expected one line for {tid} in:\n{output}"
    return lines[0]


def has_number(text: str, number: int | str) -> bool:
    """`number` appears in `text` as a whole number (not as part of a longer one)."""
    return re.search(rf"(?<!\d){number}(?!\d)", text) is not None


def test_cli_txn_list_and_describe(sluice_bin, broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 2)
    tid = txn_id("cli")
    other = txn_id("cli-other")
    p, _ = open_txn(broker.bootstrap, tid, [(topic_name, 0, b"x"), (topic_name, 1, b"y")])
    q = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": other})
    q.init_transactions(30)

    admin = kafka_admin(broker.bootstrap)
    try:
        desc = admin.describe_transactions([tid])[tid]
    finally:
        admin.close()
    pid = str(desc.producer_id)

    listed = ok(txn_cli(sluice_bin, broker, "list"))
    row = line_with(listed, tid)
    assert has_number(row, pid) and "Ongoing" in row, row
    assert "Empty" in line_with(listed, other)

    described = ok(txn_cli(sluice_bin, broker, "describe", tid))
    assert "Ongoing" in described
    assert has_number(described, pid), described
    assert has_number(described, TXN_TIMEOUT_MS), described
    assert topic_name in described, described

    # Kafka may report PrepareCommit/PrepareAbort until the markers are written.
    p.commit_transaction(30)
    wait_until(lambda: "CompleteCommit" in line_with(ok(txn_cli(sluice_bin, broker, "list")), tid), 10,
               "sluice txn list to show CompleteCommit", 0.3)
    assert "CompleteCommit" in ok(txn_cli(sluice_bin, broker, "describe", tid))

    p.begin_transaction()
    p.produce(topic_name, value=b"z", partition=0)
    assert p.flush(30) == 0
    p.abort_transaction(30)
    wait_until(lambda: "CompleteAbort" in ok(txn_cli(sluice_bin, broker, "describe", tid)), 10,
               "sluice txn describe to show CompleteAbort", 0.3)
    assert "CompleteAbort" in line_with(ok(txn_cli(sluice_bin, broker, "list")), tid)

    unknown = txn_cli(sluice_bin, broker, "describe", txn_id("never-used"))
    assert unknown.returncode != 0, unknown.stdout


def test_cli_txn_abort_unblocks_read_committed(sluice_bin, broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 2)
    plain_produce(broker.bootstrap, [(topic_name, 0, b"pre-0"), (topic_name, 0, b"pre-1"), (topic_name, 1, b"p1")])
    # A transaction that stays open (its producer went quiet) holds partition 0's LSO at offset 2.
    _p, offsets = open_txn(broker.bootstrap, txn_id("hanging-cli"),
                           [(topic_name, 0, b"h-%d" % i) for i in range(3)])
    assert sorted(offsets.values()) == [2, 3, 4]
    plain_produce(broker.bootstrap, [(topic_name, 0, b"post-0"), (topic_name, 0, b"post-1")])
    assert end_offsets(broker.bootstrap, topic_name, 2, "read_committed") == {0: 2, 1: 1}
    assert read_values(broker.bootstrap, topic_name, 2, "read_committed", settled=False) == {
        0: [b"pre-0", b"pre-1"], 1: [b"p1"]
    }

    # No transaction starts at offset 3 (it is inside one): nothing is aborted.
    wrong = txn_cli(sluice_bin, broker, "abort", "--topic", topic_name, "--partition", "0", "--start-offset", "3")
    assert wrong.returncode != 0, wrong.stdout
    assert end_offsets(broker.bootstrap, topic_name, 2, "read_committed") == {0: 2, 1: 1}

    ok(txn_cli(sluice_bin, broker, "abort", "--topic", topic_name, "--partition", "0", "--start-offset", "2"))
    hw = wait_stable(broker.bootstrap, topic_name, 2, timeout_s=10)
    assert hw == {0: 8, 1: 1}, f"expected one abort marker after offset 6, high watermarks {hw}"
    assert read_values(broker.bootstrap, topic_name, 2, "read_committed") == {
        0: [b"pre-0", b"pre-1", b"post-0", b"post-1"], 1: [b"p1"]
    }
    assert read_values(broker.bootstrap, topic_name, 2, "read_uncommitted") == {
        0: [b"pre-0", b"pre-1", b"h-0", b"h-1", b"h-2", b"post-0", b"post-1"], 1: [b"p1"]
    }
