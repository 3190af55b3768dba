"""Platform as code: `sluice plan | apply | drift | export` on a live broker (ACLs on) and registry.

What the commands did is checked with clients nobody here wrote: confluent-kafka's AdminClient
(librdkafka) for topics, configs and ACLs, and plain HTTP for the registry.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from registry_fixture import registry  # noqa: F401  (fixture)

TIMEOUT_S = 30

ORDER_AVSC = '{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}'
ORDER_AVSC_V2 = ('{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},'
                 '{"name":"note","type":"string","default":""}]}')
ORDER_AVSC_BROKEN = '{"type":"record","name":"Order","fields":[{"name":"id","type":"int"}]}'
COMMON_PROTO = 'syntax = "proto3";\npackage shop;\nmessage Money { int64 cents = 1; }\n'
PAYMENT_PROTO = ('syntax = "proto3";\npackage shop;\nimport "common.proto";\n'
                 'message Payment { string id = 1; Money amount = 2; }\n')


def platform_file(topics: str) -> str:
    return textwrap.dedent("""\
        topics:
        {topics}
        acls:
          services:
            orders-svc: {{ produces: [orders] }}
          acls:
            - principal: "User:CN=ops"
              resource: group
              name: "ops-*"
              operations: [read, describe]
        schemas:
          compatibility: FULL
          subjects:
            orders-value:
              file: schemas/order.avsc
              compatibility: BACKWARD
            common.proto:
              file: schemas/common.proto
            payments-value:
              file: schemas/payment.proto
              references:
                - {{ name: common.proto, subject: common.proto, version: 1 }}
        """).format(topics=textwrap.indent(textwrap.dedent(topics), "  "))


TOPICS = """\
    orders:
      partitions: 3
      configs:
        cleanup.policy: compact
        retention.ms: 604800000
    clicks: {}
"""


class Cli:
    def __init__(self, binary: str, broker, registry, workdir: Path):
        self.binary = binary
        self.target = ["-b", broker.bootstrap, "--registry-url", registry.url]
        self.workdir = workdir

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args, *self.target], cwd=self.workdir, capture_output=True,
                              text=True, timeout=120)


def http_json(url: str):
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
        return json.loads(resp.read())


def topic_partitions(admin: AdminClient) -> dict[str, int]:
    topics = admin.list_topics(timeout=TIMEOUT_S).topics
    return {name: len(t.partitions) for name, t in topics.items() if not name.startswith("_")}


def topic_overrides(admin: AdminClient, topic: str) -> dict[str, str]:
    [future] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
    configs = future.result(timeout=TIMEOUT_S)
    return {k: c.value for k, c in configs.items() if not c.is_default}


@pytest.mark.broker_args("--acls", "--super-users", "User:ANONYMOUS")
def test_plan_apply_drift_export_round_trip(sluice_bin, broker, registry, tmp_path):  # noqa: F811
    work = tmp_path / "platform"
    (work / "schemas").mkdir(parents=True)
    (work / "schemas" / "order.avsc").write_text(ORDER_AVSC)
    (work / "schemas" / "common.proto").write_text(COMMON_PROTO)
    (work / "schemas" / "payment.proto").write_text(PAYMENT_PROTO)
    (work / "platform.yml").write_text(platform_file(TOPICS))
    cli = Cli(sluice_bin, broker, registry, work)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    # A fresh cluster differs: drift says so with exit code 2 and lists every creation.
    drift = cli.run("drift")
    assert drift.returncode == 2, drift.stderr
    for line in ("+ create topic orders (partitions: 3", "+ create subject payments-value",
                 "+ add ACL User:CN=orders-svc ALLOW WRITE on TOPIC orders",
                 "~ registry: compatibility BACKWARD -> FULL"):
        assert line in drift.stdout, drift.stdout
    # Referenced subjects are registered before the subjects that import them.
    assert drift.stdout.index("create subject common.proto") < drift.stdout.index("create subject payments-value")

    applied = cli.run("apply")
    assert applied.returncode == 0, applied.stderr
    assert topic_partitions(admin) == {"orders": 3, "clicks": 1}
    assert topic_overrides(admin, "orders") == {"cleanup.policy": "compact", "retention.ms": "604800000"}
    acls = admin.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                                AclOperation.ANY, AclPermissionType.ANY)).result(timeout=TIMEOUT_S)
    seen = {(a.principal, a.restype, a.name, a.resource_pattern_type, a.operation) for a in acls}
    assert ("User:CN=orders-svc", ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL,
            AclOperation.WRITE) in seen
    assert ("User:CN=ops", ResourceType.GROUP, "ops-", ResourcePatternType.PREFIXED, AclOperation.READ) in seen
    assert http_json(f"{registry.url}/config")["compatibilityLevel"] == "FULL"
    assert http_json(f"{registry.url}/config/orders-value")["compatibilityLevel"] == "BACKWARD"
    payment = http_json(f"{registry.url}/subjects/payments-value/versions/latest")
    assert payment["schemaType"] == "PROTOBUF"
    assert payment["references"] == [{"name": "common.proto", "subject": "common.proto", "version": 1}]

    # Converged: nothing to do, no drift.
    again = cli.run("apply")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
    assert cli.run("drift").returncode == 0

    # Someone changes the cluster behind the file's back: drift sees each change.
    [f] = admin.incremental_alter_configs([ConfigResource(
        ConfigResource.Type.TOPIC, "orders",
        incremental_configs=[ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)],
    )]).values()
    f.result(timeout=TIMEOUT_S)
    admin.create_topics([NewTopic("stray", 1, 1)])["stray"].result(timeout=TIMEOUT_S)
    drift = cli.run("drift")
    assert drift.returncode == 2
    assert "~ topic orders: retention.ms 1000 -> 604800000" in drift.stdout, drift.stdout
    assert "- delete topic stray and its data" in drift.stdout, drift.stdout

    # A rename is a creation plus a deletion: refused whole without --allow-delete.
    (work / "platform.yml").write_text(platform_file(TOPICS.replace("clicks:", "clicks-v2:")))
    refused = cli.run("apply")
    assert refused.returncode == 1
    assert "needs --allow-delete" in refused.stderr and "delete topic clicks and its data" in refused.stderr
    assert topic_partitions(admin) == {"orders": 3, "clicks": 1, "stray": 1}, "nothing was applied"
    assert topic_overrides(admin, "orders")["retention.ms"] == "1000"

    allowed = cli.run("apply", "--allow-delete")
    assert allowed.returncode == 0, allowed.stderr
    assert topic_partitions(admin) == {"orders": 3, "clicks-v2": 1}
    assert topic_overrides(admin, "orders")["retention.ms"] == "604800000"

    # Growth is a change; shrinking and incompatible schemas are blockers, refused before anything runs.
    (work / "schemas" / "order.avsc").write_text(ORDER_AVSC_V2)
    (work / "platform.yml").write_text(platform_file(TOPICS.replace("partitions: 3", "partitions: 4")
                                                     .replace("clicks:", "clicks-v2:")))
    plan = cli.run("plan", "--json")
    assert plan.returncode == 0, plan.stderr
    actions = {(c["action"], c.get("topic") or c.get("subject")) for c in json.loads(plan.stdout)["changes"]}
    assert actions == {("add_partitions", "orders"), ("register_schema", "orders-value")}, plan.stdout
    assert cli.run("apply").returncode == 0
    assert topic_partitions(admin)["orders"] == 4
    assert len(http_json(f"{registry.url}/subjects/orders-value/versions")) == 2

    (work / "schemas" / "order.avsc").write_text(ORDER_AVSC_BROKEN)
    (work / "platform.yml").write_text(platform_file(TOPICS.replace("partitions: 3", "partitions: 2")
                                                     .replace("clicks:", "clicks-v2:")))
    blocked = cli.run("apply", "--allow-delete")
    assert blocked.returncode == 1
    assert "Kafka cannot remove partitions" in blocked.stderr, blocked.stderr
    assert "the registry would refuse schemas/order.avsc" in blocked.stderr, blocked.stderr
    assert topic_partitions(admin)["orders"] == 4

    # Export writes a file (and schema files) that plans no change against the same cluster.
    exported = cli.run("export", "-o", str(tmp_path / "exported" / "platform.yml"))
    assert exported.returncode == 0, exported.stderr
    # The registry hands back its canonical text of the schema (as Confluent's does), not the bytes sent.
    exported_proto = (tmp_path / "exported" / "schemas" / "payments-value.proto").read_text()
    assert 'import "common.proto";' in exported_proto and "message Payment" in exported_proto
    replay = subprocess.run([sluice_bin, "drift", "-f", str(tmp_path / "exported" / "platform.yml"), *cli.target],
                            capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stdout + replay.stderr


def test_a_broken_platform_file_is_reported_with_its_place(sluice_bin, tmp_path):
    """Checked before any connection: file, line and the fix, exit code 1, no traceback-like noise."""

    (tmp_path / "platform.yml").write_text("topics:\n  orders:\n    partitons: 3\n")
    done = subprocess.run([sluice_bin, "plan", "-f", str(tmp_path / "platform.yml"), "-b", "127.0.0.1:9"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{tmp_path / 'platform.yml'}:3:" in done.stderr and "unknown field `partitons`" in done.stderr, done.stderr
