"""The newer cluster APIs (issue 12 item 4) through kafka-python 3's admin client, which speaks
them natively: DescribeTopicPartitions (KIP-966) with cursor paging, ElectLeaders (KIP-460),
List/AlterPartitionReassignments (KIP-455) on a single node, and the KIP-714 telemetry
handshake that librdkafka and Java clients 3.7+ make at start-up.
"""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Consumer, Producer
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError, UnknownTopicOrPartitionError

TIMEOUT_S = 20


@pytest.fixture
def admin(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    yield client
    client.close()


def create(admin, name: str, partitions: int) -> None:
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])


def test_describe_topic_partitions_pages_with_a_cursor(admin, topic_name):
    a, b = f"{topic_name}-a", f"{topic_name}-b"
    create(admin, a, 5)
    create(admin, b, 3)
    seen = []
    cursor = None
    pages = 0
    while True:
        page = admin.describe_topic_partitions([b, a], response_partition_limit=3, cursor=cursor)
        pages += 1
        for topic in page["topics"]:
            assert topic["error_code"] == 0, topic
            for p in topic["partitions"]:
                assert p["leader_id"] == 1 and p["replica_nodes"] == [1] and p["isr_nodes"] == [1]
                seen.append((topic["name"], p["partition_index"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "the cursor must advance"
    # Sorted by topic name, every partition exactly once, 3 per page.
    assert seen == [(a, i) for i in range(5)] + [(b, i) for i in range(3)]
    assert pages == 3
    missing = admin.describe_topic_partitions([f"{topic_name}-missing"])
    assert missing["topics"][0]["error_code"] == UnknownTopicOrPartitionError.errno


def test_elect_leaders_is_never_needed_on_one_node(admin, topic_name):
    create(admin, topic_name, 2)
    response = admin.elect_leaders(0, {topic_name: [0, 1]}, raise_errors=False)
    codes = {p.partition_id: p.error_code for r in response.replica_election_results for p in r.partition_result}
    assert codes == {0: 84, 1: 84}, "ELECTION_NOT_NEEDED"
    unknown = admin.elect_leaders(0, {topic_name: [7]}, raise_errors=False)
    assert unknown.replica_election_results[0].partition_result[0].error_code == UnknownTopicOrPartitionError.errno
    # Every partition (kafka-python names them all): no election is needed anywhere.
    everywhere = admin.elect_leaders(1, None, raise_errors=False)
    codes = {p.error_code for r in everywhere.replica_election_results for p in r.partition_result}
    assert codes == {84}


def test_partition_reassignments_on_one_node(admin, topic_name):
    create(admin, topic_name, 1)
    tp = TopicPartition(topic_name, 0)
    assert admin.list_partition_reassignments() == {}
    # Moving to the broker it is on is a completed no-op; anywhere else does not exist.
    assert admin.alter_partition_reassignments({tp: [1]}) == {tp: None}
    assert admin.alter_partition_reassignments({tp: [2]}) == {tp: InvalidReplicationAssignmentError}
    assert admin.alter_partition_reassignments({tp: [1, 2]}) == {tp: InvalidReplicationAssignmentError}
    assert admin.alter_partition_reassignments({tp: None}) == {tp: NoReassignmentInProgressError}
    other = TopicPartition(topic_name, 5)
    assert admin.alter_partition_reassignments({other: [1]}) == {other: UnknownTopicOrPartitionError}
    assert admin.list_partition_reassignments({topic_name: [0]}) == {}


def test_telemetry_handshake_does_not_disturb_clients(broker, topic_name):
    """librdkafka asks GetTelemetrySubscriptions once the broker lists it (KIP-714); the empty
    subscription is accepted (no metrics to push) and producing and consuming work as before."""
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    log = logging.getLogger(f"rdkafka-{topic_name}")
    log.addHandler(Capture())
    log.setLevel(logging.DEBUG)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "debug": "telemetry"}, logger=log)
    for i in range(10):
        producer.produce(topic_name, value=f"m{i}".encode())
    assert producer.flush(TIMEOUT_S) == 0
    deadline = time.monotonic() + TIMEOUT_S
    handled = lambda: [l for l in lines if "Handled GetTelemetrySubscriptions" in l]  # noqa: E731
    while not handled() and time.monotonic() < deadline:
        producer.poll(0.2)
    assert handled(), lines
    assert "err = Success, metrics = 0" in handled()[0]
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic_name])
    got = []
    while len(got) < 10 and time.monotonic() < deadline + TIMEOUT_S:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.close()
    assert got == [f"m{i}".encode() for i in range(10)]


def test_describe_log_dirs_reports_sizes_and_space(broker, admin, topic_name):
    create(admin, topic_name, 2)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in range(2000):
        producer.produce(topic_name, value=b"x" * 1000, partition=i % 2)
    assert producer.flush(TIMEOUT_S) == 0
    (answer,) = admin.describe_log_dirs({topic_name: [0, 1]})
    assert answer["broker"] == 1
    (log_dir,) = answer["log_dirs"]
    assert log_dir["error_code"] == 0
    assert log_dir["log_dir"] == str(broker.data_dir.resolve())
    assert log_dir["total_bytes"] > log_dir["usable_bytes"] > 0
    (topic,) = log_dir["topics"]
    sizes = {p["partition_index"]: p["partition_size"] for p in topic["partitions"]}
    assert set(sizes) == {0, 1}
    # 1,000 records of 1 kB each per partition, plus batch and record headers.
    assert all(1_000_000 <= size <= 1_200_000 for size in sizes.values()), sizes
    everything = admin.describe_log_dirs()[0]["log_dirs"][0]["topics"]
    assert topic_name in {t["name"] for t in everything}
