"""Topic and broker configs, partitions and cluster description through confluent's AdminClient.

Complements test_admin.py (topic lifecycle) with the config APIs: DescribeConfigs with synonyms,
IncrementalAlterConfigs (SET/APPEND/SUBTRACT/DELETE), dynamic broker configs (this broker's and the
cluster-wide defaults, applied without a restart and persisted), and the Kafka error codes clients
see for refused changes.
"""

from __future__ import annotations

import socket
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclOperation,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

import kafka_wire
from clients import wait_until


def admin_for(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def error_code(future) -> int:
    with pytest.raises(KafkaException) as info:
        future.result(timeout=30)
    return info.value.args[0].code()


def describe(admin: AdminClient, resource: ConfigResource) -> dict:
    return admin.describe_configs([resource])[resource].result(timeout=30)


def incremental(admin: AdminClient, topic: str, *entries: ConfigEntry):
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=list(entries))
    return admin.incremental_alter_configs([resource])[resource]


def test_topic_configs_describe_and_incremental_alter(broker, topic_name):
    admin = admin_for(broker)
    new = NewTopic(topic_name, 2, 1, config={"cleanup.policy": "compact", "min.insync.replicas": "1"})
    admin.create_topics([new])[topic_name].result(timeout=30)
    topic = ConfigResource(ResourceType.TOPIC, topic_name)

    configs = describe(admin, topic)
    policy = configs["cleanup.policy"]
    assert (policy.value, policy.source, policy.is_default) == ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value, False)
    assert [(s.name, s.value) for s in policy.synonyms.values()] == [
        ("cleanup.policy", "compact"),
        ("log.cleanup.policy", "delete"),
    ]
    retention = configs["retention.ms"]
    assert (retention.value, retention.is_default, retention.is_read_only) == ("604800000", True, False)
    assert configs["compression.type"].value == "producer"

    set_retention = ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
    append_delete = ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND)
    incremental(admin, topic_name, set_retention, append_delete).result(timeout=30)
    configs = describe(admin, topic)
    assert configs["cleanup.policy"].value == "compact,delete"
    assert configs["retention.ms"].value == "1000"

    subtract = ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SUBTRACT)
    reset = ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)
    incremental(admin, topic_name, subtract, reset).result(timeout=30)
    configs = describe(admin, topic)
    assert configs["cleanup.policy"].value == "delete"
    assert configs["retention.ms"].is_default

    bad = ConfigEntry("segment.bytes", "tiny", incremental_operation=AlterConfigOpType.SET)
    assert error_code(incremental(admin, topic_name, bad)) == KafkaError.INVALID_CONFIG
    not_a_list = ConfigEntry("retention.ms", "5", incremental_operation=AlterConfigOpType.APPEND)
    assert error_code(incremental(admin, topic_name, not_a_list)) == KafkaError.INVALID_CONFIG
    assert error_code(incremental(admin, f"{topic_name}-missing", set_retention)) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_topic_errors(broker, topic_name):
    admin = admin_for(broker)
    assert error_code(admin.create_topics([NewTopic(topic_name, 1, 3)])[topic_name]) == KafkaError.INVALID_REPLICATION_FACTOR
    bad_config = NewTopic(topic_name, 1, 1, config={"retention.ms": "soon"})
    assert error_code(admin.create_topics([bad_config])[topic_name]) == KafkaError.INVALID_CONFIG
    unknown_config = NewTopic(topic_name, 1, 1, config={"no.such.config": "1"})
    assert error_code(admin.create_topics([unknown_config])[topic_name]) == KafkaError.INVALID_CONFIG
    admin.create_topics([NewTopic(topic_name, 1, 1)], validate_only=True)[topic_name].result(timeout=30)
    assert topic_name not in admin.list_topics(timeout=10).topics


def test_create_partitions_grows_only(broker, topic_name):
    admin = admin_for(broker)
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(timeout=30)
    admin.create_partitions([NewPartitions(topic_name, 4)])[topic_name].result(timeout=30)
    assert len(admin.list_topics(topic_name, timeout=10).topics[topic_name].partitions) == 4
    shrink = admin.create_partitions([NewPartitions(topic_name, 2)])[topic_name]
    assert error_code(shrink) == KafkaError.INVALID_PARTITIONS


def alter_broker(admin: AdminClient, name: str, *entries: ConfigEntry):
    resource = ConfigResource(ResourceType.BROKER, name, incremental_configs=list(entries))
    return admin.incremental_alter_configs([resource])[resource]


def produce_error(bootstrap: str, topic: str, size: int):
    """The delivery error of one `size`-byte message (None when it is stored)."""
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 10_000_000})
    producer.produce(topic, b"x" * size, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(30) == 0
    return errors[0]


def test_dynamic_broker_configs_apply_without_restart_and_persist(broker, topic_name):
    admin = admin_for(broker)
    node = ConfigResource(ResourceType.BROKER, "1")
    cluster = ConfigResource(ResourceType.BROKER, "")
    configs = describe(admin, node)
    assert configs["num.partitions"].is_read_only
    assert not configs["message.max.bytes"].is_read_only
    assert configs["log.retention.ms"].value == "604800000"
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(timeout=30)
    assert produce_error(broker.bootstrap, topic_name, 50_000) is None

    # This broker's own value: a smaller message limit, applied to the existing topic at once.
    set_limit = ConfigEntry("message.max.bytes", "20000", incremental_operation=AlterConfigOpType.SET)
    alter_broker(admin, "1", set_limit).result(timeout=30)
    limit = describe(admin, node)["message.max.bytes"]
    assert (limit.value, limit.source) == ("20000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert produce_error(broker.bootstrap, topic_name, 50_000).code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert produce_error(broker.bootstrap, topic_name, 10_000) is None

    # A cluster-wide default (the empty name, which only raw requests can name here: the Python
    # clients refuse it) sits below the broker's own value.
    with kafka_wire.KafkaConnection(broker.bootstrap) as conn:
        assert kafka_wire.incremental_alter_configs_v0(
            conn, kafka_wire.RESOURCE_BROKER, "", [("log.retention.ms", 0, "3600000")]) == (0, None)
        assert kafka_wire.describe_configs_v1(conn, kafka_wire.RESOURCE_BROKER, "") == {
            "log.retention.ms": ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)}
    topic_retention = describe(admin, ConfigResource(ResourceType.TOPIC, topic_name))["retention.ms"]
    assert (topic_retention.value, topic_retention.source) == (
        "3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)

    # Refused: a setting that is not dynamic, and a bad value; nothing changes.
    for bad in (ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET),
                ConfigEntry("log.retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)):
        assert error_code(alter_broker(admin, "1", bad)) == KafkaError.INVALID_CONFIG
    assert describe(admin, node)["log.retention.ms"].value == "3600000"

    # Both layers survive a restart and keep applying.
    broker.restart()
    admin = admin_for(broker)
    assert describe(admin, node)["message.max.bytes"].value == "20000"
    assert produce_error(broker.bootstrap, topic_name, 50_000).code() == KafkaError.MSG_SIZE_TOO_LARGE
    # DELETE returns to the lower layer.
    unset = ConfigEntry("message.max.bytes", None, incremental_operation=AlterConfigOpType.DELETE)
    alter_broker(admin, "1", unset).result(timeout=30)
    limit = describe(admin, node)["message.max.bytes"]
    assert limit.source != ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert produce_error(broker.bootstrap, topic_name, 50_000) is None


def test_describe_cluster_and_internal_topic(broker):
    admin = admin_for(broker)
    cluster = admin.describe_cluster(include_authorized_operations=True).result(timeout=30)
    assert cluster.cluster_id
    assert [n.port for n in cluster.nodes] == [broker.port]
    assert cluster.controller.id == cluster.nodes[0].id
    assert AclOperation.DESCRIBE_CONFIGS in cluster.authorized_operations
    # Internal topics hold broker state (committed offsets) and cannot be deleted.
    internal = admin.delete_topics(["__consumer_offsets"])["__consumer_offsets"]
    assert error_code(internal) == KafkaError.TOPIC_EXCEPTION


def test_configs_kafka_3_accepts_but_ignores_are_stored_and_reported(broker, topic_name):
    """message.format.version & co. are refused by no Kafka 3.x broker: tools still send them."""
    admin = admin_for(broker)
    legacy = {
        "message.format.version": "2.8",
        "message.downconversion.enable": "false",
        "segment.jitter.ms": "1000",
        "leader.replication.throttled.replicas": "*",
    }
    admin.create_topics([NewTopic(topic_name, 1, 1, config=legacy)])[topic_name].result(timeout=30)
    topic = ConfigResource(ResourceType.TOPIC, topic_name)
    configs = describe(admin, topic)
    for key, value in legacy.items():
        assert configs[key].value == value, key
        assert configs[key].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, key
    incremental(admin, topic_name, ConfigEntry("message.format.version", "3.0-IV1",
                                               incremental_operation=AlterConfigOpType.SET)).result(timeout=30)
    assert describe(admin, topic)["message.format.version"].value == "3.0-IV1"
    assert describe(admin, topic)["remote.storage.enable"].value == "false"


def test_broker_logger_levels_change_at_run_time(broker):
    """BROKER_LOGGER through kafka-python's admin client: a logger (tracing target) set to DEBUG
    starts logging at once, and DELETE returns it to the root level."""
    from kafka import KafkaAdminClient
    from kafka.admin import AlterConfigOp
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    logger = "sluice_broker::net"

    def levels() -> dict:
        resource = KpResource(ConfigResourceType.BROKER_LOGGER, "1")
        described = admin.describe_configs([resource], config_filter="all")
        return {k: v["value"] for k, v in described["broker_logger"]["1"].items()}

    def connect_once() -> None:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=5):
            pass

    assert levels() == {"root": "INFO"}
    connect_once()
    assert "connection accepted" not in broker.log_text(), "net debug lines before the change"
    resource = KpResource(ConfigResourceType.BROKER_LOGGER, "1", configs={logger: (AlterConfigOp.SET, "DEBUG")})
    admin.alter_configs([resource], raise_on_unknown=False)
    assert levels() == {"root": "INFO", logger: "DEBUG"}
    connect_once()
    wait_until(lambda: "connection accepted" in broker.log_text(), 10, "the DEBUG line of a new connection")
    bad = KpResource(ConfigResourceType.BROKER_LOGGER, "1", configs={logger: (AlterConfigOp.SET, "LOUD")})
    outcome = admin.alter_configs([bad], raise_on_unknown=False)
    assert "InvalidConfig" in str(outcome), outcome
    reset = KpResource(ConfigResourceType.BROKER_LOGGER, "1", configs={logger: (AlterConfigOp.DELETE, None)})
    admin.alter_configs([reset], raise_on_unknown=False)
    assert levels() == {"root": "INFO"}
    count = broker.log_text().count("connection accepted")
    connect_once()
    time.sleep(0.5)
    assert broker.log_text().count("connection accepted") == count
    admin.close()
