"""Consumer groups with real clients: assignment, failover, committed offsets across restarts,
cooperative rebalancing, kcat -G, aiokafka, and the coordinator's answers to bad requests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import ConsumerGroupType, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from clients import create_topic, wait_until
from kafka_wire import KafkaConnection, nullable_bytes, nullable_string

# Fast first rebalances; the session timeout the failover test uses is the broker minimum.
pytestmark = pytest.mark.broker_args("--group-initial-rebalance-delay-ms", "300")

SESSION_MS = 6000

API_OFFSET_COMMIT = 8
API_HEARTBEAT = 12
API_JOIN_GROUP = 11
ERR_ILLEGAL_GENERATION = 22
ERR_INCONSISTENT_GROUP_PROTOCOL = 23
ERR_UNKNOWN_MEMBER_ID = 25

# A group member run as its own process so it can be SIGKILLed. It prints one JSON line per
# event: its assignment whenever it changes, and every message *before* committing it, so a
# message whose offset was committed has always been reported (at-least-once bookkeeping).
MEMBER_SCRIPT = r"""
import json, signal, sys, time
client, bootstrap, topic, group, opts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
delay = opts.get("delay_s", 0.0)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

def emit(**kw):
    print(json.dumps(kw), flush=True)

last = None
def report(parts):
    global last
    parts = sorted(parts)
    if parts != last:
        last = parts
        emit(event="assignment", partitions=parts)

if client == "confluent":
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": opts.get("session_ms", 6000),
                  "heartbeat.interval.ms": 1000, "client.id": opts.get("name", "member")})
    c.subscribe([topic])
    while not stop:
        m = c.poll(0.2)
        report([tp.partition for tp in c.assignment()])
        if m is None or m.error():
            continue
        emit(event="msg", p=m.partition(), o=m.offset(), mid=int(m.value()))
        time.sleep(delay)
        try:
            c.commit(message=m, asynchronous=False)
        except Exception as e:  # a commit fenced by a rebalance is retried by redelivery
            emit(event="commit_failed", error=str(e))
    c.close()
else:
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=opts.get("session_ms", 6000),
                      heartbeat_interval_ms=1000, client_id=opts.get("name", "member"))
    while not stop:
        batch = c.poll(timeout_ms=200, max_records=20)
        report([tp.partition for tp in c.assignment()])
        for tp, msgs in batch.items():
            for m in msgs:
                emit(event="msg", p=m.partition, o=m.offset, mid=int(m.value))
                time.sleep(delay)
                try:
                    c.commit({tp: OffsetAndMetadata(m.offset + 1, "", -1)})
                except Exception as e:
                    emit(event="commit_failed", error=str(e))
    c.close()
emit(event="closed")
"""


class Member:
    """One group member subprocess and what it reported."""

    def __init__(self, script: str, client: str, bootstrap: str, topic: str, group: str, **opts):
        self.client = client
        self.proc = subprocess.Popen(
            [sys.executable, script, client, bootstrap, topic, group, json.dumps(opts)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.assignment: list[int] | None = None
        self.mids: set[int] = set()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if event["event"] == "assignment":
                    self.assignment = event["partitions"]
                elif event["event"] == "msg":
                    self.mids.add(event["mid"])

    def current(self) -> list[int]:
        with self.lock:
            return list(self.assignment or [])

    def processed(self) -> set[int]:
        with self.lock:
            return set(self.mids)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def members(tmp_path):
    """Starts member subprocesses; every one still running is stopped at teardown."""
    script = tmp_path / "member.py"
    script.write_text(MEMBER_SCRIPT)
    started: list[Member] = []

    def start(client: str, bootstrap: str, topic: str, group: str, **opts) -> Member:
        m = Member(str(script), client, bootstrap, topic, group, **opts)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


def produce_mids(bootstrap: str, topic: str, count: int, partitions: int) -> None:
    """Produces values "0".."count-1", message i to partition i % partitions."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(count):
        p.produce(topic, value=b"%d" % i, partition=i % partitions)
    assert p.flush(30) == 0, "not every message was delivered"


def exact_cover(assignments: list[list[int]], partitions: int) -> bool:
    flat = [p for a in assignments for p in a]
    return len(flat) == partitions and set(flat) == set(range(partitions))


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def describe(bootstrap: str, group: str):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups([group])[group].result(timeout=10)


def test_mixed_clients_share_a_topic_each_partition_once(broker, topic_name, members):
    create_topic(broker.bootstrap, topic_name, 12)
    produce_mids(broker.bootstrap, topic_name, 120, 12)
    group = f"mixed-{topic_name}"
    ms = [
        members("confluent", broker.bootstrap, topic_name, group, name="c1"),
        members("confluent", broker.bootstrap, topic_name, group, name="c2"),
        members("kafka-python", broker.bootstrap, topic_name, group, name="kp"),
    ]

    def settled():
        return all(m.current() for m in ms) and exact_cover([m.current() for m in ms], 12)

    wait_until(settled, 60, "three members to split 12 partitions")
    # Still an exact cover a little later (no member is left holding a stale assignment).
    time.sleep(2)
    assert settled(), [m.current() for m in ms]
    wait_until(lambda: set().union(*(m.processed() for m in ms)) == set(range(120)), 60, "all messages consumed")

    d = describe(broker.bootstrap, group)
    assert str(d.state).endswith("STABLE")
    assert len(d.members) == 3
    described = sorted(tp.partition for mem in d.members for tp in mem.assignment.topic_partitions)
    assert described == list(range(12))
    assert sorted(mem.client_id for mem in d.members) == ["c1", "c2", "kp"]


def test_sigkilled_member_partitions_move_without_loss(broker, topic_name, members):
    create_topic(broker.bootstrap, topic_name, 12)
    total = 600
    produce_mids(broker.bootstrap, topic_name, total, 12)
    group = f"failover-{topic_name}"
    opts = {"session_ms": SESSION_MS, "delay_s": 0.01}
    ms = [
        members("confluent", broker.bootstrap, topic_name, group, name="victim", **opts),
        members("confluent", broker.bootstrap, topic_name, group, name="c2", **opts),
        members("kafka-python", broker.bootstrap, topic_name, group, name="kp", **opts),
    ]
    wait_until(lambda: all(m.current() for m in ms) and exact_cover([m.current() for m in ms], 12), 60,
               "three members to split 12 partitions")
    victim, survivors = ms[0], ms[1:]
    wait_until(lambda: len(victim.processed()) >= 5, 30, "the victim to process some messages")
    orphaned = victim.current()
    victim.kill9()
    killed_at = time.monotonic()

    wait_until(lambda: exact_cover([m.current() for m in survivors], 12), SESSION_MS / 1000 + 20,
               "the survivors to take over the victim's partitions")
    moved_after = time.monotonic() - killed_at
    assert moved_after < SESSION_MS / 1000 + 15, f"rebalance took {moved_after:.1f}s"
    assert orphaned, "the victim had partitions"

    everyone = lambda: victim.processed().union(*(m.processed() for m in survivors))  # noqa: E731
    wait_until(lambda: everyone() == set(range(total)), 90, "every message to be processed by someone")
    offsets = wait_until(
        lambda: (lambda c: c if all(c[p] == total // 12 for p in range(12)) else None)(
            committed(broker.bootstrap, group, topic_name, 12)
        ),
        30,
        "every partition to be committed at its end",
        interval_s=0.5,
    )
    assert sum(offsets.values()) == total


def test_group_resumes_at_committed_offsets_after_broker_restart(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 3)
    produce_mids(broker.bootstrap, topic_name, 60, 3)
    group = f"resume-{topic_name}"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic_name])
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 30 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen += 1
    assert seen == 30
    c.commit(asynchronous=False)
    before = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic_name, p) for p in range(3)], 10)}
    c.close()
    assert sum(o for o in before.values() if o > 0) == 30

    broker.restart()

    assert committed(broker.bootstrap, group, topic_name, 3) == before
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic_name])
    first: dict[int, int] = {}
    count = 0
    deadline = time.monotonic() + 60
    while count < 30 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        first.setdefault(m.partition(), m.offset())
        count += 1
    c.close()
    assert count == 30, "the group re-read messages it had committed, or lost some"
    for p, offset in first.items():
        assert offset == max(before[p], 0), f"partition {p} resumed at {offset}, committed {before[p]}"

    # __consumer_offsets holds Kafka's own key format (version 1: group, topic, partition).
    reader = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"inspect-{group}",
                       "enable.auto.commit": False})
    reader.assign([TopicPartition("__consumer_offsets", p, 0) for p in range(50)])
    keys = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(keys) < 3:
        m = reader.poll(0.5)
        if m is None or m.error() or m.key() is None:
            continue
        key = m.key()
        (version,) = struct.unpack_from(">h", key, 0)
        if version not in (0, 1):
            continue
        (glen,) = struct.unpack_from(">h", key, 2)
        g = key[4 : 4 + glen].decode()
        (tlen,) = struct.unpack_from(">h", key, 4 + glen)
        t = key[6 + glen : 6 + glen + tlen].decode()
        (part,) = struct.unpack_from(">i", key, 6 + glen + tlen)
        if g == group and t == topic_name:
            keys.add(part)
    reader.close()
    assert keys == {p for p, o in before.items() if o >= 0}


def test_cooperative_sticky_moves_only_what_it_must(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 12)
    group = f"coop-{topic_name}"
    events: dict[str, list[tuple[str, list[int]]]] = {"a": [], "b": []}

    def consumer(name: str) -> Consumer:
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                      "partition.assignment.strategy": "cooperative-sticky", "heartbeat.interval.ms": 500})

        def on_assign(cons, parts):
            events[name].append(("assign", sorted(p.partition for p in parts)))

        def on_revoke(cons, parts):
            events[name].append(("revoke", sorted(p.partition for p in parts)))

        c.subscribe([topic_name], on_assign=on_assign, on_revoke=on_revoke)
        return c

    a = consumer("a")
    wait_until(lambda: (a.poll(0.1), len(a.assignment()) == 12)[1], 60, "a to own all partitions")
    b = consumer("b")

    def split():
        a.poll(0.05)
        b.poll(0.05)
        return len(a.assignment()) == 6 and len(b.assignment()) == 6

    wait_until(split, 60, "a and b to own 6 partitions each", interval_s=0)
    kept = {tp.partition for tp in a.assignment()}
    revoked = [p for kind, ps in events["a"] if kind == "revoke" for p in ps]
    assert len(revoked) == 6, f"a revoked {revoked}, expected exactly the 6 that moved: {events['a']}"
    assert kept.isdisjoint(revoked)
    assert {tp.partition for tp in b.assignment()} == set(revoked)
    assert not any(kind == "revoke" for kind, _ in events["b"]), events["b"]
    b.close()
    a.close()


def test_kcat_balanced_consumer(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 3)
    produce_mids(broker.bootstrap, topic_name, 30, 3)
    group = f"kcat-{topic_name}"
    out = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-G", group, topic_name, "-X", "auto.offset.reset=earliest",
         "-f", "%p %o %s\n", "-e", "-q"],
        capture_output=True, text=True, timeout=90,
    )
    assert out.returncode == 0, out.stderr
    values = sorted(int(line.split()[2]) for line in out.stdout.splitlines() if line.strip())
    assert values == list(range(30))
    assert committed(broker.bootstrap, group, topic_name, 3) == {0: 10, 1: 10, 2: 10}


def test_aiokafka_group_consumer(broker, topic_name):
    from aiokafka import AIOKafkaConsumer

    create_topic(broker.bootstrap, topic_name, 3)
    produce_mids(broker.bootstrap, topic_name, 30, 3)
    group = f"aio-{topic_name}"

    async def consume() -> list[int]:
        c = AIOKafkaConsumer(topic_name, bootstrap_servers=broker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        got: list[int] = []
        try:
            while len(got) < 30:
                batch = await asyncio.wait_for(c.getmany(timeout_ms=500), 60)
                for msgs in batch.values():
                    got.extend(int(m.value) for m in msgs)
            await c.commit()
        finally:
            await c.stop()
        return got

    assert sorted(asyncio.run(asyncio.wait_for(consume(), 120))) == list(range(30))
    assert committed(broker.bootstrap, group, topic_name, 3) == {0: 10, 1: 10, 2: 10}


def join_group_v1(conn: KafkaConnection, group: str, protocol_type: str, member_id: str = "") -> int:
    body = (
        nullable_string(group)
        + struct.pack(">ii", SESSION_MS, 30_000)
        + nullable_string(member_id)
        + nullable_string(protocol_type)
        + struct.pack(">i", 1)
        + nullable_string("range")
        + nullable_bytes(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    )
    return conn.request(API_JOIN_GROUP, 1, body).int16()


def heartbeat_v0(conn: KafkaConnection, group: str, generation: int, member_id: str) -> int:
    body = nullable_string(group) + struct.pack(">i", generation) + nullable_string(member_id)
    return conn.request(API_HEARTBEAT, 0, body).int16()


def offset_commit_v2(conn: KafkaConnection, group: str, generation: int, member_id: str, topic: str) -> int:
    body = (
        nullable_string(group)
        + struct.pack(">i", generation)
        + nullable_string(member_id)
        + struct.pack(">q", -1)
        + struct.pack(">i", 1)
        + nullable_string(topic)
        + struct.pack(">i", 1)
        + struct.pack(">iq", 0, 1)
        + nullable_string("")
    )
    resp = conn.request(API_OFFSET_COMMIT, 2, body)
    topics = resp.array(lambda r: (r.string(), r.array(lambda rr: (rr.int32(), rr.int16()))))
    return topics[0][1][0][1]


def test_bad_group_requests_get_errors_and_the_group_stays_healthy(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    group = f"healthy-{topic_name}"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic_name])
    wait_until(lambda: (c.poll(0.1), len(c.assignment()) == 1)[1], 60, "the consumer to be assigned")
    d = describe(broker.bootstrap, group)
    member_id = d.members[0].member_id

    with KafkaConnection(broker.bootstrap) as conn:
        assert join_group_v1(conn, group, "not-a-consumer") == ERR_INCONSISTENT_GROUP_PROTOCOL
        assert offset_commit_v2(conn, group, 0, member_id, topic_name) == ERR_ILLEGAL_GENERATION
        assert heartbeat_v0(conn, group, 1, "no-such-member") == ERR_UNKNOWN_MEMBER_ID
        assert heartbeat_v0(conn, f"never-{group}", 1, "no-such-member") == ERR_UNKNOWN_MEMBER_ID

    produce_mids(broker.bootstrap, topic_name, 5, 1)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 5 and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(int(m.value()))
    assert got == list(range(5))
    c.commit(asynchronous=False)
    assert str(describe(broker.bootstrap, group).state).endswith("STABLE")
    assert len(describe(broker.bootstrap, group).members) == 1
    c.close()
    assert committed(broker.bootstrap, group, topic_name, 1) == {0: 5}


def test_cli_describe_shows_lag_and_reset_is_refused_while_members_exist(broker, topic_name, sluice_bin):
    create_topic(broker.bootstrap, topic_name, 2)
    produce_mids(broker.bootstrap, topic_name, 20, 2)
    group = f"cli-{topic_name}"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "client.id": "lag-client"})
    c.subscribe([topic_name])
    wait_until(lambda: (c.poll(0.1), len(c.assignment()) == 2)[1], 60, "the consumer to be assigned")
    c.commit(offsets=[TopicPartition(topic_name, 0, 4), TopicPartition(topic_name, 1, 10)], asynchronous=False)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sluice_bin, "group", *args, "-b", broker.bootstrap], capture_output=True, text=True,
                              timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")})

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:2] == [group, "Stable"] for line in listed.stdout.splitlines()), listed.stdout
    described = cli("describe", group)
    assert described.returncode == 0, described.stderr
    rows = {}
    for line in described.stdout.splitlines():
        cols = line.split()
        if cols and cols[0] == topic_name:
            rows[int(cols[1])] = cols
    # TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    assert [rows[0][2:5], rows[1][2:5]] == [["4", "10", "6"], ["10", "10", "0"]], described.stdout
    assert rows[0][7] == "lag-client"

    refused = cli("reset-offsets", group, "--topic", topic_name, "--to-earliest", "--execute")
    assert refused.returncode != 0
    assert "active member" in refused.stderr
    c.close()

    dry = cli("reset-offsets", group, "--topic", topic_name, "--to-offset", "3")
    assert dry.returncode == 0, dry.stderr
    assert committed(broker.bootstrap, group, topic_name, 2) == {0: 4, 1: 10}, "a dry run changes nothing"
    done = cli("reset-offsets", group, "--topic", topic_name, "--to-offset", "3", "--execute")
    assert done.returncode == 0, done.stderr
    assert committed(broker.bootstrap, group, topic_name, 2) == {0: 3, 1: 3}
    done = cli("reset-offsets", group, "--topic", topic_name, "--to-latest", "--execute")
    assert done.returncode == 0, done.stderr
    assert committed(broker.bootstrap, group, topic_name, 2) == {0: 10, 1: 10}


def test_kip848_consumer_protocol_assigns_on_the_broker(broker, topic_name):
    """Stretch: librdkafka's `group.protocol=consumer` (ConsumerGroupHeartbeat, KIP-848)."""
    create_topic(broker.bootstrap, topic_name, 6)
    produce_mids(broker.bootstrap, topic_name, 60, 6)
    group = f"kip848-{topic_name}"
    events: dict[str, list[tuple[str, list[int]]]] = {"a": [], "b": []}
    got: set[int] = set()

    def consumer(name: str) -> Consumer:
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "group.protocol": "consumer",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic_name],
                    on_assign=lambda _c, ps: events[name].append(("assign", sorted(p.partition for p in ps))),
                    on_revoke=lambda _c, ps: events[name].append(("revoke", sorted(p.partition for p in ps))))
        return c

    def poll(*cs: Consumer) -> None:
        for c in cs:
            m = c.poll(0.05)
            if m is not None and not m.error():
                got.add(int(m.value()))
                c.commit(message=m, asynchronous=False)

    a = consumer("a")
    wait_until(lambda: (poll(a), len(a.assignment()) == 6)[1], 30, "a to own all partitions", interval_s=0)
    b = consumer("b")
    wait_until(lambda: (poll(a, b), len(a.assignment()) == 3 and len(b.assignment()) == 3)[1], 60,
               "the broker to split the partitions", interval_s=0)
    revoked = {p for kind, ps in events["a"] if kind == "revoke" for p in ps}
    assert revoked == {tp.partition for tp in b.assignment()}, events
    assert revoked.isdisjoint(tp.partition for tp in a.assignment())
    wait_until(lambda: (poll(a, b), len(got) == 60)[1], 60, "every message", interval_s=0)
    # librdkafka describes a consumer-protocol group with ConsumerGroupDescribe (KIP-848).
    description = describe(broker.bootstrap, group)
    assert description.type == ConsumerGroupType.CONSUMER, description
    assert str(description.state).endswith("STABLE"), description.state
    assert len(description.members) == 2
    owned = sorted(tp.partition for m in description.members for tp in m.assignment.topic_partitions)
    assert owned == list(range(6)), description.members
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    listed = admin.list_consumer_groups().result(timeout=10)
    assert group in {g.group_id for g in listed.valid}, (listed.valid, listed.errors)
    a.close()
    b.close()
    assert committed(broker.bootstrap, group, topic_name, 6) == {p: 10 for p in range(6)}
