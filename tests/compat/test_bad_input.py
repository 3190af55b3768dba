"""Malformed, corrupt and oversized input is refused without damaging the log or the broker."""

from __future__ import annotations

import os
import random
import socket
import struct
import time

import pytest
from confluent_kafka.admin import AdminClient

from clients import Consumed, confluent_consume, confluent_produce, create_topic, make_messages
from kafka_wire import (
    API_API_VERSIONS,
    API_METADATA,
    API_PRODUCE,
    ERR_CORRUPT_MESSAGE,
    ERR_MESSAGE_TOO_LARGE,
    ERR_NONE,
    ERR_UNSUPPORTED_VERSION,
    KafkaConnection,
    build_batch,
    frame,
    request_header_v1,
)

# Offsets inside a v2 record batch header.
CRC_OFFSET = 17
HEADER_SIZE = 61


def snapshot(bootstrap: str, topic: str, expected: int) -> list[Consumed]:
    return confluent_consume(bootstrap, topic, 1, expected=expected, settle_s=0.5, timeout_s=30)


def assert_serving(broker) -> None:
    """The broker is alive and answers a fresh connection and a real client."""
    broker.check_alive()
    with KafkaConnection(broker.bootstrap) as conn:
        error, keys = conn.api_versions()
        assert error == ERR_NONE and API_PRODUCE in keys
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
    assert md.brokers


@pytest.fixture
def seeded_topic(broker, topic_name):
    """A one-partition topic with 20 known records and a small max.message.bytes."""
    create_topic(broker.bootstrap, topic_name, 1, config={"max.message.bytes": "4096"})
    msgs = make_messages(20, 1, seed=1)
    confluent_produce(broker.bootstrap, topic_name, msgs, {"batch.num.messages": 5, "message.max.bytes": 4000})
    before = snapshot(broker.bootstrap, topic_name, len(msgs))
    assert len(before) == len(msgs)
    return topic_name, before


def flip(batch: bytearray, pos: int) -> bytes:
    corrupted = bytearray(batch)
    corrupted[pos] ^= 0x40
    return bytes(corrupted)


@pytest.mark.parametrize("where", ["crc", "attributes", "record-body", "last-byte"])
def test_corrupt_batch_refused_and_log_intact(broker, seeded_topic, where):
    topic, before = seeded_topic
    batch = build_batch([(b"key-%d" % i, b"corrupt-candidate-%d" % i * 5) for i in range(10)])
    pos = {"crc": CRC_OFFSET + 1, "attributes": 21, "record-body": HEADER_SIZE + 20, "last-byte": len(batch) - 1}[where]
    with KafkaConnection(broker.bootstrap) as conn:
        result = conn.produce(topic, 0, flip(batch, pos))
        assert result.error_code == ERR_CORRUPT_MESSAGE, f"corrupt batch ({where}) got error {result.error_code}"
        # The connection stays usable and the same batch, uncorrupted, is accepted at the old end.
        ok = conn.produce(topic, 0, bytes(batch))
        assert (ok.error_code, ok.base_offset) == (ERR_NONE, len(before))

    after = snapshot(broker.bootstrap, topic, len(before) + 10)
    assert after[: len(before)] == before, "existing records changed after a refused batch"
    assert [r.value for r in after[len(before):]] == [b"corrupt-candidate-%d" % i * 5 for i in range(10)]


def test_truncated_batch_refused(broker, seeded_topic):
    topic, before = seeded_topic
    batch = build_batch([(b"k", b"v" * 100)])
    with KafkaConnection(broker.bootstrap) as conn:
        result = conn.produce(topic, 0, bytes(batch[:-7]))
        assert result.error_code != ERR_NONE
    assert_serving(broker)
    assert snapshot(broker.bootstrap, topic, len(before)) == before


def test_oversized_batch_gets_message_too_large(broker, seeded_topic):
    topic, before = seeded_topic
    rng = random.Random(5)
    big = build_batch([(b"big", rng.randbytes(6000))])  # incompressible, over max.message.bytes=4096
    small = build_batch([(b"small", rng.randbytes(1000))])
    with KafkaConnection(broker.bootstrap) as conn:
        result = conn.produce(topic, 0, bytes(big))
        assert result.error_code == ERR_MESSAGE_TOO_LARGE
        ok = conn.produce(topic, 0, bytes(small))
        assert (ok.error_code, ok.base_offset) == (ERR_NONE, len(before))
    after = snapshot(broker.bootstrap, topic, len(before) + 1)
    assert after[: len(before)] == before
    assert len(after) == len(before) + 1


def test_request_over_socket_request_max_bytes_closes_connection(broker):
    """A frame claiming more than socket.request.max.bytes (100 MiB) is dropped without reading it."""
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    try:
        header = request_header_v1(API_PRODUCE, 7, 1, "oversize")
        sock.sendall(struct.pack(">i", 200 * 1024 * 1024) + header + b"\0" * 1024)
        start = time.monotonic()
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        assert closed, "broker answered an oversized frame instead of closing the connection"
        assert time.monotonic() - start < 5
    finally:
        sock.close()
    assert_serving(broker)


@pytest.mark.broker_args("--socket-request-max-bytes", "1048576")
def test_lowered_socket_request_max_bytes(broker, topic_name):
    """With a 1 MiB limit, a fully sent 2 MiB request is refused by closing; a 512 KiB one is served."""
    create_topic(broker.bootstrap, topic_name, 1, config={"max.message.bytes": str(8 << 20)})
    rng = random.Random(9)
    with KafkaConnection(broker.bootstrap) as conn:
        ok = conn.produce(topic_name, 0, bytes(build_batch([(b"k", rng.randbytes(512 * 1024))])))
        assert (ok.error_code, ok.base_offset) == (ERR_NONE, 0)
    with KafkaConnection(broker.bootstrap) as conn:
        with pytest.raises((ConnectionError, OSError)):
            conn.produce(topic_name, 0, bytes(build_batch([(b"k", rng.randbytes(2 << 20))])))
    assert_serving(broker)
    assert len(snapshot(broker.bootstrap, topic_name, 1)) == 1


GARBAGE_FRAMES = {
    "random-bytes": lambda: os.urandom(4096),
    "negative-length": lambda: struct.pack(">i", -5) + b"abc",
    "zero-length": lambda: struct.pack(">i", 0),
    "tiny-frame": lambda: frame(b"\x00"),
    "unknown-api-key": lambda: frame(request_header_v1(999, 0, 1, "x") + b"\x00" * 16),
    "bad-version-metadata": lambda: frame(request_header_v1(API_METADATA, 999, 1, "x")),
    "truncated-produce": lambda: frame(request_header_v1(API_PRODUCE, 7, 1, "x") + b"\xff\xff\x00"),
    "huge-array-count": lambda: frame(request_header_v1(API_PRODUCE, 7, 1, "x")
                                      + struct.pack(">hhii", -1, -1, 1000, 0x7FFFFFFF)),
    "bad-client-id-length": lambda: frame(struct.pack(">hhih", API_METADATA, 1, 1, 30000) + b"x"),
    "random-frame": lambda: frame(os.urandom(300)),
}


@pytest.mark.parametrize("kind", sorted(GARBAGE_FRAMES))
def test_garbage_does_not_crash_broker(broker, kind):
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=2)
    try:
        sock.sendall(GARBAGE_FRAMES[kind]())
        # The broker may answer with an error or close; either way it must not hang the socket forever
        # for framing errors, and must not die.
        try:
            sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            pass
    finally:
        sock.close()
    assert_serving(broker)


def test_garbage_fuzz_burst(broker):
    """Many connections with random frames in a row; the broker keeps serving real clients."""
    rng = random.Random(1234)
    for _ in range(200):
        with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock:
            api_key = rng.choice([0, 1, 3, 18, 19, 20, 22, 32, 44, rng.randint(-5, 100)])
            version = rng.randint(-1, 15)
            body = rng.randbytes(rng.randint(0, 200))
            sock.sendall(frame(request_header_v1(api_key, version, rng.randint(0, 1 << 30), "fuzz") + body))
            sock.settimeout(0.2)
            try:
                sock.recv(4096)
            except (socket.timeout, ConnectionResetError):
                pass
    assert_serving(broker)


def test_api_versions_unsupported_version_reply(broker):
    """An ApiVersions request newer than the broker knows gets error 35 plus a v0 list to retry with."""
    with KafkaConnection(broker.bootstrap) as conn:
        resp = conn.request(API_API_VERSIONS, 127, b"")
        error = resp.int16()
        keys = resp.array(lambda r: (r.int16(), r.int16(), r.int16()))
    assert error == ERR_UNSUPPORTED_VERSION
    versions = {k: (lo, hi) for k, lo, hi in keys}
    assert API_API_VERSIONS in versions
    assert versions[API_API_VERSIONS][0] == 0
    assert_serving(broker)
