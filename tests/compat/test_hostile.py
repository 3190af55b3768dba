"""Hostile clients: decompression bombs, lying batches, keyless records on compacted topics,
stalled and idle sockets, connection floods, unbounded fetches, authorization gaps, and a
PLAINTEXT listener that must stay off.

Every attack is followed by the same checks: the broker is still alive, the records produced
before the attack read back unchanged, and (where the attack is about memory) the broker's
resident set stayed bounded. Batches no client library will send are built by hand with the
record helpers in kafka_wire.py, with a valid CRC-32C so the CRC check is not what refuses them.
"""

from __future__ import annotations

import gc
import socket
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass

import lz4.frame
import pytest
import snappy
import zstandard
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AclOperation, AdminClient, ResourcePatternType

from clients import confluent_consume, confluent_consumer, create_topic
from conftest import Broker, free_port, port_accepts
from kafka_wire import (
    API_API_VERSIONS,
    ERR_CORRUPT_MESSAGE,
    ERR_INVALID_RECORD,
    ERR_MESSAGE_TOO_LARGE,
    ERR_NONE,
    ERR_TOPIC_AUTHORIZATION_FAILED,
    KafkaConnection,
    build_batch,
    build_raw_batch,
    closed_by_peer,
    encode_record,
    frame,
    record_around_value,
    request_header_v1,
    split_batches,
    uvarint,
)
from pki import Pki, cn
from test_bad_input import assert_serving
from test_tls_acl import (  # noqa: F401  (cluster is a fixture used by the authorization tests)
    TIMEOUT_S,
    allow,
    cluster,
    create_acls,
    create_topics,
    produce_one,
)

MiB = 1 << 20
GiB = 1 << 30
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "snappy-xerial": 2, "lz4": 3, "zstd": 4}


# ---------------------------------------------------------------------------------------------
# Shared checks


@dataclass(frozen=True)
class Seed:
    """A record produced before an attack, to be read back unchanged after it."""

    key: bytes | None
    value: bytes
    timestamp: int


def seed(bootstrap: str, topic: str, count: int = 10) -> list[Seed]:
    """Produces `count` keyed records with timestamps 1 s apart to partition 0 and waits for them."""
    base = int(time.time() * 1000) - count * 1000
    seeds = [Seed(b"seed-%d" % i, b"seed-value-%d|" % i * 8, base + i * 1000) for i in range(count)]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "message.timeout.ms": 30_000})
    errors: list = []
    for s in seeds:
        producer.produce(topic, key=s.key, value=s.value, partition=0, timestamp=s.timestamp,
                         on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert producer.flush(30) == 0, "seed records not delivered within 30 s"
    assert not errors, f"seeding failed: {errors}"
    return seeds


def read_back(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record of partition 0, read from the beginning with confluent-kafka."""
    got = confluent_consume(bootstrap, topic, 1, expected=expected, settle_s=0.5, timeout_s=60)
    assert [r.offset for r in got] == list(range(len(got))), "offsets are not contiguous from 0"
    return [(r.key, r.value) for r in got]


def seeds_kv(seeds: list[Seed]) -> list[tuple[bytes | None, bytes]]:
    return [(s.key, s.value) for s in seeds]


def log_end_offset(bootstrap: str, topic: str) -> int:
    consumer = confluent_consumer(bootstrap)
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S)[1]
    finally:
        consumer.close()


def assert_intact(broker, topic: str, seeds: list[Seed], extra: list | None = None) -> None:
    """The broker serves, and the topic holds exactly the seeds (then `extra`), nothing else."""
    assert_serving(broker)
    expected = seeds_kv(seeds) + list(extra or [])
    assert log_end_offset(broker.bootstrap, topic) == len(expected)
    assert read_back(broker.bootstrap, topic, len(expected)) == expected


def assert_offsets_for_times(bootstrap: str, topic: str, seeds: list[Seed]) -> None:
    """ListOffsets by timestamp still answers: the first record at or after a seed's time is that seed."""
    consumer = confluent_consumer(bootstrap)
    try:
        for i in (0, 3, len(seeds) - 1):
            query = [TopicPartition(topic, 0, seeds[i].timestamp - 500)]
            (answer,) = consumer.offsets_for_times(query, timeout=TIMEOUT_S)
            assert answer.error is None, answer.error
            assert answer.offset == i, f"offsets_for_times({seeds[i].timestamp - 500}) gave {answer.offset}, want {i}"
    finally:
        consumer.close()


def rss_bytes(broker) -> int:
    """The broker's resident set size, from /proc/<pid>/status."""
    with open(f"/proc/{broker.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line in /proc/<pid>/status")


class RssPeak:
    """Samples the broker's RSS every 10 ms in a thread while the `with` block runs."""

    def __init__(self, broker):
        self.broker = broker
        self.peak = rss_bytes(broker)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.broker))
            except (OSError, AssertionError):
                return
            self._stop.wait(0.01)

    def __enter__(self) -> "RssPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.peak = max(self.peak, rss_bytes(self.broker))
        except (OSError, AssertionError):
            pass


# ---------------------------------------------------------------------------------------------
# 1. Decompression bombs

ZEROS = bytes(MiB)


def _zero_chunks(total: int):
    full, rest = divmod(total, len(ZEROS))
    for _ in range(full):
        yield ZEROS
    if rest:
        yield ZEROS[:rest]


def gzip_stream(prefix: bytes, zeros: int, suffix: bytes) -> bytes:
    """A gzip member of prefix + `zeros` zero bytes + suffix, without compressing every MiB.

    After a Z_FULL_FLUSH deflate starts afresh, so every 1 MiB chunk of zeros compresses to the
    same bytes: compress it once and repeat it. CRC-32 and ISIZE cover the whole stream.
    """
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", co.compress(prefix), co.flush(zlib.Z_FULL_FLUSH)]
    crc = zlib.crc32(prefix)
    full, rest = divmod(zeros, len(ZEROS))
    block = None
    for _ in range(full):
        if block is None:
            block = co.compress(ZEROS) + co.flush(zlib.Z_FULL_FLUSH)
        out.append(block)
        crc = zlib.crc32(ZEROS, crc)
    tail = bytes(rest) + suffix
    out.append(co.compress(tail) + co.flush())
    crc = zlib.crc32(tail, crc)
    out.append(struct.pack("<II", crc, (len(prefix) + zeros + len(suffix)) & 0xFFFFFFFF))
    return b"".join(out)


def xerial_snappy_stream(prefix: bytes, zeros: int, suffix: bytes, block_size: int = 32 * 1024) -> bytes:
    """Snappy in the xerial framing of Kafka's Java client: a header, then length-prefixed blocks."""
    out = [b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)]

    def block(raw: bytes) -> bytes:
        compressed = snappy.compress(raw)
        return struct.pack(">i", len(compressed)) + compressed

    first = min(zeros, block_size - len(prefix))
    out.append(block(prefix + bytes(first)))
    left = zeros - first
    zero_block = block(bytes(block_size))
    while left > block_size:
        out.append(zero_block)
        left -= block_size
    out.append(block(bytes(left) + suffix))
    return b"".join(out)


def compress_stream(codec: str, prefix: bytes, zeros: int, suffix: bytes) -> bytes:
    """prefix + `zeros` zero bytes + suffix compressed with `codec`, streaming the zeros."""
    if codec == "zstd":
        cobj = zstandard.ZstdCompressor(level=3).compressobj()
        out = [cobj.compress(prefix)]
        out += [cobj.compress(chunk) for chunk in _zero_chunks(zeros)]
        out += [cobj.compress(suffix), cobj.flush()]
        return b"".join(out)
    if codec == "gzip":
        return gzip_stream(prefix, zeros, suffix)
    if codec == "lz4":
        c = lz4.frame.LZ4FrameCompressor()
        out = [c.begin(), c.compress(prefix)]
        out += [c.compress(chunk) for chunk in _zero_chunks(zeros)]
        out += [c.compress(suffix), c.flush()]
        return b"".join(out)
    if codec == "snappy":
        # One raw block (how librdkafka and the other non-Java clients write snappy).
        assert zeros <= 64 * MiB, "a raw snappy block is built in memory"
        return snappy.compress(prefix + bytes(zeros) + suffix)
    if codec == "snappy-xerial":
        return xerial_snappy_stream(prefix, zeros, suffix)
    raise ValueError(codec)


def bomb_batch(codec: str, value_len: int, key: bytes = b"bomb") -> bytes:
    """A one-record batch whose record carries `value_len` zero bytes, compressed with `codec`."""
    prefix, suffix = record_around_value(0, value_len, key=key)
    return build_raw_batch(compress_stream(codec, prefix, value_len, suffix), 1, attributes=CODEC_IDS[codec])


# Bombs well under the topic's max.message.bytes on the wire, so only the inflated size can refuse them.
BOMB_TOPIC_CONFIG = {"max.message.bytes": str(16 * MiB)}
RSS_CEILING = 300 * 10**6


@pytest.fixture
def bomb_topic(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1, config=BOMB_TOPIC_CONFIG)
    return topic_name, seed(broker.bootstrap, topic_name)


@pytest.mark.parametrize("codec,inflated", [
    ("zstd", GiB),
    ("gzip", GiB),
    ("lz4", GiB),
    # Snappy compresses zeros only ~21:1, so 128 MiB (twice the limit) keeps the request small.
    ("snappy-xerial", 128 * MiB),
], ids=["zstd-1GiB", "gzip-1GiB", "lz4-1GiB", "snappy-xerial-128MiB"])
def test_decompression_bomb_refused_with_bounded_memory(broker, bomb_topic, codec, inflated):
    topic, seeds = bomb_topic
    batch = bomb_batch(codec, inflated)
    assert len(batch) < 8 * MiB, f"{codec} bomb is {len(batch)} bytes on the wire"
    before = log_end_offset(broker.bootstrap, topic)
    with RssPeak(broker) as during, KafkaConnection(broker.bootstrap, timeout=60) as conn:
        result = conn.produce(topic, 0, batch)
        # The connection stays usable after the refusal.
        error, _ = conn.api_versions()
        assert error == ERR_NONE
    assert result.error_code == ERR_MESSAGE_TOO_LARGE, (
        f"{codec} bomb inflating to {inflated} bytes got error {result.error_code} ({result.error_message})")
    assert "uncompressed" in (result.error_message or ""), (
        f"the refusal should name max.uncompressed.batch.bytes, got {result.error_message!r}")
    print(f"{codec} bomb: {len(batch)} bytes on the wire, broker RSS peak {during.peak / 1e6:.0f} MB")
    assert during.peak < RSS_CEILING, f"broker RSS peaked at {during.peak / 1e6:.0f} MB during the {codec} bomb"
    assert log_end_offset(broker.bootstrap, topic) == before
    assert rss_bytes(broker) < RSS_CEILING
    assert_intact(broker, topic, seeds)
    assert_offsets_for_times(broker.bootstrap, topic, seeds)


def test_snappy_block_claiming_a_gigabyte_refused(broker, bomb_topic):
    """A raw snappy block whose length header claims 1 GB but which holds a few bytes."""
    topic, seeds = bomb_topic
    payload = uvarint(10**9) + b"\x00\x00\x00\x00" + bytes(60)
    with RssPeak(broker) as during, KafkaConnection(broker.bootstrap) as conn:
        result = conn.produce(topic, 0, build_raw_batch(payload, 1, attributes=CODEC_IDS["snappy"]))
    assert result.error_code in (ERR_CORRUPT_MESSAGE, ERR_MESSAGE_TOO_LARGE), result
    assert during.peak < RSS_CEILING, f"broker RSS peaked at {during.peak / 1e6:.0f} MB"
    assert_intact(broker, topic, seeds)
    assert_offsets_for_times(broker.bootstrap, topic, seeds)


def test_zstd_frame_demanding_a_2gib_window_refused(broker, bomb_topic):
    """A zstd frame whose header asks for a 2 GiB window: refused before the decoder allocates it."""
    topic, seeds = bomb_topic
    prefix, suffix = record_around_value(0, 256 * MiB, key=b"window")
    frame_bytes = bytearray(compress_stream("zstd", prefix, 256 * MiB, suffix))
    # Magic (4 bytes), then a frame header descriptor without single-segment, so byte 5 is the
    # window descriptor: exponent 21 is windowLog 31, a 2 GiB window. The blocks stay valid.
    assert frame_bytes[:4] == b"\x28\xb5\x2f\xfd" and frame_bytes[4] & 0x20 == 0
    frame_bytes[5] = 21 << 3
    assert zstandard.get_frame_parameters(bytes(frame_bytes)).window_size == 2 * GiB
    with RssPeak(broker) as during, KafkaConnection(broker.bootstrap, timeout=60) as conn:
        result = conn.produce(topic, 0, build_raw_batch(bytes(frame_bytes), 1, attributes=CODEC_IDS["zstd"]))
    assert result.error_code in (ERR_CORRUPT_MESSAGE, ERR_MESSAGE_TOO_LARGE), result
    assert during.peak < RSS_CEILING, f"broker RSS peaked at {during.peak / 1e6:.0f} MB"
    assert_intact(broker, topic, seeds)
    assert_offsets_for_times(broker.bootstrap, topic, seeds)


def test_truncated_snappy_block_under_the_limit_is_corrupt(broker, bomb_topic):
    """A raw snappy block that claims 48 MiB (under the limit) but is cut short: CORRUPT_MESSAGE."""
    topic, seeds = bomb_topic
    whole = snappy.compress(b"\x01" * (48 * MiB))
    with KafkaConnection(broker.bootstrap) as conn:
        result = conn.produce(topic, 0, build_raw_batch(whole[:2000], 1, attributes=CODEC_IDS["snappy"]))
    assert result.error_code == ERR_CORRUPT_MESSAGE, result
    assert_intact(broker, topic, seeds)


@pytest.mark.broker_args("--max-uncompressed-batch-bytes", "1048576")
@pytest.mark.parametrize("codec", ["zstd", "gzip", "lz4", "snappy", "snappy-xerial"])
def test_lowered_max_uncompressed_batch_bytes(broker, bomb_topic, codec):
    """With a 1 MiB limit a batch inflating to 2 MiB is refused and one inflating to 512 KiB lands."""
    topic, seeds = bomb_topic
    with KafkaConnection(broker.bootstrap) as conn:
        over = conn.produce(topic, 0, bomb_batch(codec, 2 * MiB, key=b"over"))
        assert over.error_code == ERR_MESSAGE_TOO_LARGE, f"{codec} 2 MiB: {over}"
        under = conn.produce(topic, 0, bomb_batch(codec, 512 * 1024, key=b"under"))
        assert (under.error_code, under.base_offset) == (ERR_NONE, len(seeds)), f"{codec} 512 KiB: {under}"
    assert_intact(broker, topic, seeds, extra=[(b"under", bytes(512 * 1024))])
    assert_offsets_for_times(broker.bootstrap, topic, seeds)


# ---------------------------------------------------------------------------------------------
# 2. Batch validation, as Kafka's LogValidator does it

def _good_records() -> bytes:
    return encode_record(0, b"g0", b"good-0") + encode_record(1, b"g1", b"good-1", [(b"h", b"x")])


BAD_BATCHES = {
    # An unknown codec: refused as corrupt, not stored.
    "codec-7": (lambda: build_raw_batch(_good_records(), 2, attributes=7), (ERR_CORRUPT_MESSAGE,)),
    # The gzip flag over plain record bytes: decompression fails.
    "gzip-flag-over-plain-records": (
        lambda: build_raw_batch(_good_records(), 2, attributes=1), (ERR_CORRUPT_MESSAGE,)),
    # The record's length counts one byte more than its fields take (an extra byte follows them).
    "record-length-plus-one": (
        lambda: build_raw_batch(encode_record(0, b"k0", b"v0", trailing=b"\x00") + encode_record(1, b"k1", b"v1"), 2),
        (ERR_INVALID_RECORD,)),
    # The record's length is one byte short of its fields.
    "record-length-minus-one": (
        lambda: build_raw_batch(encode_record(0, b"k0", b"v0", length_delta=-1) + encode_record(1, b"k1", b"v1"), 2),
        (ERR_INVALID_RECORD,)),
    "null-header-key": (
        lambda: build_raw_batch(encode_record(0, b"k0", b"v0") + encode_record(1, b"k1", b"v1", [(None, b"x")]), 2),
        (ERR_INVALID_RECORD,)),
    "null-header-key-in-zstd": (
        lambda: build_raw_batch(zstandard.ZstdCompressor().compress(
            encode_record(0, b"k0", b"v0") + encode_record(1, b"k1", b"v1", [(None, b"x")])), 2, attributes=4),
        (ERR_INVALID_RECORD,)),
    # Declares 3 records (lastOffsetDelta 2) but holds 2.
    "record-count-3-holds-2": (
        lambda: build_raw_batch(_good_records(), 3, last_offset_delta=2), (ERR_INVALID_RECORD, ERR_CORRUPT_MESSAGE)),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_invalid_batch_refused_and_nothing_stored(broker, topic_name, case):
    make, expected = BAD_BATCHES[case]
    create_topic(broker.bootstrap, topic_name, 1)
    seeds = seed(broker.bootstrap, topic_name)
    good = [(b"g0", b"good-0"), (b"g1", b"good-1")]
    with KafkaConnection(broker.bootstrap) as conn:
        result = conn.produce(topic_name, 0, make())
        assert result.error_code in expected, f"{case}: got {result.error_code} ({result.error_message}), want {expected}"
        assert log_end_offset(broker.bootstrap, topic_name) == len(seeds), f"{case}: the refused batch was stored"
        ok = conn.produce(topic_name, 0, build_raw_batch(_good_records(), 2))
        assert (ok.error_code, ok.base_offset) == (ERR_NONE, len(seeds)), ok
    assert_intact(broker, topic_name, seeds, extra=good)


# ---------------------------------------------------------------------------------------------
# 3. KIP-467: keyless records on a compacted topic are named one by one

def _mixed_keys_records() -> bytes:
    return b"".join(encode_record(i, None if i in (1, 3) else b"k%d" % i, b"v%d" % i) for i in range(4))


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_compacted_topic_names_each_keyless_record(broker, topic_name, codec):
    create_topic(broker.bootstrap, topic_name, 1, config={"cleanup.policy": "compact"})
    seeds = seed(broker.bootstrap, topic_name)

    def batch(records: bytes) -> bytes:
        if codec == "zstd":
            return build_raw_batch(zstandard.ZstdCompressor().compress(records), 4, attributes=4)
        return build_raw_batch(records, 4)

    with KafkaConnection(broker.bootstrap) as conn:
        refused = conn.produce(topic_name, 0, batch(_mixed_keys_records()), version=8)
        assert refused.error_code == ERR_INVALID_RECORD, refused
        assert [index for index, _ in refused.record_errors] == [1, 3], refused.record_errors
        assert refused.error_message, "Produce v8 should carry an error message"
        # Produce v7 has no record_errors but refuses the same way.
        old = conn.produce(topic_name, 0, batch(_mixed_keys_records()), version=7)
        assert old.error_code == ERR_INVALID_RECORD, old
        assert log_end_offset(broker.bootstrap, topic_name) == len(seeds)

        keyed = b"".join(encode_record(i, b"k%d" % i, b"v%d" % i) for i in range(4))
        ok = conn.produce(topic_name, 0, batch(keyed), version=8)
        assert (ok.error_code, ok.base_offset, ok.record_errors) == (ERR_NONE, len(seeds), []), ok
    assert_intact(broker, topic_name, seeds, extra=[(b"k%d" % i, b"v%d" % i) for i in range(4)])


def test_confluent_producer_keyless_records_on_compacted_topic(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1, config={"cleanup.policy": "compact"})
    seeds = seed(broker.bootstrap, topic_name)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 100, "acks": "all",
                         "enable.idempotence": False, "message.timeout.ms": 20_000})
    keys = [b"a", None, b"c", None]
    reports: dict[int, KafkaError | None] = {}
    for i, key in enumerate(keys):
        producer.produce(topic_name, key=key, value=b"v%d" % i, partition=0,
                         on_delivery=lambda err, msg, i=i: reports.__setitem__(i, err))
    assert producer.flush(30) == 0
    assert sorted(reports) == [0, 1, 2, 3]
    print("delivery reports:", {i: (e.name() if e else None) for i, e in reports.items()})
    for i in (1, 3):
        assert reports[i] is not None and reports[i].code() == KafkaError.INVALID_RECORD, (i, reports[i])
    for i in (0, 2):
        err = reports[i]
        assert err is None or err.code() in (KafkaError._INVALID_DIFFERENT_RECORD, KafkaError.INVALID_RECORD), (i, err)
    delivered = [(keys[i], b"v%d" % i) for i in (0, 2) if reports[i] is None]
    # Nothing keyless is stored; a keyed record is stored exactly when it was acknowledged.
    assert_intact(broker, topic_name, seeds, extra=delivered)


# ---------------------------------------------------------------------------------------------
# 4. Stalled, idle and too many connections

HUGE_SIZE_PREFIX = b"\x05\xf5\xe1\x00"  # 100,000,000 bytes claimed, under socket.request.max.bytes


def open_socket(broker, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", broker.port), timeout=timeout)


def test_stalled_size_prefixes_do_not_grow_memory(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    seeds = seed(broker.bootstrap, topic_name)
    baseline = rss_bytes(broker)
    socks = []
    try:
        with RssPeak(broker) as during:
            for _ in range(20):
                s = open_socket(broker)
                socks.append(s)
                s.sendall(HUGE_SIZE_PREFIX)
            time.sleep(2)
            # A real client is still served while the 20 stall.
            assert_serving(broker)
        growth = during.peak - baseline
        print(f"RSS baseline {baseline / 1e6:.0f} MB, peak with 20 stalled requests {during.peak / 1e6:.0f} MB")
        assert growth < 50 * 10**6, f"20 stalled 100 MB requests grew broker RSS by {growth / 1e6:.0f} MB"
    finally:
        for s in socks:
            s.close()
    assert_intact(broker, topic_name, seeds)


@pytest.mark.broker_args("--request-read-timeout-ms", "1000")
def test_stalled_request_closed_after_read_timeout(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    seeds = seed(broker.bootstrap, topic_name)
    with open_socket(broker) as s:
        s.sendall(HUGE_SIZE_PREFIX)
        closed, waited = closed_by_peer(s, timeout=10)
    assert closed, "broker kept a stalled request open for 10 s with --request-read-timeout-ms 1000"
    assert 0.5 <= waited <= 3.0, f"stalled request closed after {waited:.1f} s, expected ~1 s"

    # A request that keeps arriving (two halves 0.5 s apart) is served.
    request = frame(request_header_v1(API_API_VERSIONS, 0, 7, "slow-but-steady"))
    with open_socket(broker) as s:
        s.sendall(request[:6])
        time.sleep(0.5)
        s.sendall(request[6:])
        s.settimeout(5)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        assert size > 4
    assert_intact(broker, topic_name, seeds)


@pytest.mark.broker_args("--connections-max-idle-ms", "1500")
def test_idle_connection_closed(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    seeds = seed(broker.bootstrap, topic_name)
    with open_socket(broker) as s:
        closed, waited = closed_by_peer(s, timeout=10)
    assert closed, "idle connection still open after 10 s with --connections-max-idle-ms 1500"
    assert 1.0 <= waited <= 4.0, f"idle connection closed after {waited:.1f} s, expected ~1.5 s"

    # A connection that keeps making requests is not idle.
    with KafkaConnection(broker.bootstrap) as conn:
        for _ in range(8):
            error, _ = conn.api_versions()
            assert error == ERR_NONE
            time.sleep(0.5)
    assert_intact(broker, topic_name, seeds)


@pytest.mark.broker_args("--max-connections-per-ip", "20")
def test_max_connections_per_ip(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    with KafkaConnection(broker.bootstrap) as conn:
        seeded = conn.produce(topic_name, 0, build_raw_batch(_good_records(), 2))
    assert seeded.error_code == ERR_NONE, seeded

    # Twenty served connections; the earlier clients' connections may take a moment to be released.
    conns: list[KafkaConnection] = []
    deadline = time.monotonic() + 15
    try:
        while len(conns) < 20:
            assert time.monotonic() < deadline, f"only {len(conns)} of 20 connections were served"
            try:
                conn = KafkaConnection(broker.bootstrap, timeout=5)
            except ConnectionError:
                time.sleep(0.2)
                continue
            try:
                error, _ = conn.api_versions()
                assert error == ERR_NONE
                conns.append(conn)
            except (ConnectionError, socket.timeout):
                conn.close()
                time.sleep(0.2)

        # The 21st is closed at once.
        start = time.monotonic()
        with pytest.raises(ConnectionError):
            with KafkaConnection(broker.bootstrap, timeout=5) as extra:
                extra.api_versions()
        assert time.monotonic() - start < 3, "the 21st connection was not closed immediately"
        broker.check_alive()
        # The twenty are still served.
        for conn in conns:
            assert conn.api_versions()[0] == ERR_NONE
    finally:
        for conn in conns:
            conn.close()

    # Once they are gone a real client gets in again.
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "message.timeout.ms": 15_000})
    reports: list = []
    producer.produce(topic_name, key=b"after", value=b"after-the-flood", partition=0,
                     on_delivery=lambda err, msg: reports.append(err))
    assert producer.flush(30) == 0
    assert reports == [None], reports
    del producer
    assert_serving(broker)
    assert read_back(broker.bootstrap, topic_name, 3) == [
        (b"g0", b"good-0"), (b"g1", b"good-1"), (b"after", b"after-the-flood")]


# ---------------------------------------------------------------------------------------------
# 5. fetch.max.bytes caps what one Fetch returns

def same_batch(served: bytes, sent: bytes, base_offset: int) -> bool:
    """A served batch is the sent one at `base_offset` (the leader epoch field may differ)."""
    return struct.unpack_from(">q", served)[0] == base_offset and served[8:12] == sent[8:12] and served[16:] == sent[16:]


@pytest.mark.broker_args("--fetch-max-bytes", "1048576")
def test_fetch_max_bytes_caps_an_unbounded_fetch(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 1, config={"max.message.bytes": str(4 * MiB)})
    value = lambda b, i: (b"%04d-%03d|" % (b, i)).ljust(1024, b"x")  # noqa: E731
    batches = [[(b"k%d" % b, value(b, i)) for i in range(100)] for b in range(80)]
    big_value = bytes(range(256)) * (6 * 1024)  # 1.5 MiB, one record
    with KafkaConnection(broker.bootstrap, timeout=30) as conn:
        sent = []
        for b, records in enumerate(batches):
            raw = build_raw_batch(b"".join(encode_record(i, k, v) for i, (k, v) in enumerate(records)), len(records))
            sent.append(raw)
            result = conn.produce(topic_name, 0, raw)
            assert (result.error_code, result.base_offset) == (ERR_NONE, b * 100), result
        big = build_raw_batch(encode_record(0, b"big", big_value), 1)
        result = conn.produce(topic_name, 0, big)
        assert (result.error_code, result.base_offset) == (ERR_NONE, 8000), result

        # max_bytes and partition_max_bytes at 2**31-1: the broker's 1 MiB cap applies.
        error, data = conn.fetch_v4(topic_name, 0, 0, max_wait_ms=100, max_bytes=2**31 - 1)
        assert error == ERR_NONE
        largest = max(len(raw) for raw in sent)
        print(f"unbounded fetch: {len(data)} bytes in {len(split_batches(data))} batches of <= {largest} bytes")
        assert 0 < len(data) <= MiB + largest, f"unbounded fetch returned {len(data)} bytes (cap 1 MiB + one batch)"
        whole = split_batches(data)
        assert same_batch(whole[0], sent[0], 0)

        # A first batch larger than every limit still comes back whole (KIP-74).
        error, data = conn.fetch_v4(topic_name, 0, 8000, max_wait_ms=100, max_bytes=2**31 - 1)
        assert error == ERR_NONE
        assert same_batch(split_batches(data)[0], big, 8000)
        error, data = conn.fetch_v4(topic_name, 0, 0, max_wait_ms=100, max_bytes=100)
        assert error == ERR_NONE
        assert same_batch(split_batches(data)[0], sent[0], 0)

    # A real client still reads everything, one capped fetch after another.
    got = confluent_consume(broker.bootstrap, topic_name, 1, expected=8001, settle_s=0.5, timeout_s=120)
    assert [r.offset for r in got] == list(range(8001))
    assert [r.value for r in got[:100]] == [v for _, v in batches[0]]
    assert got[-1].value == big_value
    broker.check_alive()


# ---------------------------------------------------------------------------------------------
# 6. Authorization (mTLS SSL listener with ACLs, PLAINTEXT listener as User:ANONYMOUS)

def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("anonymous_topic_acl", [False, True], ids=["no-acls", "topic-read-only"])
def test_kip848_consumer_without_group_acl_is_refused(cluster, anonymous_topic_acl):
    topic = unique("kip848")
    admin = cluster.admin()
    create_topics(admin, [topic])
    assert produce_one(cluster.conf("admin"), topic, b"secret") is None
    if anonymous_topic_acl:
        # The topic is readable; only the group is not.
        create_acls(admin, [allow("User:ANONYMOUS", topic, AclOperation.READ),
                            allow("User:ANONYMOUS", topic, AclOperation.DESCRIBE)])

    errors: list[KafkaError] = []
    consumer = Consumer({
        "bootstrap.servers": cluster.broker.bootstrap,
        "group.id": unique("kip848-group"),
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "error_cb": errors.append,
    })
    messages = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                if msg.error():
                    errors.append(msg.error())
                else:
                    messages.append(msg.value())
            if any(e.code() == KafkaError.GROUP_AUTHORIZATION_FAILED for e in errors):
                break
        assignment = consumer.assignment()
    finally:
        consumer.close()
    assert any(e.code() == KafkaError.GROUP_AUTHORIZATION_FAILED for e in errors), [str(e) for e in errors]
    assert assignment == [], assignment
    assert messages == []
    cluster.broker.check_alive()


def test_offset_for_leader_epoch_needs_describe(cluster):
    topic = unique("ofle")
    admin = cluster.admin()
    create_topics(admin, [topic])
    for i in range(3):
        assert produce_one(cluster.conf("admin"), topic, b"r%d" % i) is None
    with KafkaConnection(cluster.broker.bootstrap) as conn:
        assert conn.offset_for_leader_epoch_v3(topic, [0]) == [(ERR_TOPIC_AUTHORIZATION_FAILED, 0, -1, -1)]
        # A topic that does not exist looks the same: existence is not leaked.
        assert conn.offset_for_leader_epoch_v3(unique("missing"), [0]) == [(ERR_TOPIC_AUTHORIZATION_FAILED, 0, -1, -1)]
    create_acls(admin, [allow("User:ANONYMOUS", topic, AclOperation.DESCRIBE)])
    with KafkaConnection(cluster.broker.bootstrap) as conn:
        assert conn.offset_for_leader_epoch_v3(topic, [0]) == [(ERR_NONE, 0, 0, 3)]
    cluster.broker.check_alive()


def test_write_without_create_does_not_auto_create(cluster):
    admin = cluster.admin()
    create_acls(admin, [allow("User:CN=orders-svc", "w-", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED)])
    existing, missing, by_admin = unique("w-exists"), unique("w-new"), unique("w-auto")
    create_topics(admin, [existing])
    # Control: the ACL lets orders-svc write an existing w- topic, and auto-creation is on.
    assert produce_one(cluster.conf("orders"), existing, b"allowed") is None
    assert produce_one(cluster.conf("admin"), by_admin, b"auto-created by a super user") is None

    result: list = []
    producer = Producer({**cluster.conf("orders"), "message.timeout.ms": 8_000, "acks": "all"})
    producer.produce(missing, value=b"must not create", on_delivery=lambda err, msg: result.append(err))
    assert producer.flush(30) == 0
    del producer
    (err,) = result
    print("produce to a topic orders-svc may not create:", err)
    # Kafka answers the metadata with TOPIC_AUTHORIZATION_FAILED; UNKNOWN_TOPIC_OR_PARTITION or
    # a delivery timeout are as good: what matters is that nothing is created.
    assert err is not None and err.code() in (
        KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._MSG_TIMED_OUT,
        KafkaError.TOPIC_AUTHORIZATION_FAILED), err
    topics = set(admin.list_topics(timeout=TIMEOUT_S).topics)
    assert missing not in topics, "a principal without Create auto-created a topic"
    assert {existing, by_admin} <= topics
    cluster.broker.check_alive()


def test_authorized_operations_are_the_granted_ones(cluster):
    admin = cluster.admin()
    topic = unique("authz-ops")
    create_topics(admin, [topic])
    create_acls(admin, [
        allow("User:CN=billing-svc", topic, AclOperation.READ),
        allow("User:CN=billing-svc", topic, AclOperation.DESCRIBE),
        allow("User:CN=orders-svc", topic, AclOperation.WRITE),
    ])

    def topic_ops(who: str) -> set | None:
        client = cluster.admin(who)  # must outlive the future
        futures = client.describe_topics(TopicCollection([topic]), include_authorized_operations=True,
                                         request_timeout=TIMEOUT_S)
        ops = futures[topic].result(timeout=TIMEOUT_S).authorized_operations
        return None if ops is None else set(ops)

    def cluster_ops(who: str):
        client = cluster.admin(who)
        result = client.describe_cluster(include_authorized_operations=True, request_timeout=TIMEOUT_S)
        return result.result(timeout=TIMEOUT_S).authorized_operations

    assert topic_ops("billing") == {AclOperation.READ, AclOperation.DESCRIBE}
    # WRITE implies DESCRIBE, as in Kafka.
    assert topic_ops("orders") == {AclOperation.WRITE, AclOperation.DESCRIBE}
    super_ops = topic_ops("admin")
    assert super_ops is not None and {AclOperation.READ, AclOperation.WRITE, AclOperation.DELETE,
                                      AclOperation.ALTER, AclOperation.DESCRIBE} <= super_ops, super_ops

    assert cluster_ops("billing") in (None, []), cluster_ops("billing")
    admin_cluster_ops = cluster_ops("admin")
    assert admin_cluster_ops and AclOperation.CREATE in admin_cluster_ops, admin_cluster_ops
    cluster.broker.check_alive()


# ---------------------------------------------------------------------------------------------
# 7. --plaintext false

class SslOnlyBroker(Broker):
    """A broker whose only listener is SSL: start-up waits for the SSL port, not `--listen`."""

    def __init__(self, *args, ready_port: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.ready_port = ready_port

    def start(self) -> None:
        # Broker.start polls self.port for readiness; the command line uses self.bootstrap.
        plaintext_port = self.port
        self.port = self.ready_port
        try:
            super().start()
        finally:
            self.port = plaintext_port


def test_plaintext_false_serves_only_ssl(sluice_bin, tmp_path, request):
    pki = Pki(tmp_path / "pki", "sluice-test-ca")
    server = pki.issue("server", [cn("localhost")], server=True)
    client = pki.issue("client", [cn("client")])
    ssl_port = free_port()
    args = [
        "--plaintext", "false",
        "--ssl-listen", f"127.0.0.1:{ssl_port}", "--ssl-advertised", f"127.0.0.1:{ssl_port}",
        "--ssl-cert", str(server.cert), "--ssl-key", str(server.key), "--ssl-ca", str(pki.ca_path),
        "--ssl-client-auth", "required",
    ]
    broker = SslOnlyBroker(sluice_bin, tmp_path / "data", tmp_path / "broker.log", args, ready_port=ssl_port)
    request.node.sluice_broker = broker
    broker.start()
    try:
        assert not port_accepts(broker.port), "the PLAINTEXT --listen address accepts connections"
        conf = {"bootstrap.servers": f"127.0.0.1:{ssl_port}", "security.protocol": "SSL",
                "ssl.ca.location": str(pki.ca_path), "ssl.certificate.location": str(client.cert),
                "ssl.key.location": str(client.key), "socket.timeout.ms": 10_000}
        topic = unique("ssl-only")
        assert produce_one(conf, topic, b"over-tls") is None
        consumer = Consumer({**conf, "group.id": unique("g"), "auto.offset.reset": "earliest"})
        try:
            consumer.assign([TopicPartition(topic, 0, 0)])
            msg = None
            deadline = time.monotonic() + 20
            while msg is None and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
            assert msg is not None and msg.error() is None and msg.value() == b"over-tls", msg
        finally:
            consumer.close()
        plain = AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 2000})
        with pytest.raises(KafkaException):
            plain.list_topics(timeout=3)
        del plain
        assert not port_accepts(broker.port)
        broker.check_alive()
    finally:
        gc.collect()  # no client left to reconnect to a stopped broker
        code = broker.stop()
    assert code == 0, f"broker exited with code {code} on SIGTERM"
    assert "panicked at" not in broker.log_text()


def test_plaintext_false_without_ssl_listener_refuses_to_start(sluice_bin, tmp_path, request):
    broker = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log", ["--plaintext", "false"])
    request.node.sluice_broker = broker
    try:
        with pytest.raises(RuntimeError, match="no listener") as refused:
            broker.start()
        assert "exited with code" in str(refused.value)
        assert broker.proc is not None and broker.proc.returncode not in (None, 0)
    finally:
        if broker.running():
            broker.kill9()


ERR_KAFKA_STORAGE_ERROR = 56


@pytest.mark.broker_args("--segment-index-bytes", "65536")
def test_full_disk_refuses_writes_loses_nothing_and_logs_the_path(broker, topic_name):
    """Files that cannot grow (a file-size limit, which fails writes with EFBIG exactly where a
    full disk fails them with ENOSPC): produce gets KAFKA_STORAGE_ERROR, the operator gets a WARN
    naming the file, every acknowledged record stays readable, and the broker keeps serving."""
    create_topic(broker.bootstrap, topic_name, 1)
    broker.stop()
    broker.file_size_limit = 2 * 1024 * 1024
    broker.start()
    value = b"x" * 1000
    acknowledged = 0
    error = ERR_NONE
    batch = bytes(build_batch([(None, value)] * 10))
    with KafkaConnection(broker.bootstrap) as conn:
        for _ in range(4000):
            result = conn.produce(topic_name, 0, batch)
            error = result.error_code
            if error != ERR_NONE:
                break
            acknowledged += 10
        assert error == ERR_KAFKA_STORAGE_ERROR, f"expected a storage error, got {error}"
        assert 1000 <= acknowledged < 2100
        # Still refused: the failed write was cut back, so the file is exactly as full as before.
        assert conn.produce(topic_name, 0, batch).error_code == ERR_KAFKA_STORAGE_ERROR
        error, end = conn.list_offsets_v2(topic_name, 0)
        assert (error, end) == (ERR_NONE, acknowledged)
    assert_serving(broker)
    log = broker.log_text()
    warnings = [line for line in log.splitlines() if "WARN" in line and "storage error" in line]
    assert warnings, log[-3000:]
    assert any(f"{topic_name}-0" in line and ".log" in line for line in warnings), warnings[:3]
    # Every acknowledged record reads back, in order.
    got = confluent_consume(broker.bootstrap, topic_name, 1, acknowledged, timeout_s=60)
    assert len(got) == acknowledged
    # Room again (limit lifted): the partition takes writes where it left off.
    broker.stop()
    broker.file_size_limit = None
    broker.start()
    with KafkaConnection(broker.bootstrap) as conn:
        result = conn.produce(topic_name, 0, bytes(build_batch([(None, b"after")])))
        assert (result.error_code, result.base_offset) == (ERR_NONE, acknowledged)
