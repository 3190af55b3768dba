"""Several log directories (Kafka's `log.dirs`): where new partitions go, DescribeLogDirs for
every directory, and AlterReplicaLogDirs moving live partitions between directories while a
producer and a consumer keep running — nothing acknowledged is lost or duplicated, and the
moved partitions stay moved across a restart. Checked with kafka-python's admin client (the
requests kafka-reassign-partitions.sh sends) and librdkafka producers and consumers.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   ResourceType)
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import InvalidTopicError, LogDirNotFoundError, NoError, ReplicaNotAvailableError

from traffic import TIMEOUT_S, Traffic, prefill, read_partition

DISKS = ("disk1", "disk2")
# 4 MB/s: a prefilled partition of 6 MB takes over a second to copy, so the move is observable.
THROTTLE = 4_000_000


@pytest.fixture
def admin(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20_000)
    yield client
    client.close()


def disks(broker) -> list[str]:
    # The broker runs in the data dir's parent, so relative --log-dirs land beside it.
    return [str((broker.data_dir.parent / d).resolve()) for d in DISKS]


def placement(admin) -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], dict]]:
    """(partition -> log dir of the live replica, partition -> future replica entry)."""
    live, future = {}, {}
    (answer,) = admin.describe_log_dirs()
    for log_dir in answer["log_dirs"]:
        assert log_dir["error_code"] == 0, log_dir
        for topic in log_dir["topics"]:
            for p in topic["partitions"]:
                key = (topic["name"], p["partition_index"])
                if p["is_future_key"]:
                    future[key] = {**p, "log_dir": log_dir["log_dir"]}
                else:
                    assert key not in live, f"{key} is live in two directories"
                    live[key] = log_dir["log_dir"]
    return live, future


def placement_of(broker):
    """`placement` through a fresh admin client (after a restart the fixture's is stale)."""
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20_000)
    try:
        return placement(client)
    finally:
        client.close()


@pytest.mark.broker_args("--log-dirs", ",".join(DISKS))
def test_new_partitions_spread_over_the_directories(broker, admin, topic_name):
    admin.create_topics([NewTopic(topic_name, 4, 1)])
    live, future = placement(admin)
    d1, d2 = disks(broker)
    mine = {k: v for k, v in live.items() if k[0] == topic_name}
    assert sorted(mine.values()) == [d1, d1, d2, d2], mine
    assert not future
    (answer,) = admin.describe_log_dirs()
    assert sorted(d["log_dir"] for d in answer["log_dirs"]) == sorted([d1, d2])
    for d in answer["log_dirs"]:
        assert d["total_bytes"] >= d["usable_bytes"] > 0
    # Each partition's directory is on disk where the broker says it is.
    for (topic, p), log_dir in mine.items():
        assert (Path(log_dir) / f"{topic}-{p}").is_dir()


@pytest.mark.broker_args("--log-dirs", ",".join(DISKS))
def test_refusals_use_kafkas_error_codes(broker, admin, topic_name):
    admin.create_topics([NewTopic(topic_name, 1, 1)])
    d1, _ = disks(broker)
    answer = admin.alter_replica_log_dirs({
        (topic_name, 0, 1): "/not/a/log/dir",
        ("no-such-topic", 0, 1): d1,
        (topic_name, 7, 1): d1,
    })
    by_partition = {(tpr.topic, tpr.partition): err for tpr, err in answer.items()}
    assert by_partition[(topic_name, 0)] is LogDirNotFoundError
    assert by_partition[("no-such-topic", 0)] is ReplicaNotAvailableError
    assert by_partition[(topic_name, 7)] is ReplicaNotAvailableError
    # Where it already is: nothing to do.
    live, _ = placement(admin)
    home = live[(topic_name, 0)]
    assert set(admin.alter_replica_log_dirs({(topic_name, 0, 1): home}).values()) == {NoError}
    long_topic = "x" * 240
    admin.create_topics([NewTopic(long_topic, 1, 1)])
    other = [d for d in disks(broker) if d != placement(admin)[0][(long_topic, 0)]][0]
    (err,) = admin.alter_replica_log_dirs({(long_topic, 0, 1): other}).values()
    assert err is InvalidTopicError
    # A partition that does not exist yet: REPLICA_NOT_AVAILABLE, and the directory is
    # remembered, as Kafka does: the partition is created there (here in the directory the
    # default placement — fewest partitions, then configured order — would not pick).
    live, _ = placement(admin)
    order = disks(broker)
    default = min(order, key=lambda d: (sum(1 for v in live.values() if v == d), order.index(d)))
    wanted = next(d for d in order if d != default)
    later = f"{topic_name}-later"
    (err,) = admin.alter_replica_log_dirs({(later, 0, 1): wanted}).values()
    assert err is ReplicaNotAvailableError
    admin.create_topics([NewTopic(later, 1, 1)])
    assert placement(admin)[0][(later, 0)] == wanted


@pytest.mark.broker_args("--log-dirs", ",".join(DISKS),
                         "--replica-alter-log-dirs-io-max-bytes-per-second", str(THROTTLE))
def test_live_partitions_move_between_directories_losing_nothing(broker, admin, topic_name):
    admin.create_topics([NewTopic(topic_name, 2, 1)])
    d1, d2 = disks(broker)
    live, _ = placement(admin)
    assert (live[(topic_name, 0)], live[(topic_name, 1)]) == (d1, d2)
    prefilled = prefill(broker.bootstrap, topic_name, 2, 6000)
    traffic = Traffic(broker.bootstrap, topic_name, 2)
    traffic.start()
    time.sleep(1)
    # Swap them: partition 0 to disk2, partition 1 to disk1.
    answer = admin.alter_replica_log_dirs({(topic_name, 0, 1): d2, (topic_name, 1, 1): d1})
    assert set(answer.values()) == {NoError}, answer
    seen_future = {}
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        live, future = placement(admin)
        for key, entry in future.items():
            seen_future.setdefault(key, entry)
        if live[(topic_name, 0)] == d2 and live[(topic_name, 1)] == d1 and not future:
            break
        assert time.monotonic() < deadline, f"moves did not finish: {live} {future}"
        assert not traffic.errors, traffic.errors
        broker.check_alive()
        time.sleep(0.1)
    # While copying, DescribeLogDirs showed each copy in its destination, behind the live log.
    assert set(seen_future) == {(topic_name, 0), (topic_name, 1)}, seen_future
    assert seen_future[(topic_name, 0)]["log_dir"] == d2
    assert seen_future[(topic_name, 1)]["log_dir"] == d1
    assert all(e["offset_lag"] > 0 for e in seen_future.values()), seen_future
    time.sleep(1)  # traffic continues after the switch
    traffic.finish()
    assert not traffic.errors, traffic.errors
    for p in range(2):
        acked = traffic.acked[p]
        assert len(acked) > 100, f"partition {p}: too little traffic during the move"
        expected = [(i, v) for i, v in enumerate(prefilled[p])] + acked
        assert [o for o, _ in expected] == list(range(len(expected))), f"partition {p}: offsets not contiguous"
        assert traffic.consumed[p] == expected, f"partition {p}: consumer saw something else"
    # The old copies are gone from disk; the new ones are where DescribeLogDirs says.
    assert not (Path(d1) / f"{topic_name}-0").exists() and (Path(d2) / f"{topic_name}-0").is_dir()
    assert not (Path(d2) / f"{topic_name}-1").exists() and (Path(d1) / f"{topic_name}-1").is_dir()
    assert not [e for d in (d1, d2) for e in Path(d).iterdir() if e.name.endswith(("-future", "-swap", "-delete"))]

    broker.restart()
    live, future = placement_of(broker)
    assert (live[(topic_name, 0)], live[(topic_name, 1)], future) == (d2, d1, {})
    reader = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"{topic_name}-after",
                       "auto.offset.reset": "earliest"})
    reader.subscribe([topic_name])
    after = {0: [], 1: []}
    total = sum(len(v) for v in traffic.consumed.values())
    deadline = time.monotonic() + TIMEOUT_S
    while sum(len(v) for v in after.values()) < total and time.monotonic() < deadline:
        msg = reader.poll(0.5)
        if msg is not None and msg.error() is None:
            after[msg.partition()].append((msg.offset(), msg.value()))
    reader.close()
    assert after == traffic.consumed


@pytest.mark.broker_args("--log-dirs", ",".join(DISKS),
                         "--replica-alter-log-dirs-io-max-bytes-per-second", "200000")
def test_a_move_stopped_by_shutdown_leaves_the_partition_where_it_was(broker, admin, topic_name):
    admin.create_topics([NewTopic(topic_name, 1, 1)])
    d1, d2 = disks(broker)
    values = prefill(broker.bootstrap, topic_name, 1, 3000)
    assert set(admin.alter_replica_log_dirs({(topic_name, 0, 1): d2}).values()) == {NoError}
    deadline = time.monotonic() + TIMEOUT_S
    while not placement(admin)[1]:
        assert time.monotonic() < deadline, "the copy never showed up"
        time.sleep(0.05)
    # 3 MB at 200 kB/s: the copy is far from done when the broker is killed.
    broker.kill9()
    broker.start()
    live, future = placement_of(broker)
    assert (live[(topic_name, 0)], future) == (d1, {})
    assert not [e for e in Path(d2).iterdir() if e.name.startswith(topic_name)], \
        "the unfinished copy is removed at start-up"
    assert read_partition(broker.bootstrap, topic_name, 0, len(values[0])) == values[0]


@pytest.mark.broker_args("--log-dirs", ",".join(DISKS),
                         "--replica-alter-log-dirs-io-max-bytes-per-second", "100000")
def test_the_move_throttle_is_a_dynamic_broker_config(broker, admin, topic_name):
    """What `kafka-reassign-partitions.sh --replica-alter-log-dirs-throttle` does: raise the
    throttle on a live broker (librdkafka's AdminClient), and the stalled move completes."""
    throttle = "replica.alter.log.dirs.io.max.bytes.per.second"
    rdkafka = AdminClient({"bootstrap.servers": broker.bootstrap})
    node = ConfigResource(ResourceType.BROKER, "1")

    def described():
        (future,) = rdkafka.describe_configs([node]).values()
        return future.result(timeout=30)

    def alter(*entries):
        resource = ConfigResource(ResourceType.BROKER, "1", incremental_configs=list(entries))
        rdkafka.incremental_alter_configs([resource])[resource].result(timeout=30)

    start = described()[throttle]
    assert (start.value, start.source, start.is_read_only) == (
        "100000", ConfigSource.STATIC_BROKER_CONFIG.value, False)
    admin.create_topics([NewTopic(topic_name, 1, 1)])
    _, d2 = disks(broker)
    values = prefill(broker.bootstrap, topic_name, 1, 2000)
    assert set(admin.alter_replica_log_dirs({(topic_name, 0, 1): d2}).values()) == {NoError}
    time.sleep(2)
    live, future = placement(admin)
    # 2 MB at 100 kB/s: far from done.
    assert live[(topic_name, 0)] != d2 and future[(topic_name, 0)]["offset_lag"] > 0, (live, future)
    alter(ConfigEntry(throttle, "1000000000", incremental_operation=AlterConfigOpType.SET),
          ConfigEntry("leader.replication.throttled.rate", "5000000",
                      incremental_operation=AlterConfigOpType.SET))
    configs = described()
    assert (configs[throttle].value, configs[throttle].source) == (
        "1000000000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert configs["leader.replication.throttled.rate"].value == "5000000"
    deadline = time.monotonic() + 20
    while placement(admin)[0][(topic_name, 0)] != d2:
        assert time.monotonic() < deadline, "the move did not speed up"
        time.sleep(0.1)
    # A bad value is refused and changes nothing; DELETE falls back to the start-up setting.
    bad = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry(throttle, "0", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(Exception, match="INVALID_CONFIG|at least 1"):
        rdkafka.incremental_alter_configs([bad])[bad].result(timeout=30)
    alter(ConfigEntry(throttle, None, incremental_operation=AlterConfigOpType.DELETE))
    assert described()[throttle].value == "100000"
    assert read_partition(broker.bootstrap, topic_name, 0, len(values[0])) == values[0]
