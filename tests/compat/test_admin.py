"""Topic administration through confluent's AdminClient, kafka-python's KafkaAdminClient and kcat."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.admin._configs import ConfigResource as KpConfigResource, ConfigResourceType

from clients import confluent_consume, confluent_consumer, confluent_produce, create_topic, make_messages


def wait_until(predicate, timeout_s: float = 10, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def topic_configs(admin: AdminClient, topic: str) -> dict[str, str]:
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    (entries,) = [f.result(timeout=10) for f in futures.values()]
    return {name: entry.value for name, entry in entries.items()}


def test_confluent_admin_lifecycle(broker, topic_name):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    a, b = f"{topic_name}-a", f"{topic_name}-b"
    futures = admin.create_topics(
        [NewTopic(a, 3, 1), NewTopic(b, 1, 1, config={"retention.ms": "3600000", "cleanup.policy": "compact"})],
        operation_timeout=10,
    )
    for f in futures.values():
        f.result(timeout=30)

    md = admin.list_topics(timeout=10)
    assert len(md.topics[a].partitions) == 3
    assert len(md.topics[b].partitions) == 1
    assert all(p.leader == md.orig_broker_id or p.leader >= 0 for p in md.topics[a].partitions.values())
    assert list(md.brokers) and all(br.port == broker.port for br in md.brokers.values())

    # Creating an existing topic is refused with TOPIC_ALREADY_EXISTS.
    dup = admin.create_topics([NewTopic(a, 3, 1)], operation_timeout=10)[a]
    with pytest.raises(KafkaException) as exc:
        dup.result(timeout=30)
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    cfg = topic_configs(admin, b)
    assert cfg["retention.ms"] == "3600000"
    assert cfg["cleanup.policy"] == "compact"

    # IncrementalAlterConfigs changes one key and leaves the others.
    res = ConfigResource(ResourceType.TOPIC, b, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(timeout=10)
    cfg = topic_configs(admin, b)
    assert cfg["retention.ms"] == "7200000"
    assert cfg["cleanup.policy"] == "compact"

    # CreatePartitions grows a topic.
    for f in admin.create_partitions([NewPartitions(a, 5)]).values():
        f.result(timeout=10)
    wait_until(lambda: len(admin.list_topics(a, timeout=10).topics[a].partitions) == 5, what="5 partitions")

    desc = admin.describe_topics(TopicCollection([a]))[a].result(timeout=10)
    assert desc.name == a
    assert len(desc.partitions) == 5

    cluster = admin.describe_cluster().result(timeout=10)
    assert cluster.cluster_id
    assert len(cluster.nodes) == 1

    for f in admin.delete_topics([a], operation_timeout=10).values():
        f.result(timeout=30)
    wait_until(lambda: a not in admin.list_topics(timeout=10).topics, what=f"{a} to disappear")
    assert b in admin.list_topics(timeout=10).topics


def test_deleted_topic_recreated_empty(broker, topic_name):
    """Deleting a topic removes its data: a re-created topic of the same name starts at offset 0."""
    create_topic(broker.bootstrap, topic_name, 1)
    confluent_produce(broker.bootstrap, topic_name, make_messages(50, 1))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.delete_topics([topic_name], operation_timeout=10).values():
        f.result(timeout=30)
    wait_until(lambda: topic_name not in admin.list_topics(timeout=10).topics, what="delete")
    create_topic(broker.bootstrap, topic_name, 1)
    c = confluent_consumer(broker.bootstrap)
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
    finally:
        c.close()
    assert (low, high) == (0, 0)


def test_kafka_python_admin(broker, topic_name):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics({topic_name: {"num_partitions": 2, "replication_factor": 1,
                                          "configs": {"retention.bytes": "1048576"}}})
        wait_until(lambda: topic_name in admin.list_topics(), what="topic in list_topics")

        (desc,) = admin.describe_topics([topic_name])
        assert desc["name"] == topic_name
        assert desc["error_code"] == 0
        assert sorted(p["partition_index"] for p in desc["partitions"]) == [0, 1]

        configs = admin.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, topic_name)],
                                         config_filter="all")
        topic_cfg = configs["topic"][topic_name]
        assert topic_cfg["retention.bytes"]["value"] == "1048576"

        admin.create_partitions({topic_name: 4})
        wait_until(lambda: len(admin.describe_topics([topic_name])[0]["partitions"]) == 4, what="4 partitions")

        admin.delete_topics([topic_name])
        wait_until(lambda: topic_name not in admin.list_topics(), what="topic deleted")
    finally:
        admin.close()


def test_auto_create_on_produce(broker, topic_name):
    """A producer writing to an unknown topic creates it (auto.create.topics.enable defaults on)."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        md = producer.send(topic_name, b"hello").get(timeout=30)
    finally:
        producer.close(timeout=10)
    assert md.offset == 0
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert topic_name in admin.list_topics(timeout=10).topics


def test_kcat_metadata_listing(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 4)
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-L", "-J"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    md = json.loads(out.stdout)
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic_name in topics
    assert len(topics[topic_name]["partitions"]) == 4
    assert [b["name"] for b in md["brokers"]] == [broker.bootstrap]


def test_topics_survive_restart(broker, topic_name):
    """Topic metadata and configs are persisted, not rebuilt from defaults."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(topic_name, 3, 1, config={"retention.ms": "123456789"})],
                                 operation_timeout=10).values():
        f.result(timeout=30)
    broker.restart()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=10)
    assert len(md.topics[topic_name].partitions) == 3
    assert topic_configs(admin, topic_name)["retention.ms"] == "123456789"


def test_delete_records_moves_log_start(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 2)
    confluent_produce(broker.bootstrap, topic_name, make_messages(100, 2))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.delete_records([TopicPartition(topic_name, 0, 30)])
    (deleted,) = [f.result(timeout=10) for f in futures.values()]
    assert deleted.low_watermark == 30
    c = confluent_consumer(broker.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10) == (30, 50)
        assert c.get_watermark_offsets(TopicPartition(topic_name, 1), timeout=10) == (0, 50)
    finally:
        c.close()
    got = confluent_consume(broker.bootstrap, topic_name, 1, expected=20, settle_s=0.5)
    assert [r.offset for r in got] == list(range(30, 50))
