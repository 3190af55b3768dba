"""`sluice balance` end to end on Sluice's broker with two log directories: a broker whose
partitions all sit on one disk is rebalanced across both while a producer and a consumer keep
running, losing nothing; the model round-trips through JSON for offline proposals; `stop`
cancels a running execution; throttles are set during execution and put back as they were
afterwards (an operator's own value restored, one the execution added removed).

Only moves between the log directories of one broker can be executed here (Sluice is a single
node); moves between brokers are covered by the optimizer's property tests and by the request
shapes of AlterPartitionReassignments, and were not run against a multi-broker Kafka.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                  ResourceType)
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import NoError

from traffic import TIMEOUT_S, Traffic, prefill

DISKS = ("disk1", "disk2")


@pytest.fixture
def admin(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20_000)
    yield client
    client.close()


def balance(sluice_bin: str, broker, *args: str, check: bool = True, timeout: float = 120):
    result = subprocess.run([sluice_bin, "balance", *args, "-b", broker.bootstrap], capture_output=True,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    return result


MOVE_THROTTLE = "replica.alter.log.dirs.io.max.bytes.per.second"


def move_throttle(broker) -> str | None:
    """The dynamic replica.alter.log.dirs.io.max.bytes.per.second of broker 1, if one is set."""
    node = ConfigResource(ResourceType.BROKER, "1")
    client = AdminClient({"bootstrap.servers": broker.bootstrap})  # kept alive until the answer
    throttle = client.describe_configs([node])[node].result(30)[MOVE_THROTTLE]
    return throttle.value if throttle.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value else None


def move_throttle_is_dynamic(broker) -> bool:
    return move_throttle(broker) is not None


def set_move_throttle(broker, value: str) -> None:
    """Sets the throttle as an operator would, before the rebalancer runs."""
    node = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry(MOVE_THROTTLE, value, incremental_operation=AlterConfigOpType.SET)])
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    client.incremental_alter_configs([node])[node].result(30)


def dir_sizes(admin, topic: str) -> dict[str, int]:
    (answer,) = admin.describe_log_dirs()
    return {d["log_dir"]: sum(p["partition_size"] for t in d["topics"] if t["name"] == topic
                              for p in t["partitions"] if not p["is_future_key"])
            for d in answer["log_dirs"]}


def skew(broker, admin, topic: str, partitions: int) -> str:
    """Creates `topic` and moves every partition to the first disk; returns that disk."""
    admin.create_topics([NewTopic(topic, partitions, 1)])
    first = str((broker.data_dir.parent / DISKS[0]).resolve())
    answer = admin.alter_replica_log_dirs({(topic, p, 1): first for p in range(partitions)})
    assert set(answer.values()) == {NoError}
    deadline = time.monotonic() + TIMEOUT_S
    while dir_sizes(admin, topic).get(str((broker.data_dir.parent / DISKS[1]).resolve()), 0) != 0 \
            or any(d["topics"] and any(p["is_future_key"] for t in d["topics"] for p in t["partitions"])
                   for d in admin.describe_log_dirs()[0]["log_dirs"]):
        assert time.monotonic() < deadline, "could not skew the topic onto one disk"
        time.sleep(0.1)
    return first


@pytest.mark.broker_args("--log-dirs", ",".join(DISKS))
def test_a_skewed_broker_is_rebalanced_across_its_disks_while_clients_run(sluice_bin, broker, admin, topic_name):
    first = skew(broker, admin, topic_name, 6)
    prefill(broker.bootstrap, topic_name, 6, 1500)
    sizes = dir_sizes(admin, topic_name)
    assert sizes[first] > 8_000_000 and sum(sizes.values()) == sizes[first], sizes

    # An operator's own throttle, which the execution replaces while it runs and then puts back.
    set_move_throttle(broker, "900000000")
    traffic = Traffic(broker.bootstrap, topic_name, 6)
    traffic.start()
    time.sleep(1)
    result = balance(sluice_bin, broker, "execute", "--sample-secs", "1", "--throttle", "50000000")
    out = result.stdout.decode()
    assert "IntraBrokerDiskUsageDistributionGoal" in out, out
    assert "log-dir moves" in out and "done in" in out, out
    assert "throttles set and put back" in out, out
    time.sleep(1)
    traffic.finish()
    assert not traffic.errors, traffic.errors

    # Both disks now hold a fair share (6 partitions of similar size: 3 and 3).
    sizes = dir_sizes(admin, topic_name)
    low, high = min(sizes.values()), max(sizes.values())
    assert low > 0.6 * high, sizes
    # Nothing acknowledged was lost or duplicated.
    for p in range(6):
        acked = traffic.acked[p]
        consumed = traffic.consumed[p]
        assert len(acked) > 50, f"partition {p}: too little traffic during the execution"
        assert [o for o, _ in consumed] == list(range(len(consumed))), f"partition {p}: gaps or duplicates"
        assert consumed[-len(acked):] == acked, f"partition {p}: acknowledged messages missing"
        assert len(consumed) == 1500 + len(acked)
    # The operator's throttle is back, and a second proposal has nothing left to do.
    assert move_throttle(broker) == "900000000"
    again = balance(sluice_bin, broker, "propose", "--sample-secs", "0").stdout.decode()
    assert "0 partitions change" in again, again
    status = balance(sluice_bin, broker, "status").stdout.decode()
    assert "no moves in progress" in status


@pytest.mark.broker_args("--log-dirs", ",".join(DISKS))
def test_the_model_round_trips_for_offline_proposals(sluice_bin, broker, admin, topic_name, tmp_path):
    skew(broker, admin, topic_name, 4)
    prefill(broker.bootstrap, topic_name, 4, 500)
    model = tmp_path / "model.json"
    balance(sluice_bin, broker, "model", "--sample-secs", "0", "-o", str(model))
    data = json.loads(model.read_text())
    assert data["version"] == 1 and len(data["brokers"]) == 1
    assert sorted(d["path"] for d in data["brokers"][0]["log_dirs"]) == sorted(
        str((broker.data_dir.parent / d).resolve()) for d in DISKS)
    assert data["topics"] == [topic_name]
    assert all(p["load"]["disk_bytes"] > 400_000 for p in data["partitions"])
    online = balance(sluice_bin, broker, "propose", "--sample-secs", "0", "-o", str(tmp_path / "a.json"))
    # Offline, from the saved model: the same proposal (no cluster needed; -b is ignored).
    offline = subprocess.run([sluice_bin, "balance", "propose", "--model", str(model), "-o", str(tmp_path / "b.json"),
                              "-b", "127.0.0.1:1"], capture_output=True, timeout=60)
    assert offline.returncode == 0, offline.stderr.decode()
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["changes"] == b["changes"] and a["summary"] == b["summary"]
    assert a["summary"]["intra_broker_moves"] >= 1
    # A corrupt model is refused with a clear error.
    model.write_text('{"version": 1, "brokers": [], "topics": [], "partitions": []}')
    bad = subprocess.run([sluice_bin, "balance", "propose", "--model", str(model)], capture_output=True, timeout=60)
    assert bad.returncode != 0 and b"no brokers" in bad.stderr
    unknown = balance(sluice_bin, broker, "propose", "--sample-secs", "0", "--goals", "NoSuchGoal", check=False)
    assert unknown.returncode != 0 and b"unknown goal" in unknown.stderr


def test_measured_cpu_is_shared_among_the_replicas_by_their_traffic(sluice_bin, broker, admin, topic_name,
                                                                      tmp_path):
    admin.create_topics([NewTopic(topic_name, 3, 1)])
    prefill(broker.bootstrap, topic_name, 3, 300)
    usage = tmp_path / "cpu.json"
    usage.write_text('{"1": 1.5}')
    capacity = tmp_path / "capacity.json"
    capacity.write_text('{"default": {"cpu_cores": 4}}')
    model = tmp_path / "model.json"
    traffic = Traffic(broker.bootstrap, topic_name, 3)
    traffic.start()
    try:
        balance(sluice_bin, broker, "model", "--sample-secs", "2", "--cpu-usage", str(usage),
                "--capacity", str(capacity), "-o", str(model))
    finally:
        traffic.finish()
    assert not traffic.errors, traffic.errors
    data = json.loads(model.read_text())
    assert data["brokers"][0]["capacity"]["cpu_cores"] == 4
    ours = [p["load"] for p in data["partitions"] if data["topics"][p["topic"]] == topic_name]
    assert all(load["bytes_in"] > 0 and load["cpu_leader"] > 0 for load in ours), ours
    # One broker leading everything: its 1.5 busy cores are all the leaders' CPU.
    total = sum(p["load"]["cpu_leader"] for p in data["partitions"])
    assert abs(total - 1.5) < 1e-6, total
    propose = balance(sluice_bin, broker, "propose", "--model", str(model)).stdout.decode()
    assert "CpuCapacityGoal" in propose and "CPU CORES" in propose, propose
    # A measurement that cannot be right is refused, naming the broker.
    usage.write_text('{"1": -2}')
    bad = balance(sluice_bin, broker, "model", "--sample-secs", "0", "--cpu-usage", str(usage), check=False)
    assert bad.returncode != 0 and b"broker 1" in bad.stderr, bad.stderr


@pytest.mark.broker_args("--log-dirs", ",".join(DISKS))
def test_stop_cancels_a_running_execution(sluice_bin, broker, admin, topic_name):
    skew(broker, admin, topic_name, 4)
    prefill(broker.bootstrap, topic_name, 4, 3000)
    # 100 kB/s: 12 MB would take two minutes.
    execution = subprocess.Popen([sluice_bin, "balance", "execute", "--sample-secs", "0", "--throttle", "100000",
                                  "-b", broker.bootstrap], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while "copying" not in balance(sluice_bin, broker, "status").stdout.decode():
            assert time.monotonic() < deadline, "the execution never started a copy"
            assert execution.poll() is None, execution.stderr.read().decode()
            time.sleep(0.2)
        stopped = balance(sluice_bin, broker, "stop").stdout.decode()
        assert "log-dir copy" in stopped, stopped
        out, err = execution.communicate(timeout=TIMEOUT_S)
    finally:
        if execution.poll() is None:
            execution.kill()
    assert execution.returncode != 0, out.decode()
    assert b"stopped in" in out, out.decode() + err.decode()
    assert "no moves in progress" in balance(sluice_bin, broker, "status").stdout.decode()
    # The throttle the execution set is gone again.
    assert not move_throttle_is_dynamic(broker)


@pytest.mark.broker_args("--log-dirs", ",".join(DISKS))
def test_leaders_and_a_removed_broker_on_one_node(sluice_bin, broker, admin, topic_name):
    admin.create_topics([NewTopic(topic_name, 2, 1)])
    out = balance(sluice_bin, broker, "leaders").stdout.decode()
    assert "every partition is led by its preferred replica" in out
    # Draining the only broker is impossible, and the error says which broker and why.
    for args in (("propose", "--remove-broker", "1"), ("broker", "remove", "1", "--dry-run")):
        refused = balance(sluice_bin, broker, *args, "--sample-secs", "0", check=False)
        assert refused.returncode != 0
        assert b"broker 1 is being removed" in refused.stderr, refused.stderr.decode()
    # Adding the broker that holds everything already moves nothing; an unknown id is refused.
    added = balance(sluice_bin, broker, "broker", "add", "1", "--dry-run", "--sample-secs", "0").stdout.decode()
    assert "0 partitions change" in added, added
    unknown = balance(sluice_bin, broker, "broker", "add", "9", "--sample-secs", "0", check=False)
    assert unknown.returncode != 0 and b"broker 9 is not in the cluster" in unknown.stderr
