"""TLS listeners, mutual-TLS principals and Kafka ACLs, driven by confluent-kafka and kcat.

Every certificate is generated here: a CA, the broker's server certificate, client certificates
for CN=orders-svc, CN=billing-svc and a super user, plus a certificate from another CA, an expired
one, and one whose subject a mapping rule rewrites (CN=orders-svc,OU=prod -> orders-svc).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from cryptography import x509
from cryptography.x509.oid import NameOID

from conftest import Broker, free_port
from pki import Identity, Pki, cn

MAPPING_RULES = "RULE:^CN=([^,]+),OU=prod$/$1/,DEFAULT"
TIMEOUT_S = 20


@dataclass
class Cluster:
    """A broker with a PLAINTEXT and a required-client-auth SSL listener, and its PKI."""

    broker: Broker
    ssl_bootstrap: str
    pki: Pki
    ids: dict[str, Identity]

    def conf(self, who: str | None, **extra) -> dict:
        """librdkafka settings for `who` on the SSL listener (None: no client certificate)."""
        conf = {"bootstrap.servers": self.ssl_bootstrap, "security.protocol": "SSL",
                "ssl.ca.location": str(self.pki.ca_path), "socket.timeout.ms": 10_000}
        if who is not None:
            conf["ssl.certificate.location"] = str(self.ids[who].cert)
            conf["ssl.key.location"] = str(self.ids[who].key)
        conf.update(extra)
        return conf

    def admin(self, who: str = "admin") -> AdminClient:
        return AdminClient(self.conf(who))

    def kcat(self, who: str | None, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        cmd = ["kcat", "-b", self.ssl_bootstrap, "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={self.pki.ca_path}"]
        if who is not None:
            cmd += ["-X", f"ssl.certificate.location={self.ids[who].cert}", "-X", f"ssl.key.location={self.ids[who].key}"]
        return subprocess.run([*cmd, *args], input=stdin, capture_output=True, timeout=60)


@pytest.fixture
def cluster(sluice_bin, tmp_path, request):
    pki = Pki(tmp_path / "pki", "sluice-test-ca")
    other = Pki(tmp_path / "other", "other-ca")
    ids = {
        "server": pki.issue("server", [cn("localhost")], server=True),
        "admin": pki.issue("admin", [cn("admin")]),
        "orders": pki.issue("orders", [cn("orders-svc")]),
        "billing": pki.issue("billing", [cn("billing-svc")]),
        "mapped": pki.issue("mapped", [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "prod"), cn("orders-svc")]),
        "expired": pki.issue("expired", [cn("orders-svc")], expired=True),
        "foreign": other.issue("foreign", [cn("orders-svc")]),
    }
    ssl_port = free_port()
    args = [
        "--ssl-listen", f"127.0.0.1:{ssl_port}", "--ssl-advertised", f"127.0.0.1:{ssl_port}",
        "--ssl-cert", str(ids["server"].cert), "--ssl-key", str(ids["server"].key), "--ssl-ca", str(pki.ca_path),
        "--ssl-client-auth", "required", "--acls", "--super-users", "User:CN=admin",
        "--ssl-principal-mapping-rules", MAPPING_RULES,
    ]
    broker = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log", args)
    request.node.sluice_broker = broker
    broker.start()
    try:
        yield Cluster(broker, f"127.0.0.1:{ssl_port}", pki, ids)
    finally:
        code = broker.stop()
    assert code == 0, f"broker exited with code {code} on SIGTERM"
    assert "panicked at" not in broker.log_text()


def allow(principal: str, topic: str, op: AclOperation, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW, restype=ResourceType.TOPIC) -> AclBinding:
    return AclBinding(restype, topic, pattern, principal, "*", op, permission)


def create_acls(admin: AdminClient, bindings: list[AclBinding]) -> None:
    for future in admin.create_acls(bindings, request_timeout=TIMEOUT_S).values():
        future.result(timeout=TIMEOUT_S)


def create_topics(admin: AdminClient, names: list[str]) -> None:
    futures = admin.create_topics([NewTopic(n, 1, 1) for n in names], operation_timeout=10)
    for f in futures.values():
        f.result(timeout=TIMEOUT_S)


def produce_one(conf: dict, topic: str, value: bytes) -> KafkaError | None:
    """Produces one message; returns the delivery error (None when it landed)."""
    result: list = []
    producer = Producer({**conf, "message.timeout.ms": 15_000, "acks": "all"})
    producer.produce(topic, value=value, on_delivery=lambda err, msg: result.append(err))
    assert producer.flush(30) == 0, "delivery report within 30s"
    return result[0]


def end_offset(conf: dict, topic: str) -> int:
    consumer = Consumer({**conf, "group.id": f"probe-{uuid.uuid4().hex[:6]}"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S)[1]
    finally:
        consumer.close()


def consume_all(conf: dict, topic: str, group: str, expect: int) -> list[bytes]:
    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(values) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            values.append(msg.value())
    finally:
        consumer.close()
    return values


def test_orders_writes_and_billing_only_reads(cluster):
    admin = cluster.admin()
    create_topics(admin, ["orders", "billing"])
    create_acls(admin, [
        allow("User:CN=orders-svc", "orders", AclOperation.WRITE),
        allow("User:CN=billing-svc", "billing", AclOperation.READ),
        allow("User:CN=billing-svc", "billing-readers", AclOperation.READ, restype=ResourceType.GROUP),
    ])
    admin_conf = cluster.conf("admin")
    assert produce_one(cluster.conf("orders"), "orders", b"order-1") is None
    assert produce_one(admin_conf, "billing", b"invoice-1") is None
    before = end_offset(admin_conf, "orders")
    assert before == 1

    err = produce_one(cluster.conf("billing"), "orders", b"forged")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert end_offset(admin_conf, "orders") == before, "a refused produce must not append"
    err = produce_one(cluster.conf("billing"), "billing", b"billing may not write")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err

    assert consume_all(cluster.conf("billing"), "billing", "billing-readers", 1) == [b"invoice-1"]
    with pytest.raises(KafkaException) as refused:
        consume_all(cluster.conf("billing"), "billing", "someone-elses-group", 1)
    assert refused.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED

    # kcat as orders-svc: its message lands; as billing-svc the produce is refused.
    out = cluster.kcat("orders", "-P", "-t", "orders", stdin=b"from-kcat\n")
    assert out.returncode == 0, out.stderr
    assert end_offset(admin_conf, "orders") == before + 1
    out = cluster.kcat("billing", "-P", "-t", "orders", stdin=b"forged-kcat\n")
    assert out.returncode != 0 and b"authoriz" in out.stderr.lower(), out.stderr
    assert end_offset(admin_conf, "orders") == before + 1


def test_prefixed_allow_and_deny_beats_allow(cluster):
    admin = cluster.admin()
    create_topics(admin, ["orders.eu", "orders.internal"])
    create_acls(admin, [
        allow("User:CN=orders-svc", "orders.", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED),
        allow("User:CN=orders-svc", "orders.internal", AclOperation.WRITE, permission=AclPermissionType.DENY),
    ])
    assert produce_one(cluster.conf("orders"), "orders.eu", b"eu") is None
    err = produce_one(cluster.conf("orders"), "orders.internal", b"denied")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert end_offset(cluster.conf("admin"), "orders.internal") == 0


def test_listing_topics_hides_undescribable_ones(cluster):
    admin = cluster.admin()
    create_topics(admin, ["orders", "billing"])
    create_acls(admin, [allow("User:CN=billing-svc", "billing", AclOperation.READ)])
    seen = set(cluster.admin("billing").list_topics(timeout=TIMEOUT_S).topics)
    assert "billing" in seen and "orders" not in seen, seen
    assert {"orders", "billing"} <= set(admin.list_topics(timeout=TIMEOUT_S).topics)
    out = cluster.kcat("billing", "-L", "-J")
    assert out.returncode == 0, out.stderr
    assert b'"orders"' not in out.stdout and b'"billing"' in out.stdout


@pytest.mark.parametrize("who", ["foreign", "expired", None], ids=["other-ca", "expired", "no-certificate"])
def test_bad_client_certificates_are_refused_at_the_handshake(cluster, who):
    conf = cluster.conf(None, **{"socket.timeout.ms": 5000})
    if who is not None:
        conf["ssl.certificate.location"] = str(cluster.ids[who].cert)
        conf["ssl.key.location"] = str(cluster.ids[who].key)
    with pytest.raises(KafkaException):
        AdminClient(conf).list_topics(timeout=5)
    out = subprocess.run(["kcat", "-b", cluster.ssl_bootstrap, "-X", "security.protocol=ssl",
                          "-X", f"ssl.ca.location={cluster.pki.ca_path}", "-m", "5", "-L",
                          *(["-X", f"ssl.certificate.location={cluster.ids[who].cert}",
                             "-X", f"ssl.key.location={cluster.ids[who].key}"] if who else [])],
                         capture_output=True, timeout=60)
    assert out.returncode != 0
    assert "TLS handshake failed" in cluster.broker.log_text()


def test_plaintext_listener_cannot_bypass_acls(cluster):
    admin = cluster.admin()
    create_topics(admin, ["orders"])
    create_acls(admin, [allow("User:CN=orders-svc", "orders", AclOperation.WRITE)])
    plain = {"bootstrap.servers": cluster.broker.bootstrap}
    err = produce_one(plain, "orders", b"anonymous")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert "orders" not in AdminClient(plain).list_topics(timeout=TIMEOUT_S).topics
    # Nor can an anonymous client grant itself access.
    anonymous_admin = AdminClient(plain)
    futures = anonymous_admin.create_acls([allow("User:ANONYMOUS", "orders", AclOperation.WRITE)],
                                          request_timeout=TIMEOUT_S)
    with pytest.raises(KafkaException) as refused:
        next(iter(futures.values())).result(timeout=TIMEOUT_S)
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert end_offset(cluster.conf("admin"), "orders") == 0


def test_mapping_rule_turns_subject_into_service_name(cluster):
    admin = cluster.admin()
    create_topics(admin, ["mapped"])
    create_acls(admin, [allow("User:orders-svc", "mapped", AclOperation.WRITE)])
    # CN=orders-svc,OU=prod maps to User:orders-svc; plain CN=orders-svc stays User:CN=orders-svc.
    assert produce_one(cluster.conf("mapped"), "mapped", b"via-rule") is None
    err = produce_one(cluster.conf("orders"), "mapped", b"unmapped")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


def test_acls_survive_restart_and_delete_returns_matches(cluster):
    admin = cluster.admin()
    create_topics(admin, ["orders", "orders.eu"])
    bindings = [
        allow("User:CN=orders-svc", "orders", AclOperation.WRITE),
        allow("User:CN=orders-svc", "orders.", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED),
        allow("User:CN=billing-svc", "orders", AclOperation.READ),
    ]
    create_acls(admin, bindings)
    cluster.broker.restart()

    admin = cluster.admin()
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    listed = admin.describe_acls(everything, request_timeout=TIMEOUT_S).result(timeout=TIMEOUT_S)
    assert sorted(map(str, listed)) == sorted(map(str, bindings))
    assert produce_one(cluster.conf("orders"), "orders.eu", b"after-restart") is None

    by_principal = AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, "User:CN=orders-svc", None,
                                    AclOperation.ANY, AclPermissionType.ANY)
    deleted = admin.delete_acls([by_principal], request_timeout=TIMEOUT_S)[by_principal].result(timeout=TIMEOUT_S)
    assert sorted(map(str, deleted)) == sorted(map(str, bindings[:2]))
    remaining = admin.describe_acls(everything, request_timeout=TIMEOUT_S).result(timeout=TIMEOUT_S)
    assert [str(b) for b in remaining] == [str(bindings[2])]
    err = produce_one(cluster.conf("orders"), "orders", b"no longer allowed")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


def test_sluice_acl_cli_over_ssl(cluster, sluice_bin):
    tls = ["-b", cluster.ssl_bootstrap, "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={cluster.pki.ca_path}",
           "-X", f"ssl.certificate.location={cluster.ids['admin'].cert}",
           "-X", f"ssl.key.location={cluster.ids['admin'].key}"]

    def run(*args: str) -> str:
        out = subprocess.run([sluice_bin, "acl", *args, *tls], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    run("add", "--topic", "orders", "--principal", "User:CN=orders-svc", "--operation", "write", "--operation", "describe")
    listed = run("list", "--principal", "User:CN=orders-svc")
    assert "WRITE" in listed and "DESCRIBE" in listed and "orders" in listed, listed
    removed = run("remove", "--topic", "orders", "--operation", "describe")
    assert "removed 1 ACL(s)" in removed, removed
    assert "DESCRIBE" not in run("list")


def test_transactional_id_needs_its_own_acl(cluster):
    """A transactional producer needs WRITE on its TransactionalId as well as on the topic;
    with it, commit works and the principal cannot touch another service's transactional id."""
    admin = cluster.admin()
    create_topics(admin, ["payments"])
    create_acls(admin, [allow("User:CN=orders-svc", "payments", AclOperation.WRITE)])

    def init(txn_id: str) -> Producer:
        producer = Producer(cluster.conf("orders", **{"transactional.id": txn_id, "transaction.timeout.ms": 10_000}))
        producer.init_transactions(TIMEOUT_S)
        return producer

    with pytest.raises(KafkaException) as refused:
        init("orders-tx")
    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED

    create_acls(admin, [allow("User:CN=orders-svc", "orders-", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED,
                              restype=ResourceType.TRANSACTIONAL_ID)])
    producer = init("orders-tx")
    producer.begin_transaction()
    producer.produce("payments", value=b"paid")
    producer.commit_transaction(TIMEOUT_S)
    assert end_offset(cluster.conf("admin", **{"isolation.level": "read_committed"}), "payments") == 2  # record + marker

    with pytest.raises(KafkaException) as foreign:
        init("billing-tx")
    assert foreign.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
