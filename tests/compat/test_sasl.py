"""SASL authentication driven by real clients: SASL_PLAINTEXT and SASL_SSL listeners with PLAIN and
SCRAM-SHA-256/512 (credentials kept through AlterUserScramCredentials and `sluice user`), and
OAUTHBEARER (JWTs checked against a JWKS file or a PEM public key), with confluent-kafka
(librdkafka), kafka-python and aiokafka; ACLs on SASL principals; KIP-368 re-authentication; and
hostile or malformed input before authentication, spoken by hand with kafka_wire.

Each test starts its own broker with a SASL listener on a free port beside the PLAINTEXT one,
through which users are created (until ACLs are switched on). What the clients send: librdkafka
SaslHandshake v1 then SaslAuthenticate v1 (re-authenticating at 90% of session_lifetime_ms, with
SaslHandshake and no ApiVersions); kafka-python 3.0.12 SaslHandshake v1 then SaslAuthenticate at
the highest version both sides know (v2, flexible, when the broker lists it), re-authenticating at
85-95% of the lifetime; aiokafka SaslHandshake v1 then SaslAuthenticate v1, and no
re-authentication. Both Python clients send PLAIN with authzid = username, librdkafka with none.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import logging
import re
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclOperation,
    AdminClient,
    NewTopic,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition
from kafka.errors import ClusterAuthorizationFailedError
from kafka.net.sasl.oauth import AbstractTokenProvider

import jwt_helper
from clients import (
    Consumed,
    Delivery,
    assert_roundtrip,
    confluent_consume,
    confluent_produce,
    create_topic,
    make_messages,
    wait_until,
)
from conftest import Broker, free_port, port_accepts
from kafka_wire import (
    API_INIT_PRODUCER_ID,
    API_LIST_OFFSETS,
    API_METADATA,
    API_PRODUCE,
    API_SASL_AUTHENTICATE,
    API_SASL_HANDSHAKE,
    ERR_NONE,
    ERR_SASL_AUTHENTICATION_FAILED,
    ERR_UNSUPPORTED_SASL_MECHANISM,
    KafkaConnection,
    SaslAuthenticateResult,
    build_batch,
    closed_by_peer,
    frame,
    nullable_bytes,
    nullable_string,
    plain_message,
    request_header_v1,
    sasl_authenticate,
    sasl_authenticate_plain,
    sasl_handshake,
)
from pki import Identity, Pki, cn
from test_tls_acl import allow, create_acls, end_offset, produce_one

TIMEOUT_S = 20
# Distinctive, so that finding it in a file means the broker stored it.
PASSWORD = "Tr0ub4dor&3-sluice-sasl-pw"
WRONG_PASSWORD = "Wr0ng-horse-battery-sluice"
ADMIN_PASSWORD = "adm1n-sluice-sasl-pw"
CAROL_PASSWORD = "car0l-sluice-sasl-pw"
DEFAULT_MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SCRAM_MECHANISMS = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}
MESSAGES = 200
PARTITIONS = 2
MiB = 1 << 20


# ---------------------------------------------------------------------------------------------
# Brokers


def wait_for_listener(broker: Broker, port: int) -> None:
    """Broker.start waits for the PLAINTEXT port only; the SASL listener may bind a moment later."""
    wait_until(lambda: port_accepts(port) or broker.check_alive(), TIMEOUT_S,
               f"the SASL listener on 127.0.0.1:{port}", 0.05)


@contextlib.contextmanager
def sasl_broker(sluice_bin: str, tmp_path: Path, request, *extra_args: str, tls: Identity | None = None):
    """A broker with a SASL listener on a free port beside the PLAINTEXT one: SASL_SSL with `tls`
    as its server certificate, else SASL_PLAINTEXT. Yields (broker, sasl_port); at exit the broker
    must stop cleanly on SIGTERM, without a panic in its log."""
    port = free_port()
    if tls is None:
        listener = ["--sasl-listen", f"127.0.0.1:{port}"]
    else:
        listener = ["--sasl-ssl-listen", f"127.0.0.1:{port}", "--ssl-cert", str(tls.cert), "--ssl-key", str(tls.key)]
    broker = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log", [*listener, *extra_args])
    request.node.sluice_broker = broker
    broker.start()
    try:
        wait_for_listener(broker, port)
        yield broker, port
    finally:
        gc.collect()  # leftover clients go before the broker does, not reconnect to it
        died = broker.proc is not None and broker.proc.poll() is not None
        code = broker.stop()
    assert not died, f"broker died during the test with exit code {code}"
    assert code == 0, f"broker exited with code {code} on SIGTERM (expected a clean shutdown)"
    assert "panicked at" not in broker.log_text(), "broker panicked"


@pytest.fixture
def sasl(sluice_bin, tmp_path, request):
    """sasl_broker with the extra flags of `@pytest.mark.broker_args(...)`; yields (broker, sasl_port)."""
    marker = request.node.get_closest_marker("broker_args")
    with sasl_broker(sluice_bin, tmp_path, request, *(marker.args if marker else ())) as pair:
        yield pair


def restart_with(broker: Broker, port: int, *extra_args: str) -> None:
    """Stops the broker cleanly and starts it again on the same ports and data with more flags."""
    code = broker.stop()
    assert code == 0, f"broker exited with code {code} on SIGTERM:\n{broker.log_tail()}"
    broker.extra_args = [*broker.extra_args, *extra_args]
    broker.start()
    wait_for_listener(broker, port)


def plaintext(broker: Broker) -> dict:
    """librdkafka settings for the PLAINTEXT listener (principal User:ANONYMOUS)."""
    return {"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 10_000}


# ---------------------------------------------------------------------------------------------
# Users


def create_user(admin_conf: dict, name: str, password: str = PASSWORD,
                mechanisms: tuple[str, ...] = tuple(SCRAM_MECHANISMS), iterations: int = 4096) -> None:
    """Upserts SCRAM credentials of `name` (one per mechanism) with AlterUserScramCredentials."""
    alterations = [UserScramCredentialUpsertion(name, ScramCredentialInfo(SCRAM_MECHANISMS[m], iterations),
                                                password.encode()) for m in mechanisms]
    admin = AdminClient(admin_conf)  # must outlive its futures: destroying it fails them with _DESTROY
    futures = admin.alter_user_scram_credentials(alterations, request_timeout=TIMEOUT_S)
    for user, future in futures.items():
        error = failure(future)
        assert error is None, f"creating SCRAM credentials of {user} ({', '.join(mechanisms)}) failed: {error}"


def failure(future) -> KafkaError | None:
    """The KafkaError an admin future fails with, None when it succeeds."""
    try:
        future.result(timeout=TIMEOUT_S)
    except KafkaException as e:
        return e.args[0]
    return None


def alter_failure(admin_conf: dict, alteration) -> KafkaError | None:
    admin = AdminClient(admin_conf)
    futures = admin.alter_user_scram_credentials([alteration], request_timeout=TIMEOUT_S)
    return failure(futures[alteration.user])


def credentials_of(description) -> set[tuple[str, int]]:
    """{(mechanism name, iterations)} of a UserScramCredentialsDescription."""
    names = {v: k for k, v in SCRAM_MECHANISMS.items()}
    return {(names[info.mechanism], info.iterations) for info in description.scram_credential_infos}


def describe_user(admin_conf: dict, user: str) -> set[tuple[str, int]]:
    admin = AdminClient(admin_conf)
    futures = admin.describe_user_scram_credentials([user], request_timeout=TIMEOUT_S)
    return credentials_of(futures[user].result(timeout=TIMEOUT_S))


def describe_all(admin_conf: dict) -> dict[str, set[tuple[str, int]]]:
    admin = AdminClient(admin_conf)
    future = admin.describe_user_scram_credentials(request_timeout=TIMEOUT_S)
    return {user: credentials_of(d) for user, d in future.result(timeout=TIMEOUT_S).items()}


def describe_failure(admin_conf: dict, user: str) -> KafkaError | None:
    admin = AdminClient(admin_conf)
    futures = admin.describe_user_scram_credentials([user], request_timeout=TIMEOUT_S)
    return failure(futures[user])


def sluice_user(sluice_bin: str, broker: Broker, *args: str) -> str:
    """Runs `sluice user ARGS -b <PLAINTEXT listener>` and returns its stdout; it must succeed."""
    out = subprocess.run([sluice_bin, "user", *args, "-b", broker.bootstrap], capture_output=True, text=True,
                         timeout=TIMEOUT_S)
    assert out.returncode == 0, f"sluice user {' '.join(args)} exited with {out.returncode}: {out.stderr}"
    return out.stdout


CREDENTIAL_LINE = re.compile(r"^(\S+)\s+(SCRAM-SHA-256|SCRAM-SHA-512)\s+iterations=(\d+)$")


def listed_credentials(sluice_bin: str, broker: Broker) -> set[tuple[str, str, int]]:
    """{(user, mechanism, iterations)} from the `NAME MECHANISM iterations=N` lines of `sluice user list`."""
    lines = sluice_user(sluice_bin, broker, "list").splitlines()
    return {(m[1], m[2], int(m[3])) for line in lines if (m := CREDENTIAL_LINE.match(line.strip()))}


# ---------------------------------------------------------------------------------------------
# Clients


def client_conf(port: int, user: str, password: str = PASSWORD, mechanism: str = "SCRAM-SHA-256",
                ca: Path | None = None, extra: dict | None = None) -> dict:
    """librdkafka settings for `user` on the SASL listener (SASL_SSL trusting `ca` when given)."""
    conf = {
        "bootstrap.servers": f"127.0.0.1:{port}",
        "security.protocol": "SASL_SSL" if ca is not None else "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
        "socket.timeout.ms": 10_000,
    }
    if ca is not None:
        conf["ssl.ca.location"] = str(ca)
    conf.update(extra or {})
    return conf


def oauth_conf(port: int, token: str, lifetime_s: float = 300) -> dict:
    """librdkafka settings that log in with `token` through oauth_cb. librdkafka is told the token
    lives `lifetime_s` more seconds whatever its exp says: it will not send a token it believes
    expired, so only this way does an expired one reach the broker."""
    return {
        "bootstrap.servers": f"127.0.0.1:{port}",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "oauth_cb": lambda _config: (token, time.time() + lifetime_s),
        "socket.timeout.ms": 10_000,
    }


def refused_login_errors(conf: dict, topic: str) -> list[KafkaError]:
    """Tries to produce one message with `conf`; returns what error_cb reported by the time an
    _AUTHENTICATION error came (or TIMEOUT_S passed). The message must not be acknowledged."""
    errors: list[KafkaError] = []
    reports: list[KafkaError | None] = []
    producer = Producer({**conf, "error_cb": errors.append, "message.timeout.ms": 10_000})
    producer.produce(topic, value=b"must-not-land", on_delivery=lambda err, msg: reports.append(err))
    deadline = time.monotonic() + TIMEOUT_S
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.monotonic() < deadline:
        producer.poll(0.1)
    producer.purge()
    assert producer.flush(TIMEOUT_S) == 0
    assert len(reports) == 1 and reports[0] is not None, (
        f"a message produced with refused credentials was acknowledged (errors seen: {[str(e) for e in errors]})")
    return errors


def assert_refused(conf: dict, topic: str, what: str) -> KafkaError:
    """librdkafka reports an _AUTHENTICATION error through error_cb and cannot produce."""
    errors = refused_login_errors(conf, topic)
    refusals = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert refusals, f"{what}: expected an _AUTHENTICATION error from error_cb, got {[str(e) for e in errors]}"
    return refusals[0]


def confluent_roundtrip(conf: dict, topic: str, partitions: int = PARTITIONS) -> None:
    """Produces MESSAGES messages with `conf` and reads every one back exactly, with the same settings."""
    bootstrap = conf["bootstrap.servers"]
    msgs = make_messages(MESSAGES, partitions, seed=3)
    delivery = confluent_produce(bootstrap, topic, msgs, {**conf, "message.timeout.ms": 15_000})
    assert delivery.errors == [], f"deliveries failed: {delivery.errors[:5]}"
    got = confluent_consume(bootstrap, topic, partitions, len(msgs), timeout_s=TIMEOUT_S, extra_conf=conf)
    assert_roundtrip(msgs, got, delivery)


def create_topic_as(conf: dict, name: str, partitions: int = PARTITIONS) -> None:
    """Creates a topic through the listener and principal of `conf`."""
    admin = AdminClient(conf)
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10, request_timeout=TIMEOUT_S)
    error = failure(futures[name])
    assert error is None, f"creating topic {name} as {conf.get('sasl.username', 'token holder')} failed: {error}"


def kafka_python_sasl(port: int, user: str, password: str = PASSWORD, mechanism: str = "SCRAM-SHA-256") -> dict:
    """kafka-python (and aiokafka) keyword arguments for `user` on the SASL_PLAINTEXT listener."""
    return {"bootstrap_servers": f"127.0.0.1:{port}", "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism, "sasl_plain_username": user, "sasl_plain_password": password}


def kafka_python_roundtrip(topic: str, config: dict) -> None:
    """Produces MESSAGES messages with kafka-python and reads them back with it; `config` holds
    the connection and SASL keyword arguments."""
    msgs = make_messages(MESSAGES, PARTITIONS, seed=4)
    producer = KafkaProducer(acks="all", request_timeout_ms=10_000, max_block_ms=TIMEOUT_S * 1000, **config)
    try:
        futures = [producer.send(topic, key=m.key, value=m.value, headers=list(m.headers), partition=m.partition)
                   for m in msgs]
        producer.flush(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=10)
    offsets = {}
    for m, f in zip(msgs, futures):
        md = f.get(timeout=1)
        offsets[m.mid] = (md.partition, md.offset)

    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_wait_ms=100, **config)
    got: list[Consumed] = []
    try:
        tps = [KpTopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < len(msgs) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                got.extend(Consumed(tp.partition, r.offset, r.key, r.value, tuple(r.headers or ())) for r in records)
        for tp, records in consumer.poll(timeout_ms=300).items():  # notices duplicates
            got.extend(Consumed(tp.partition, r.offset, r.key, r.value, tuple(r.headers or ())) for r in records)
    finally:
        consumer.close()
    assert_roundtrip(msgs, got, Delivery(offsets=offsets))


def kafka_python_describe(config: dict, users: list[str] | None) -> dict:
    """DescribeUserScramCredentials through kafka-python's admin client.

    Used where the answer carries a top-level error (as Kafka's does when DESCRIBE on the
    cluster is missing): confluent-kafka 2.16 (librdkafka 2.16) aborts the whole process on
    such an answer, freeing an error string it did not allocate."""
    admin = KafkaAdminClient(request_timeout_ms=10_000, **config)
    try:
        return admin.describe_user_scram_credentials(users)
    finally:
        admin.close()


class StaticTokenProvider(AbstractTokenProvider):
    """kafka-python's OAUTHBEARER token source (it insists on an AbstractTokenProvider instance)."""

    def __init__(self, token: str):
        super().__init__()
        self._token = token

    def token(self) -> str:
        return self._token


# ---------------------------------------------------------------------------------------------
# Raw protocol


def connect(port: int) -> KafkaConnection:
    return KafkaConnection(f"127.0.0.1:{port}", timeout=10)


def authenticate_plain(conn: KafkaConnection, user: str = "alice", password: str = PASSWORD,
                       version: int = 1) -> SaslAuthenticateResult:
    """SaslHandshake(PLAIN) then one SaslAuthenticate round; both must succeed."""
    error, mechanisms = sasl_handshake(conn, "PLAIN")
    assert error == ERR_NONE and "PLAIN" in mechanisms, f"SaslHandshake(PLAIN): error {error}, {mechanisms}"
    result = sasl_authenticate_plain(conn, user, password, version)
    assert result.error_code == ERR_NONE, f"PLAIN login of {user} refused: {result}"
    # kafka-python counts PLAIN as done only when the server's bytes are empty.
    assert result.auth_bytes == b"", f"PLAIN success carries server bytes {result.auth_bytes!r}"
    return result


def assert_login_refused(conn: KafkaConnection, auth_bytes: bytes, what: str, answer_required: bool = False) -> None:
    """A SaslAuthenticate that must fail: the broker answers SASL_AUTHENTICATION_FAILED (58) with
    a message and then closes the connection, or (malformed input, unless `answer_required`)
    closes it straight away. Never error 0, never silence."""
    try:
        result = sasl_authenticate(conn, auth_bytes)
    except ConnectionError:
        assert not answer_required, f"{what}: connection closed without the SASL_AUTHENTICATION_FAILED answer"
        return
    except TimeoutError:
        raise AssertionError(f"{what}: the broker neither answered nor closed the connection within 10 s")
    assert result.error_code == ERR_SASL_AUTHENTICATION_FAILED, f"{what}: expected error 58, got {result}"
    assert result.error_message, f"{what}: error 58 without an error message"
    closed, waited = closed_by_peer(conn.sock, timeout=10)
    assert closed, f"{what}: connection still open {waited:.1f} s after SASL_AUTHENTICATION_FAILED"


def assert_closed_instead_of_answered(conn: KafkaConnection, api_key: int, version: int, body: bytes,
                                      what: str) -> None:
    """The broker closes the connection on this request instead of answering it."""
    try:
        conn.request(api_key, version, body)
    except ConnectionError:
        return
    except TimeoutError:
        raise AssertionError(f"{what}: the broker neither answered nor closed the connection within 10 s")
    raise AssertionError(f"{what}: the broker answered instead of closing the connection")


def send_and_expect_close(conn: KafkaConnection, data: bytes, what: str, timeout: float = 10) -> None:
    """Sends raw bytes (the broker may close while they are still going out) and expects the close."""
    try:
        conn.send_raw(data)
    except ConnectionError:
        return
    closed, waited = closed_by_peer(conn.sock, timeout)
    assert closed, f"{what}: connection still open after {waited:.1f} s"


def scram_client_first(conn: KafkaConnection, user: str, mechanism: str = "SCRAM-SHA-256") -> tuple[bytes, dict]:
    """SaslHandshake then a well-formed SCRAM client-first; returns (client nonce, server-first fields)."""
    error, _ = sasl_handshake(conn, mechanism)
    assert error == ERR_NONE, f"SaslHandshake({mechanism}): error {error}"
    nonce = uuid.uuid4().hex.encode()
    result = sasl_authenticate(conn, b"n,,n=" + user.encode() + b",r=" + nonce)
    assert result.error_code == ERR_NONE, f"SCRAM client-first of {user} refused: {result}"
    fields = dict(part.split("=", 1) for part in result.auth_bytes.decode().split(","))
    return nonce, fields


def assert_good_client_works(port: int, topic: str) -> None:
    """After an attack: a real client with the right password still logs in and produces."""
    assert produce_one(client_conf(port, "alice"), topic, b"still-serving") is None, "a good client failed afterwards"


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


# ---------------------------------------------------------------------------------------------
# 1. Round trips over SASL_PLAINTEXT


@pytest.mark.parametrize("mechanism", DEFAULT_MECHANISMS)
def test_confluent_roundtrip(sasl, topic_name, mechanism):
    """A user with SCRAM credentials logs in with each mechanism (PLAIN is checked against the
    SCRAM credential) and every message produced comes back exactly."""
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    confluent_roundtrip(client_conf(port, "alice", mechanism=mechanism), topic_name)


@pytest.mark.parametrize("mechanism", DEFAULT_MECHANISMS)
def test_kafka_python_roundtrip(sasl, topic_name, mechanism):
    """kafka-python sends PLAIN with authzid = username, and SaslAuthenticate at up to v2."""
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    kafka_python_roundtrip(topic_name, kafka_python_sasl(port, "alice", mechanism=mechanism))


def test_aiokafka_scram_roundtrip(sasl, topic_name):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as AioTopicPartition

    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    msgs = make_messages(MESSAGES, PARTITIONS, seed=5)
    config = kafka_python_sasl(port, "alice", mechanism="SCRAM-SHA-256")

    async def run() -> list[Consumed]:
        producer = AIOKafkaProducer(acks="all", **config)
        await producer.start()
        try:
            for m in msgs:
                await producer.send(topic_name, key=m.key, value=m.value, headers=list(m.headers),
                                    partition=m.partition)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **config)
        await consumer.start()
        out: list[Consumed] = []
        try:
            tps = [AioTopicPartition(topic_name, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while len(out) < len(msgs):
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    out.extend(Consumed(tp.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                               for r in records)
        finally:
            await consumer.stop()
        return out

    got = asyncio.run(asyncio.wait_for(run(), timeout=TIMEOUT_S))
    assert_roundtrip(msgs, got)


# ---------------------------------------------------------------------------------------------
# 2. SASL_SSL


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_sasl_ssl_roundtrip(sluice_bin, tmp_path, request, topic_name, mechanism):
    """SASL over TLS with a server certificate only: no --ssl-listen, no client certificate."""
    pki = Pki(tmp_path / "pki", "sluice-test-ca")
    server = pki.issue("server", [cn("localhost")], server=True)
    with sasl_broker(sluice_bin, tmp_path, request, tls=server) as (broker, port):
        create_user(plaintext(broker), "alice")
        create_topic(broker.bootstrap, topic_name, PARTITIONS)
        confluent_roundtrip(client_conf(port, "alice", mechanism=mechanism, ca=pki.ca_path), topic_name)


# ---------------------------------------------------------------------------------------------
# 3. Refused credentials

REFUSED = {
    "plain-wrong-password": ("PLAIN", "alice", WRONG_PASSWORD),
    "scram-sha-256-wrong-password": ("SCRAM-SHA-256", "alice", WRONG_PASSWORD),
    "scram-sha-512-wrong-password": ("SCRAM-SHA-512", "alice", WRONG_PASSWORD),
    "plain-unknown-user": ("PLAIN", "mallory", PASSWORD),
    "scram-sha-256-unknown-user": ("SCRAM-SHA-256", "mallory", PASSWORD),
    "scram-sha-512-unknown-user": ("SCRAM-SHA-512", "mallory", PASSWORD),
}


@pytest.mark.parametrize("mechanism, user, password", list(REFUSED.values()), ids=list(REFUSED))
def test_bad_credentials_are_refused(sasl, topic_name, mechanism, user, password):
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    assert_refused(client_conf(port, user, password, mechanism), topic_name, f"{user} with {mechanism}")
    broker.check_alive()
    assert "panicked at" not in broker.log_text()
    assert produce_one(client_conf(port, "alice", mechanism=mechanism), topic_name, b"right-password") is None
    assert end_offset(plaintext(broker), topic_name) == 1, "only the message of the right password lands"


@pytest.mark.parametrize("version", [0, 1])
def test_raw_plain_login(sasl, version):
    """By hand: SaslHandshake v1, then SaslAuthenticate v0 or v1 with PLAIN. The session has no
    lifetime without --connections-max-reauth-ms, and Metadata on the SASL listener advertises it."""
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    with connect(port) as conn:
        error, keys = conn.api_versions()  # allowed before authentication
        assert error == ERR_NONE, f"ApiVersions before authentication: error {error}"
        assert keys.get(API_SASL_HANDSHAKE, (0, -1))[1] >= 1, f"SaslHandshake v1 not advertised: {keys}"
        assert keys.get(API_SASL_AUTHENTICATE, (0, -1))[1] >= 1, f"SaslAuthenticate v1 not advertised: {keys}"
        result = authenticate_plain(conn, version=version)
        if version >= 1:
            assert result.session_lifetime_ms == 0, f"re-authentication is off, yet session_lifetime_ms {result}"
        brokers = conn.metadata_v1()
        assert [(host, p) for _, host, p in brokers] == [("127.0.0.1", port)], f"advertised {brokers}"


RAW_PLAIN_REFUSED = {
    "wrong-password": plain_message("alice", WRONG_PASSWORD),
    "unknown-user": plain_message("mallory", PASSWORD),
    # RFC 4616 authzid: asking to act as another user must not work (Kafka refuses authzid != authcid).
    "authzid-of-another-user": plain_message("alice", PASSWORD, authzid="admin"),
    "empty-password": plain_message("alice", ""),
}


@pytest.mark.parametrize("case", RAW_PLAIN_REFUSED)
def test_raw_plain_refusal_answers_58_then_closes(sasl, topic_name, case):
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_user(plaintext(broker), "admin", ADMIN_PASSWORD)
    create_topic(broker.bootstrap, topic_name, 1)
    with connect(port) as conn:
        assert sasl_handshake(conn, "PLAIN")[0] == ERR_NONE
        assert_login_refused(conn, RAW_PLAIN_REFUSED[case], case, answer_required=True)
    broker.check_alive()
    assert_good_client_works(port, topic_name)


# ---------------------------------------------------------------------------------------------
# 4. The `sluice user` CLI and revocation


def test_cli_added_users_log_in(sasl, sluice_bin, topic_name):
    broker, port = sasl
    create_topic(broker.bootstrap, topic_name, 1)
    sluice_user(sluice_bin, broker, "add", "alice", "--password", PASSWORD)
    sluice_user(sluice_bin, broker, "add", "bob", "--password", WRONG_PASSWORD, "--mechanism", "SCRAM-SHA-512",
                "--iterations", "8192")
    assert listed_credentials(sluice_bin, broker) == {
        ("alice", "SCRAM-SHA-256", 4096), ("alice", "SCRAM-SHA-512", 4096), ("bob", "SCRAM-SHA-512", 8192)}
    for mechanism in DEFAULT_MECHANISMS:
        conf = client_conf(port, "alice", mechanism=mechanism)
        assert produce_one(conf, topic_name, mechanism.encode()) is None, f"alice with {mechanism}"
    # bob has a SCRAM-SHA-512 credential only: PLAIN (checked against it) works, SCRAM-SHA-256 does not.
    for mechanism in ("SCRAM-SHA-512", "PLAIN"):
        conf = client_conf(port, "bob", WRONG_PASSWORD, mechanism)
        assert produce_one(conf, topic_name, mechanism.encode()) is None, f"bob with {mechanism}"
    assert_refused(client_conf(port, "bob", WRONG_PASSWORD, "SCRAM-SHA-256"), topic_name,
                   "bob has no SCRAM-SHA-256 credential")
    assert end_offset(plaintext(broker), topic_name) == 5


def test_removed_user_is_refused(sasl, sluice_bin, topic_name):
    broker, port = sasl
    create_topic(broker.bootstrap, topic_name, 1)
    sluice_user(sluice_bin, broker, "add", "alice", "--password", PASSWORD)
    sluice_user(sluice_bin, broker, "add", "carol", "--password", PASSWORD)
    assert produce_one(client_conf(port, "alice"), topic_name, b"before") is None

    sluice_user(sluice_bin, broker, "remove", "alice", "--mechanism", "SCRAM-SHA-256")
    assert {c for c in listed_credentials(sluice_bin, broker) if c[0] == "alice"} == {("alice", "SCRAM-SHA-512", 4096)}
    assert_refused(client_conf(port, "alice", mechanism="SCRAM-SHA-256"), topic_name, "alice's SHA-256 credential removed")
    assert produce_one(client_conf(port, "alice", mechanism="PLAIN"), topic_name, b"plain-via-sha512") is None

    sluice_user(sluice_bin, broker, "remove", "alice")
    assert listed_credentials(sluice_bin, broker) == {("carol", "SCRAM-SHA-256", 4096), ("carol", "SCRAM-SHA-512", 4096)}
    for mechanism in DEFAULT_MECHANISMS:
        assert_refused(client_conf(port, "alice", mechanism=mechanism), topic_name, f"removed alice with {mechanism}")
    assert produce_one(client_conf(port, "carol"), topic_name, b"carol-unaffected") is None
    assert end_offset(plaintext(broker), topic_name) == 3


# ---------------------------------------------------------------------------------------------
# 5. AlterUserScramCredentials / DescribeUserScramCredentials, and what is stored


def test_admin_describe_alter_and_stored_form(sasl, sluice_bin, topic_name):
    broker, port = sasl
    admin = plaintext(broker)
    create_user(admin, "alice", mechanisms=("SCRAM-SHA-256",), iterations=4096)
    create_user(admin, "alice", mechanisms=("SCRAM-SHA-512",), iterations=8192)
    create_user(admin, "bob", mechanisms=("SCRAM-SHA-512",), iterations=16384)
    sluice_user(sluice_bin, broker, "add", "carol", "--password", CAROL_PASSWORD)
    assert describe_user(admin, "alice") == {("SCRAM-SHA-256", 4096), ("SCRAM-SHA-512", 8192)}
    everyone = describe_all(admin)
    assert everyone == {"alice": {("SCRAM-SHA-256", 4096), ("SCRAM-SHA-512", 8192)},
                        "bob": {("SCRAM-SHA-512", 16384)},
                        "carol": {("SCRAM-SHA-256", 4096), ("SCRAM-SHA-512", 4096)}}, everyone
    error = describe_failure(admin, "nobody")
    assert error is not None and error.code() == KafkaError.RESOURCE_NOT_FOUND, error

    for iterations in (1, 4095, 16385):
        upsert = UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, iterations),
                                              b"another-password")
        error = alter_failure(admin, upsert)
        assert error is not None and error.code() == KafkaError.UNACCEPTABLE_CREDENTIAL, f"{iterations}: {error}"
    assert describe_user(admin, "alice") == {("SCRAM-SHA-256", 4096), ("SCRAM-SHA-512", 8192)}, "refused upserts changed nothing"

    error = alter_failure(admin, UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_256))
    assert error is not None and error.code() == KafkaError.RESOURCE_NOT_FOUND, error
    assert alter_failure(admin, UserScramCredentialDeletion("alice", ScramMechanism.SCRAM_SHA_512)) is None
    assert describe_user(admin, "alice") == {("SCRAM-SHA-256", 4096)}

    # Logins send the plain password to the broker (PLAIN) or prove knowledge of it (SCRAM).
    create_topic(broker.bootstrap, topic_name, 1)
    assert produce_one(client_conf(port, "alice", mechanism="PLAIN"), topic_name, b"alice") is None
    assert produce_one(client_conf(port, "carol", CAROL_PASSWORD, "PLAIN"), topic_name, b"carol") is None
    assert_refused(client_conf(port, "alice", WRONG_PASSWORD, "PLAIN"), topic_name, "wrong PLAIN password")

    broker.restart()  # everything written out
    wait_for_listener(broker, port)
    assert describe_all(admin) == {"alice": {("SCRAM-SHA-256", 4096)}, "bob": {("SCRAM-SHA-512", 16384)},
                                   "carol": {("SCRAM-SHA-256", 4096), ("SCRAM-SHA-512", 4096)}}
    for secret in (PASSWORD, CAROL_PASSWORD, WRONG_PASSWORD):
        assert files_containing(broker.data_dir, secret.encode()) == [], f"password {secret!r} stored in plain"
        assert secret not in broker.log_text(), f"password {secret!r} written to the broker log"


# ---------------------------------------------------------------------------------------------
# 6. OAUTHBEARER

OAUTH_AUDIENCE = "sluice-test"
OAUTH_ISSUER = "https://issuer.sluice.test"
OAUTH_SUBJECT = "orders-svc"


@dataclass(frozen=True)
class OAuthKeys:
    """Token signing keys; the JWKS file lists rsa (kid rsa-1) and ec (kid ec-1), the PEM file
    holds ed's public key (as the KSS token issuer's would be given)."""

    rsa: object
    ec: object
    ed: object
    jwks: Path
    pem: Path


@pytest.fixture(scope="module")
def oauth_keys(tmp_path_factory) -> OAuthKeys:
    directory = tmp_path_factory.mktemp("oauth")
    keys = OAuthKeys(jwt_helper.rsa_key(), jwt_helper.ec_key(), jwt_helper.ed25519_key(),
                     directory / "jwks.json", directory / "issuer.pem")
    keys.jwks.write_text(json.dumps(jwt_helper.jwks({"rsa-1": keys.rsa, "ec-1": keys.ec}), indent=2))
    keys.pem.write_bytes(jwt_helper.public_pem(keys.ed))
    return keys


def good_token(keys: OAuthKeys, **claims) -> str:
    body = jwt_helper.claims(OAUTH_SUBJECT, aud=OAUTH_AUDIENCE, iss=OAUTH_ISSUER, **claims)
    return jwt_helper.encode(body, keys.rsa, kid="rsa-1")


OAUTH_SIGNERS = {
    "RS256-jwks": ("rsa", "rsa-1", "--sasl-oauthbearer-jwks"),
    "ES256-jwks": ("ec", "ec-1", "--sasl-oauthbearer-jwks"),
    "EdDSA-public-key": ("ed", None, "--sasl-oauthbearer-public-key"),
}


@pytest.mark.parametrize("signer", OAUTH_SIGNERS)
def test_oauthbearer_roundtrip(sluice_bin, tmp_path, request, oauth_keys, topic_name, signer):
    """A token signed by a trusted key logs in as User:<sub>: with ACLs on and only that principal
    a super user, creating the topic and the round trip work only if sub became the principal."""
    attr, kid, flag = OAUTH_SIGNERS[signer]
    key_file = oauth_keys.jwks if flag == "--sasl-oauthbearer-jwks" else oauth_keys.pem
    args = [flag, str(key_file), "--acls", "--super-users", f"User:{OAUTH_SUBJECT}"]
    with sasl_broker(sluice_bin, tmp_path, request, *args) as (broker, port):
        token = jwt_helper.encode(jwt_helper.claims(OAUTH_SUBJECT), getattr(oauth_keys, attr), kid=kid)
        conf = oauth_conf(port, token)
        create_topic_as(conf, topic_name)
        confluent_roundtrip(conf, topic_name)
        # A token for another subject is a different principal, which the ACLs keep out.
        other = jwt_helper.encode(jwt_helper.claims("intruder"), getattr(oauth_keys, attr), kid=kid)
        error = produce_one(oauth_conf(port, other), topic_name, b"intruder")
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


def _hs256_with_public_key(keys: OAuthKeys) -> str:
    """The classic key-confusion forgery: HS256 keyed with the RSA public key's PEM."""
    import hashlib
    import hmac

    head = jwt_helper.json_part({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    body = jwt_helper.json_part(jwt_helper.claims(OAUTH_SUBJECT, aud=OAUTH_AUDIENCE, iss=OAUTH_ISSUER))
    mac = hmac.new(jwt_helper.public_pem(keys.rsa), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{jwt_helper.b64url(mac)}"


def _claims(**extra) -> dict:
    return jwt_helper.claims(OAUTH_SUBJECT, **{"aud": OAUTH_AUDIENCE, "iss": OAUTH_ISSUER, **extra})


def _expired(keys: OAuthKeys) -> str:
    """Issued 10 minutes ago, expired 2 minutes ago (well past the 30 s clock skew)."""
    now = int(time.time())
    return jwt_helper.encode(_claims(iat=now - 600, exp=now - 120), keys.rsa, kid="rsa-1")


def _tampered(keys: OAuthKeys) -> str:
    """A good token whose claims were swapped for another subject's, signature kept."""
    head, _, signature = good_token(keys).split(".")
    forged = jwt_helper.claims("admin", aud=OAUTH_AUDIENCE, iss=OAUTH_ISSUER)
    return f"{head}.{jwt_helper.json_part(forged)}.{signature}"


OAUTH_REFUSED = {
    "expired": _expired,
    "foreign-key-same-kid": lambda k: jwt_helper.encode(_claims(), jwt_helper.rsa_key(), kid="rsa-1"),
    "alg-none": lambda k: jwt_helper.unsigned(_claims(), kid="rsa-1"),
    "wrong-audience": lambda k: jwt_helper.encode(_claims(aud="someone-else"), k.rsa, kid="rsa-1"),
    "wrong-issuer": lambda k: jwt_helper.encode(_claims(iss="https://evil.test"), k.ec, kid="ec-1"),
    "no-exp": lambda k: jwt_helper.encode(_claims(exp=None), k.ec, kid="ec-1"),
    "not-yet-valid": lambda k: jwt_helper.encode(_claims(nbf=int(time.time()) + 600), k.rsa, kid="rsa-1"),
    "ec-signature-under-rsa-kid": lambda k: jwt_helper.encode(_claims(), k.ec, kid="rsa-1"),
    "hs256-keyed-with-public-key": _hs256_with_public_key,
    "tampered-claims": _tampered,
}


@pytest.mark.parametrize("case", OAUTH_REFUSED)
def test_oauthbearer_bad_tokens_are_refused(sluice_bin, tmp_path, request, oauth_keys, topic_name, case):
    args = ["--sasl-oauthbearer-jwks", str(oauth_keys.jwks), "--sasl-oauthbearer-expected-audience", OAUTH_AUDIENCE,
            "--sasl-oauthbearer-expected-issuer", OAUTH_ISSUER]
    with sasl_broker(sluice_bin, tmp_path, request, *args) as (broker, port):
        create_topic(broker.bootstrap, topic_name, 1)
        assert_refused(oauth_conf(port, OAUTH_REFUSED[case](oauth_keys)), topic_name, f"token {case}")
        broker.check_alive()
        assert produce_one(oauth_conf(port, good_token(oauth_keys)), topic_name, b"good-token") is None
        assert end_offset(plaintext(broker), topic_name) == 1


def test_kafka_python_oauthbearer_roundtrip(sluice_bin, tmp_path, request, oauth_keys, topic_name):
    with sasl_broker(sluice_bin, tmp_path, request, "--sasl-oauthbearer-jwks", str(oauth_keys.jwks)) as (broker, port):
        create_topic(broker.bootstrap, topic_name, PARTITIONS)
        token = jwt_helper.encode(jwt_helper.claims(OAUTH_SUBJECT), oauth_keys.ec, kid="ec-1")
        config = {"bootstrap_servers": f"127.0.0.1:{port}", "security_protocol": "SASL_PLAINTEXT",
                  "sasl_mechanism": "OAUTHBEARER", "sasl_oauth_token_provider": StaticTokenProvider(token)}
        kafka_python_roundtrip(topic_name, config)


def test_oauthbearer_session_lifetime_is_capped_by_the_token(sluice_bin, tmp_path, request, oauth_keys):
    args = ["--sasl-oauthbearer-jwks", str(oauth_keys.jwks), "--connections-max-reauth-ms", "600000"]
    with sasl_broker(sluice_bin, tmp_path, request, *args) as (broker, port):
        with connect(port) as conn:
            error, mechanisms = sasl_handshake(conn, "OAUTHBEARER")
            assert error == ERR_NONE, f"SaslHandshake(OAUTHBEARER): error {error}"
            assert set(mechanisms) == {*DEFAULT_MECHANISMS, "OAUTHBEARER"}, mechanisms
            sent_ms = int(time.time() * 1000)
            token = jwt_helper.encode(jwt_helper.claims(OAUTH_SUBJECT, lifetime_s=20), oauth_keys.rsa, kid="rsa-1")
            result = sasl_authenticate(conn, jwt_helper.oauthbearer_message(token))
            assert result.error_code == ERR_NONE and result.auth_bytes == b"", result
            left_ms = jwt_helper.decode_unverified(token)[1]["exp"] * 1000 - sent_ms
            # Whole-second rounding of the broker's clock is tolerated.
            assert 0 < result.session_lifetime_ms <= left_ms + 1000, (
                f"session_lifetime_ms {result.session_lifetime_ms} outlives the token ({left_ms} ms left)")
            assert conn.metadata_v1(), "authenticated connection not served"


# ---------------------------------------------------------------------------------------------
# 7. ACLs on SASL principals


def test_acls_apply_to_sasl_principals(sasl, topic_name):
    """Users made without ACLs survive a restart that turns ACLs on with User:admin as super user;
    admin grants alice WRITE and DESCRIBE on one topic, and only the cluster ACLs let her see or
    change credentials."""
    broker, port = sasl
    create_user(plaintext(broker), "admin", ADMIN_PASSWORD)
    create_user(plaintext(broker), "alice")
    restart_with(broker, port, "--acls", "--super-users", "User:admin")

    admin = client_conf(port, "admin", ADMIN_PASSWORD, "SCRAM-SHA-512")
    alice = client_conf(port, "alice", mechanism="SCRAM-SHA-256")
    create_topic_as(admin, "allowed", 1)
    create_topic_as(admin, "denied", 1)
    create_acls(AdminClient(admin), [allow("User:alice", "allowed", AclOperation.WRITE),
                                     allow("User:alice", "allowed", AclOperation.DESCRIBE)])
    assert produce_one(alice, "allowed", b"from-alice") is None
    error = produce_one(alice, "denied", b"from-alice")
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    assert end_offset(admin, "allowed") == 1 and end_offset(admin, "denied") == 0

    # Credentials need the CLUSTER resource: DESCRIBE to describe, ALTER to alter. The refused
    # describe is checked with kafka-python: see kafka_python_describe.
    with pytest.raises(ClusterAuthorizationFailedError):
        kafka_python_describe(kafka_python_sasl(port, "alice"), ["alice"])
    upsert = UserScramCredentialUpsertion("mallory", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                          b"mallory-password")
    error = alter_failure(alice, upsert)
    assert error is not None and error.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, error
    error = alter_failure(plaintext(broker), upsert)
    assert error is not None and error.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, f"User:ANONYMOUS: {error}"
    assert set(describe_all(admin)) == {"admin", "alice"}

    create_acls(AdminClient(admin), [allow("User:alice", "kafka-cluster", AclOperation.DESCRIBE,
                                           restype=ResourceType.BROKER)])
    assert describe_user(alice, "admin") == {("SCRAM-SHA-256", 4096), ("SCRAM-SHA-512", 4096)}
    error = alter_failure(alice, upsert)
    assert error is not None and error.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, error
    create_acls(AdminClient(admin), [allow("User:alice", "kafka-cluster", AclOperation.ALTER,
                                           restype=ResourceType.BROKER)])
    assert alter_failure(alice, upsert) is None
    assert set(describe_all(admin)) == {"admin", "alice", "mallory"}


# ---------------------------------------------------------------------------------------------
# 8. Re-authentication (KIP-368)


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.broker_args("--connections-max-reauth-ms", "2000")
def test_librdkafka_reauthenticates_while_producing(sasl, topic_name):
    """One message every 100 ms for 7 s over sessions of 2 s: librdkafka re-authenticates in place
    (at 90% of the lifetime), so every message is acknowledged once and nothing disconnects."""
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    log = logging.getLogger(f"librdkafka-{uuid.uuid4().hex[:8]}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handler = ListHandler()
    log.addHandler(handler)
    errors: list[KafkaError] = []
    acked: list[int] = []
    failed: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append(f"{msg.value()!r}: {err}")
        else:
            acked.append(msg.offset())

    conf = client_conf(port, "alice", extra={"acks": "all", "linger.ms": 0, "message.timeout.ms": 15_000,
                                             "error_cb": errors.append, "debug": "security", "logger": log})
    producer = Producer(conf)
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < 7:
        producer.produce(topic_name, value=b"m-%d" % sent, on_delivery=on_delivery)
        sent += 1
        producer.poll(max(0.0, start + sent * 0.1 - time.monotonic()))
    assert producer.flush(TIMEOUT_S) == 0, "messages still undelivered"
    assert failed == [], failed[:5]
    assert sorted(acked) == list(range(sent)), f"{sent} sent, acknowledged offsets {sorted(acked)}"
    assert errors == [], f"error_cb during re-authentication: {[str(e) for e in errors]}"
    lifetimes = [line for line in handler.lines if "Received session lifetime" in line]
    assert len(lifetimes) >= 3, f"expected the first login and at least two re-authentications, saw {lifetimes}"
    values = [r.value for r in confluent_consume(f"127.0.0.1:{port}", topic_name, 1, sent, timeout_s=TIMEOUT_S,
                                                 extra_conf=client_conf(port, "alice"))]
    assert values == [b"m-%d" % i for i in range(sent)]


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


@pytest.mark.broker_args("--connections-max-reauth-ms", "2000")
def test_kafka_python_reauthenticates_while_producing(sasl, topic_name, caplog):
    """kafka-python 3 re-authenticates too (at 85-95% of the lifetime, after draining in-flight
    requests, with SaslAuthenticate v2 where the broker lists it). Without retries, a connection
    the broker closed would fail a send."""
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    caplog.set_level(logging.DEBUG, logger="kafka.net.connection")
    producer = KafkaProducer(acks="all", linger_ms=0, retries=0, request_timeout_ms=10_000,
                             max_block_ms=TIMEOUT_S * 1000, **kafka_python_sasl(port, "alice", mechanism="SCRAM-SHA-512"))
    futures = []
    try:
        start = time.monotonic()
        while time.monotonic() - start < 6:
            futures.append(producer.send(topic_name, value=b"m-%d" % len(futures)))
            sleep_until(start + len(futures) * 0.1)
        producer.flush(timeout=TIMEOUT_S)
        offsets = [f.get(timeout=1).offset for f in futures]
    finally:
        producer.close(timeout=10)
    assert offsets == list(range(len(futures))), f"{len(futures)} sent, acknowledged at offsets {offsets}"
    reauths = [r for r in caplog.records if "Beginning SASL re-authentication" in r.getMessage()]
    assert len(reauths) >= 2, f"kafka-python re-authenticated {len(reauths)} times in 6 s of 2 s sessions"


@pytest.mark.broker_args("--connections-max-reauth-ms", "2000")
def test_expired_session_is_closed_unless_reauthenticated(sasl):
    """Two connections log in with PLAIN; one re-authenticates in place before its session ends.
    After the first session's end the stale one is closed on its next request, the other served."""
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    with connect(port) as stale, connect(port) as renewed:
        first = authenticate_plain(stale)
        logged_in = time.monotonic()
        authenticate_plain(renewed)
        lifetime_s = first.session_lifetime_ms / 1000
        assert 0 < first.session_lifetime_ms <= 2000, f"session_lifetime_ms {first.session_lifetime_ms} not in (0, 2000]"
        assert lifetime_s >= 1, f"a {first.session_lifetime_ms} ms session is too short for this test's timing"
        assert stale.metadata_v1() and renewed.metadata_v1(), "requests within the session must be answered"

        sleep_until(logged_in + 0.75 * lifetime_s)
        again = authenticate_plain(renewed)  # SaslHandshake + SaslAuthenticate on the same connection
        assert 0 < again.session_lifetime_ms <= 2000, f"re-authentication gave session_lifetime_ms {again}"
        assert renewed.metadata_v1(), "not served right after re-authenticating"

        sleep_until(logged_in + lifetime_s + 0.5)
        assert renewed.metadata_v1(), "the re-authenticated connection is not served"
        assert_closed_instead_of_answered(stale, API_METADATA, 1, struct.pack(">i", -1),
                                          f"Metadata {lifetime_s + 0.5:.1f} s into a {lifetime_s:.1f} s session")
    broker.check_alive()


# ---------------------------------------------------------------------------------------------
# 9. Hostile input before authentication


def _list_offsets_body(topic: str) -> bytes:
    return struct.pack(">ib", -1, 0) + struct.pack(">i", 1) + nullable_string(topic) + struct.pack(">iiq", 1, 0, -1)


PRE_AUTH_REQUESTS = {
    "metadata": lambda topic: (API_METADATA, 1, struct.pack(">i", -1)),
    "list-offsets": lambda topic: (API_LIST_OFFSETS, 2, _list_offsets_body(topic)),
    "init-producer-id": lambda topic: (API_INIT_PRODUCER_ID, 0, nullable_string(None) + struct.pack(">i", 60_000)),
    "produce": lambda topic: (API_PRODUCE, 3, nullable_string(None) + struct.pack(">hi", -1, 10_000) + struct.pack(">i", 1)
                              + nullable_string(topic) + struct.pack(">ii", 1, 0)
                              + nullable_bytes(bytes(build_batch([(b"k", b"unauthenticated")])))),
}


PRE_AUTH_CASES = [("metadata", "before-handshake"), ("metadata", "after-handshake"), ("metadata", "mid-scram"),
                  ("list-offsets", "before-handshake"), ("init-producer-id", "before-handshake"),
                  ("produce", "before-handshake"), ("produce", "mid-scram")]


@pytest.mark.parametrize("kind, stage", PRE_AUTH_CASES, ids=[f"{k}-{s}" for k, s in PRE_AUTH_CASES])
def test_requests_before_authentication_close_the_connection(sasl, topic_name, kind, stage):
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    with connect(port) as conn:
        if stage == "after-handshake":
            assert sasl_handshake(conn, "SCRAM-SHA-256")[0] == ERR_NONE
        elif stage == "mid-scram":
            scram_client_first(conn, "alice")
        api_key, version, body = PRE_AUTH_REQUESTS[kind](topic_name)
        assert_closed_instead_of_answered(conn, api_key, version, body, f"{kind} {stage}")
    assert end_offset(plaintext(broker), topic_name) == 0, "an unauthenticated produce appended"
    broker.check_alive()
    assert_good_client_works(port, topic_name)


@pytest.mark.parametrize("stage", ["before-handshake", "after-handshake"])
def test_oversized_frame_before_authentication_closes_the_connection(sasl, topic_name, stage):
    """A 1 MiB SaslAuthenticate (over the 512 KiB pre-authentication limit) is not read in."""
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    with connect(port) as conn:
        if stage == "after-handshake":
            assert sasl_handshake(conn, "PLAIN")[0] == ERR_NONE
        payload = plain_message("alice", PASSWORD) + bytes(MiB)
        request = frame(request_header_v1(API_SASL_AUTHENTICATE, 1, 1, "big") + nullable_bytes(payload))
        send_and_expect_close(conn, request, f"1 MiB SaslAuthenticate {stage}")
    broker.check_alive()
    assert_good_client_works(port, topic_name)


def test_oversized_size_prefix_alone_closes_the_connection(sasl, topic_name):
    """A frame announcing 100 MiB before authentication is refused on its size prefix, without
    waiting for (or buffering) the body."""
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    with connect(port) as conn:
        send_and_expect_close(conn, struct.pack(">i", 100 * MiB) + request_header_v1(API_SASL_HANDSHAKE, 1, 1, "x"),
                              "a 100 MiB size prefix before authentication")
    broker.check_alive()
    assert_good_client_works(port, topic_name)


SCRAM_FIRST_GARBAGE = {
    "empty": b"",
    "not-utf8": b"\xff\xfe\xfd\x00garbage",
    "no-gs2-header": b"n=alice,r=abcdef",
    "no-nonce": b"n,,n=alice",
    "channel-binding-required": b"p=tls-unique,,n=alice,r=abcdef",
    "nul-in-username": b"n,,n=ali\x00ce,r=abcdef",
    "huge-username": b"n,,n=" + b"a" * 100_000 + b",r=abcdef",
}


@pytest.mark.parametrize("case", SCRAM_FIRST_GARBAGE)
def test_garbage_scram_client_first(sasl, topic_name, case):
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    with connect(port) as conn:
        assert sasl_handshake(conn, "SCRAM-SHA-256")[0] == ERR_NONE
        assert_login_refused(conn, SCRAM_FIRST_GARBAGE[case], f"client-first {case}")
    broker.check_alive()
    assert_good_client_works(port, topic_name)


def _proof(size: int = 32) -> bytes:
    return base64.b64encode(bytes(size))


# Each builds a client-final from (client nonce, combined nonce of the server-first).
SCRAM_FINAL_GARBAGE = {
    "garbage": lambda mine, nonce: b"\x00\xffgarbage",
    "wrong-nonce": lambda mine, nonce: b"c=biws,r=" + b"x" * len(nonce) + b",p=" + _proof(),
    "client-nonce-only": lambda mine, nonce: b"c=biws,r=" + mine + b",p=" + _proof(),
    "no-proof": lambda mine, nonce: b"c=biws,r=" + nonce,
    "proof-not-base64": lambda mine, nonce: b"c=biws,r=" + nonce + b",p=!!!not*base64!!!",
    "short-proof": lambda mine, nonce: b"c=biws,r=" + nonce + b",p=" + _proof(4),
    "wrong-proof": lambda mine, nonce: b"c=biws,r=" + nonce + b",p=" + _proof(),
    # c= is base64 of the GS2 header: "y,," here after "n,," in the client-first.
    "channel-binding-mismatch": lambda mine, nonce: b"c=eSws,r=" + nonce + b",p=" + _proof(),
}


@pytest.mark.parametrize("case", SCRAM_FINAL_GARBAGE)
def test_garbage_scram_client_final(sasl, topic_name, case):
    """After a well-formed client-first (whose server-first must be sound: the client nonce
    extended, a salt, the stored iteration count) the client-final is garbage."""
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    with connect(port) as conn:
        client_nonce, server_first = scram_client_first(conn, "alice")
        nonce = server_first["r"].encode()
        assert nonce.startswith(client_nonce) and len(nonce) > len(client_nonce), f"server nonce {nonce!r}"
        assert base64.b64decode(server_first["s"]), "empty salt"
        assert server_first["i"] == "4096", f"iterations {server_first['i']}, credential made with 4096"
        assert_login_refused(conn, SCRAM_FINAL_GARBAGE[case](client_nonce, nonce), f"client-final {case}")
    broker.check_alive()
    assert_good_client_works(port, topic_name)


def test_unknown_mechanism_lists_the_enabled_ones(sasl, topic_name):
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    with connect(port) as conn:
        error, mechanisms = sasl_handshake(conn, "GSSAPI")
        assert error == ERR_UNSUPPORTED_SASL_MECHANISM, f"SaslHandshake(GSSAPI): error {error}"
        assert sorted(mechanisms) == sorted(DEFAULT_MECHANISMS), f"enabled mechanisms listed: {mechanisms}"
    broker.check_alive()
    assert_good_client_works(port, topic_name)


@pytest.mark.broker_args("--sasl-enabled-mechanisms", "SCRAM-SHA-512")
def test_enabled_mechanisms_restrict_logins(sasl, topic_name):
    broker, port = sasl
    create_user(plaintext(broker), "alice")
    create_topic(broker.bootstrap, topic_name, 1)
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "OAUTHBEARER"):
        with connect(port) as conn:
            error, mechanisms = sasl_handshake(conn, mechanism)
            assert (error, mechanisms) == (ERR_UNSUPPORTED_SASL_MECHANISM, ["SCRAM-SHA-512"]), (
                f"SaslHandshake({mechanism}) with only SCRAM-SHA-512 enabled: error {error}, {mechanisms}")
    error = assert_refused(client_conf(port, "alice", mechanism="PLAIN"), topic_name, "PLAIN not enabled")
    assert "SCRAM-SHA-512" in error.str(), f"librdkafka's refusal does not name the enabled mechanism: {error}"
    assert produce_one(client_conf(port, "alice", mechanism="SCRAM-SHA-512"), topic_name, b"sha-512") is None
