"""Hand-rolled Kafka wire protocol for the few requests the clients can't be made to send.

The real clients refuse to send a corrupt or oversized batch, or a garbage frame, so the bad-input
tests speak the protocol directly; the transaction tests read the last stable offset and the
aborted-transaction list that clients consume silently; the SASL tests drive the handshake by hand
to see session lifetimes and error codes. Only non-flexible versions are used (ApiVersions v0-v2,
Metadata v1, Produce v3-v8, Fetch v4 and v7, ListOffsets v2, InitProducerId v0-v1, SaslHandshake
v0-v1, SaslAuthenticate v0-v1), which keeps the codec to plain big-endian structs.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

import crc32c

from kafka.record.default_records import DefaultRecordBatchBuilder

API_PRODUCE = 0
API_FETCH = 1
API_LIST_OFFSETS = 2
API_METADATA = 3
API_SASL_HANDSHAKE = 17
API_API_VERSIONS = 18
API_INIT_PRODUCER_ID = 22
API_OFFSET_FOR_LEADER_EPOCH = 23
API_SASL_AUTHENTICATE = 36

ERR_NONE = 0
ERR_CORRUPT_MESSAGE = 2
ERR_MESSAGE_TOO_LARGE = 10
ERR_TOPIC_AUTHORIZATION_FAILED = 29
ERR_GROUP_AUTHORIZATION_FAILED = 30
ERR_UNSUPPORTED_SASL_MECHANISM = 33
ERR_UNSUPPORTED_VERSION = 35
ERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45
ERR_INVALID_PRODUCER_EPOCH = 47
ERR_INVALID_TXN_STATE = 48
ERR_INVALID_TRANSACTION_TIMEOUT = 50
ERR_SASL_AUTHENTICATION_FAILED = 58
ERR_INVALID_RECORD = 87
ERR_UNSTABLE_OFFSET_COMMIT = 88
ERR_PRODUCER_FENCED = 90
ERR_TRANSACTIONAL_ID_NOT_FOUND = 105

# Fetch and ListOffsets isolation levels.
READ_UNCOMMITTED = 0
READ_COMMITTED = 1


class Reader:
    """Cursor over a response body; raises ValueError when the body is shorter than the schema."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"response truncated at byte {self.pos} reading {fmt}")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def int16(self) -> int:
        return self._take(">h")

    def int32(self) -> int:
        return self._take(">i")

    def int64(self) -> int:
        return self._take(">q")

    def nullable_string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.decode()

    def string(self) -> str:
        value = self.nullable_string()
        if value is None:
            raise ValueError("non-nullable string was null")
        return value

    def nullable_bytes(self) -> bytes | None:
        length = self.int32()
        if length < 0:
            return None
        if self.pos + length > len(self.data):
            raise ValueError(f"response truncated at byte {self.pos} reading {length} bytes")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw

    def array(self, item):
        count = self.int32()
        return [item(self) for _ in range(max(count, 0))]


def nullable_string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def nullable_bytes(value: bytes | None) -> bytes:
    if value is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(value)) + bytes(value)


def frame(payload: bytes) -> bytes:
    """Size-prefixes a request the way every Kafka request travels on the wire."""
    return struct.pack(">i", len(payload)) + payload


def request_header_v1(api_key: int, version: int, correlation_id: int, client_id: str) -> bytes:
    return struct.pack(">hhi", api_key, version, correlation_id) + nullable_string(client_id)


@dataclass(frozen=True)
class SaslAuthenticateResult:
    """A SaslAuthenticate response; session_lifetime_ms is None for v0, which lacks it."""

    error_code: int
    error_message: str | None
    auth_bytes: bytes
    session_lifetime_ms: int | None


@dataclass
class ProducePartitionResult:
    """One partition's answer to a Produce request."""

    topic: str
    partition: int
    error_code: int
    base_offset: int
    # Produce v8+ only (KIP-467): (batch_index, message) of each refused record, and the
    # partition's error message.
    record_errors: list[tuple[int, str | None]] = field(default_factory=list)
    error_message: str | None = None


@dataclass
class FetchPartition:
    """One partition of a Fetch v4 response, with the transaction fields clients use silently."""

    error_code: int
    high_watermark: int
    last_stable_offset: int
    aborted_transactions: list[tuple[int, int]]  # (producer_id, first_offset)
    records: bytes


class KafkaConnection:
    """A blocking connection that sends requests and reads their responses in order."""

    def __init__(self, bootstrap: str, timeout: float = 10.0):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exact(self, size: int) -> bytes:
        buf = bytearray()
        while len(buf) < size:
            chunk = self.sock.recv(size - len(buf))
            if not chunk:
                raise ConnectionError(f"broker closed the connection after {len(buf)}/{size} bytes")
            buf.extend(chunk)
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(size)

    def request(self, api_key: int, version: int, body: bytes) -> Reader:
        """Sends one request and returns a Reader positioned after the response header."""
        self.correlation_id += 1
        cid = self.correlation_id
        self.send_raw(frame(request_header_v1(api_key, version, cid, "sluice-compat") + body))
        resp = Reader(self.recv_frame())
        got = resp.int32()
        if got != cid:
            raise AssertionError(f"correlation id mismatch: sent {cid}, got {got}")
        return resp

    def api_versions(self, version: int = 0) -> tuple[int, dict[int, tuple[int, int]]]:
        """Returns (error_code, {api_key: (min, max)}) from an ApiVersions v0-v2 request."""
        resp = self.request(API_API_VERSIONS, version, b"")
        error = resp.int16()
        keys = resp.array(lambda r: (r.int16(), r.int16(), r.int16()))
        return error, {k: (lo, hi) for k, lo, hi in keys}

    def metadata_v1(self) -> list[tuple[int, str, int]]:
        """Metadata v1 for all topics; returns the brokers listed, as (node_id, host, port)."""
        resp = self.request(API_METADATA, 1, struct.pack(">i", -1))
        return resp.array(lambda r: (r.int32(), r.string(), r.int32(), r.nullable_string())[:3])

    def produce_version(self) -> int:
        """Picks a non-flexible Produce version (3..8) the broker advertises."""
        error, keys = self.api_versions()
        if error != ERR_NONE or API_PRODUCE not in keys:
            raise AssertionError(f"broker does not advertise Produce (error {error}, keys {keys})")
        lo, hi = keys[API_PRODUCE]
        version = min(hi, 8)
        if version < max(lo, 3):
            raise AssertionError(f"broker Produce range {lo}..{hi} has no version in 3..8")
        return version

    def produce(
        self,
        topic: str,
        partition: int,
        batch: bytes,
        acks: int = -1,
        version: int | None = None,
        timeout_ms: int = 10_000,
    ) -> ProducePartitionResult:
        """Sends one record batch to one partition and returns that partition's result."""
        if version is None:
            version = self.produce_version()
        body = (
            nullable_string(None)
            + struct.pack(">hi", acks, timeout_ms)
            + struct.pack(">i", 1)
            + nullable_string(topic)
            + struct.pack(">i", 1)
            + struct.pack(">i", partition)
            + nullable_bytes(batch)
        )
        resp = self.request(API_PRODUCE, version, body)

        def read_partition(r: Reader, name: str) -> ProducePartitionResult:
            index = r.int32()
            error = r.int16()
            base_offset = r.int64()
            if version >= 2:
                r.int64()  # log_append_time_ms
            if version >= 5:
                r.int64()  # log_start_offset
            record_errors: list[tuple[int, str | None]] = []
            message = None
            if version >= 8:
                record_errors = r.array(lambda rr: (rr.int32(), rr.nullable_string()))
                message = r.nullable_string()
            return ProducePartitionResult(name, index, error, base_offset, record_errors, message)

        def read_topic(r: Reader) -> list[ProducePartitionResult]:
            name = r.string()
            return r.array(lambda rr: read_partition(rr, name))

        results = [p for t in resp.array(read_topic) for p in t]
        if len(results) != 1:
            raise AssertionError(f"expected one partition result, got {results}")
        return results[0]

    def fetch_v4(self, topic: str, partition: int, offset: int, max_wait_ms: int = 500,
                 max_bytes: int = 1 << 20) -> tuple[int, bytes]:
        """Fetch v4 of one partition; returns (error_code, raw record-batch bytes as served)."""
        result = self.fetch_v4_partition(topic, partition, offset, max_wait_ms=max_wait_ms, max_bytes=max_bytes)
        return result.error_code, result.records

    def fetch_v4_partition(self, topic: str, partition: int, offset: int, isolation_level: int = READ_UNCOMMITTED,
                           max_wait_ms: int = 500, max_bytes: int = 1 << 20) -> FetchPartition:
        """Fetch v4 of one partition at the given isolation level, with every field of the answer."""
        _, keys = self.api_versions()
        lo, hi = keys.get(API_FETCH, (0, -1))
        if not lo <= 4 <= hi:
            raise AssertionError(f"broker Fetch range {lo}..{hi} lacks v4")
        body = (
            struct.pack(">iiiib", -1, max_wait_ms, 1, max_bytes, isolation_level)
            + struct.pack(">i", 1) + nullable_string(topic)
            + struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, max_bytes)
        )
        resp = self.request(API_FETCH, 4, body)
        resp.int32()  # throttle_time_ms

        def read_partition(r: Reader) -> FetchPartition:
            r.int32()  # partition index
            error = r.int16()
            high_watermark = r.int64()
            last_stable_offset = r.int64()
            aborted = r.array(lambda rr: (rr.int64(), rr.int64()))
            size = r.int32()
            records = b"" if size < 0 else r.data[r.pos : r.pos + size]
            r.pos += max(size, 0)
            return FetchPartition(error, high_watermark, last_stable_offset, aborted, records)

        topics = resp.array(lambda r: (r.string(), r.array(read_partition)))
        if len(topics) != 1 or len(topics[0][1]) != 1:
            raise AssertionError(f"expected one partition in the fetch response, got {topics}")
        return topics[0][1][0]

    def fetch_v7_session(
        self,
        session_id: int,
        epoch: int,
        partitions: dict[tuple[str, int], int],
        forgotten: list[tuple[str, int]] = (),
        max_wait_ms: int = 100,
        min_bytes: int = 1,
    ) -> tuple[int, int, dict[tuple[str, int], FetchPartition]]:
        """Fetch v7 (KIP-227 sessions): sends `partitions` ({(topic, partition): fetch offset}) and
        `forgotten` with the given session id and epoch.

        Returns (top-level error, session id answered, {(topic, partition): what was listed});
        an incremental response lists only partitions with news.
        """
        def topics_of(items, encode_partition):
            by_topic: dict[str, list] = {}
            for (topic, partition), value in items:
                by_topic.setdefault(topic, []).append(encode_partition(partition, value))
            return struct.pack(">i", len(by_topic)) + b"".join(
                nullable_string(t) + struct.pack(">i", len(ps)) + b"".join(ps) for t, ps in by_topic.items()
            )

        body = (
            struct.pack(">iiiibii", -1, max_wait_ms, min_bytes, 1 << 20, READ_UNCOMMITTED, session_id, epoch)
            + topics_of(partitions.items(), lambda p, offset: struct.pack(">iqqi", p, offset, -1, 1 << 20))
            + topics_of([(tp, None) for tp in forgotten], lambda p, _: struct.pack(">i", p))
        )
        resp = self.request(API_FETCH, 7, body)
        resp.int32()  # throttle_time_ms
        error = resp.int16()
        answered_session = resp.int32()

        def read_partition(r: Reader) -> tuple[int, FetchPartition]:
            index = r.int32()
            error = r.int16()
            high_watermark = r.int64()
            last_stable_offset = r.int64()
            r.int64()  # log start offset
            aborted = r.array(lambda rr: (rr.int64(), rr.int64()))
            size = r.int32()
            records = b"" if size < 0 else r.data[r.pos : r.pos + size]
            r.pos += max(size, 0)
            return index, FetchPartition(error, high_watermark, last_stable_offset, aborted, records)

        listed = {}
        for topic, parts in resp.array(lambda r: (r.string(), r.array(read_partition))):
            for index, partition in parts:
                listed[(topic, index)] = partition
        return error, answered_session, listed

    def list_offsets_v2(self, topic: str, partition: int, timestamp: int = -1,
                        isolation_level: int = READ_UNCOMMITTED) -> tuple[int, int]:
        """ListOffsets v2 of one partition; returns (error_code, offset).

        timestamp -1 asks for the end: the high watermark when reading uncommitted, the last
        stable offset when reading committed; -2 asks for the log start.
        """
        body = (
            struct.pack(">ib", -1, isolation_level)
            + struct.pack(">i", 1) + nullable_string(topic)
            + struct.pack(">i", 1) + struct.pack(">iq", partition, timestamp)
        )
        resp = self.request(API_LIST_OFFSETS, 2, body)
        resp.int32()  # throttle_time_ms
        topics = resp.array(
            lambda r: (r.string(), r.array(lambda rr: (rr.int32(), rr.int16(), rr.int64(), rr.int64())))
        )
        if len(topics) != 1 or len(topics[0][1]) != 1:
            raise AssertionError(f"expected one partition in the ListOffsets response, got {topics}")
        _, error, _, found = topics[0][1][0]
        return error, found

    def offset_for_leader_epoch_v3(
        self, topic: str, partitions: list[int], leader_epoch: int = 0, current_leader_epoch: int = -1
    ) -> list[tuple[int, int, int, int]]:
        """OffsetForLeaderEpoch v3 (non-flexible) for one topic, as a consumer sends it.

        Returns [(error_code, partition, leader_epoch, end_offset)] in response order.
        """
        body = (
            struct.pack(">i", -1)  # replica_id: a consumer
            + struct.pack(">i", 1) + nullable_string(topic)
            + struct.pack(">i", len(partitions))
            + b"".join(struct.pack(">iii", p, current_leader_epoch, leader_epoch) for p in partitions)
        )
        resp = self.request(API_OFFSET_FOR_LEADER_EPOCH, 3, body)
        resp.int32()  # throttle_time_ms
        topics = resp.array(lambda r: (r.string(), r.array(lambda rr: (rr.int16(), rr.int32(), rr.int32(), rr.int64()))))
        if len(topics) != 1 or topics[0][0] != topic:
            raise AssertionError(f"expected one topic {topic!r} in the response, got {topics}")
        return topics[0][1]

    def init_producer_id(self) -> tuple[int, int, int]:
        """Returns (error_code, producer_id, producer_epoch) for a non-transactional producer."""
        resp = self.request(API_INIT_PRODUCER_ID, 0, nullable_string(None) + struct.pack(">i", 60_000))
        resp.int32()  # throttle_time_ms
        return resp.int16(), resp.int64(), resp.int16()


def sasl_handshake(conn: KafkaConnection, mechanism: str, version: int = 1) -> tuple[int, list[str]]:
    """SaslHandshake v0/v1 (KIP-43); returns (error_code, the mechanisms the broker enables).

    Version 1 means the exchange that follows travels in SaslAuthenticate requests (KIP-152)."""
    resp = conn.request(API_SASL_HANDSHAKE, version, nullable_string(mechanism))
    error = resp.int16()
    return error, resp.array(lambda r: r.string())


def sasl_authenticate(conn: KafkaConnection, auth_bytes: bytes, version: int = 1) -> SaslAuthenticateResult:
    """One SaslAuthenticate v0/v1 round (non-flexible: auth_bytes as int32-length BYTES).

    The v1 response adds session_lifetime_ms (KIP-368): how long the session lasts before the
    client must re-authenticate, 0 for no limit."""
    resp = conn.request(API_SASL_AUTHENTICATE, version, nullable_bytes(auth_bytes))
    error = resp.int16()
    message = resp.nullable_string()
    data = resp.nullable_bytes() or b""
    lifetime = resp.int64() if version >= 1 else None
    return SaslAuthenticateResult(error, message, data, lifetime)


API_DESCRIBE_CONFIGS = 32
API_INCREMENTAL_ALTER_CONFIGS = 44
RESOURCE_BROKER = 4


def incremental_alter_configs_v0(conn: KafkaConnection, resource_type: int, resource_name: str,
                                 changes: list[tuple[str, int, str | None]]) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v0 for one resource; `changes` are (name, op, value) with op 0 SET,
    1 DELETE. Returns (error_code, error_message). The Python clients cannot name the
    cluster-wide default broker resource (the empty name), which this can."""
    configs = b"".join(nullable_string(name) + struct.pack(">b", op) + nullable_string(value)
                       for name, op, value in changes)
    body = (struct.pack(">i", 1) + struct.pack(">b", resource_type) + nullable_string(resource_name)
            + struct.pack(">i", len(changes)) + configs + struct.pack(">b", 0))
    r = conn.request(API_INCREMENTAL_ALTER_CONFIGS, 0, body)
    r.int32()  # throttle_time_ms
    (result,) = r.array(lambda r: (r.int16(), r.nullable_string(), r._take(">b"), r.string()))
    return result[0], result[1]


def describe_configs_v1(conn: KafkaConnection, resource_type: int, resource_name: str) -> dict[str, tuple[str, int]]:
    """DescribeConfigs v1 of one resource, all keys, no synonyms: {name: (value, source)}."""
    body = (struct.pack(">i", 1) + struct.pack(">b", resource_type) + nullable_string(resource_name)
            + struct.pack(">i", -1) + struct.pack(">b", 0))
    r = conn.request(API_DESCRIBE_CONFIGS, 1, body)
    r.int32()  # throttle_time_ms

    def entry(r: Reader) -> tuple[str, str, int]:
        name, value = r.string(), r.nullable_string()
        _read_only, source, _sensitive = r._take(">b"), r._take(">b"), r._take(">b")
        r.array(lambda r: (r.string(), r.nullable_string(), r._take(">b")))  # synonyms
        return name, value, source

    def result(r: Reader):
        error, message = r.int16(), r.nullable_string()
        r._take(">b")
        r.string()
        return error, message, r.array(entry)

    ((error, message, entries),) = r.array(result)
    assert error == 0, (error, message)
    return {name: (value, source) for name, value, source in entries}


def plain_message(user: str, password: str, authzid: str = "") -> bytes:
    """A SASL/PLAIN initial response (RFC 4616): authzid NUL authcid NUL password."""
    return f"{authzid}\0{user}\0{password}".encode()


def sasl_authenticate_plain(conn: KafkaConnection, user: str, password: str, version: int = 1,
                            authzid: str = "") -> SaslAuthenticateResult:
    """The whole PLAIN exchange after a SaslHandshake: one SaslAuthenticate round."""
    return sasl_authenticate(conn, plain_message(user, password, authzid), version)


def closed_by_peer(sock: socket.socket, timeout: float) -> tuple[bool, float]:
    """Waits up to `timeout` for the broker to close `sock`; returns (closed, seconds waited).

    Bytes arriving instead (a response) count as not closed."""
    start = time.monotonic()
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
        closed = data == b""
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    except socket.timeout:
        closed = False
    return closed, time.monotonic() - start


def build_batch(
    records: list[tuple[bytes | None, bytes | None]],
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    compression_type: int = 0,
) -> bytearray:
    """Builds a v2 record batch with kafka-python's builder (an independent implementation)."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression_type,
        is_transactional=0,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        batch_size=64 * 1024 * 1024,
    )
    for offset, (key, value) in enumerate(records):
        if builder.append(offset, timestamp=None, key=key, value=value, headers=[]) is None:
            raise AssertionError("record did not fit the batch builder")
    return builder.build()


def split_batches(data: bytes) -> list[bytes]:
    """Splits fetched bytes into whole v2 record batches (a trailing partial batch is dropped)."""
    batches = []
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">i", data, pos + 8)
        end = pos + 12 + length
        if end > len(data):
            break
        batches.append(data[pos:end])
        pos = end
    return batches


@dataclass(frozen=True)
class BatchHeader:
    """The fixed fields of a v2 record batch header."""

    base_offset: int
    attributes: int
    last_offset_delta: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & 0x10)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & 0x20)


def batch_header(batch: bytes) -> BatchHeader:
    """Parses the header of one v2 batch as split_batches returns it."""
    (base_offset,) = struct.unpack_from(">q", batch, 0)
    attributes, last_delta, _base_ts, _max_ts, pid, epoch, base_seq, count = struct.unpack_from(
        ">hiqqqhii", batch, 21
    )
    return BatchHeader(base_offset, attributes, last_delta, pid, epoch, base_seq, count)


def batch_codec(batch: bytes) -> int:
    """The compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd) from a batch's attributes."""
    (attributes,) = struct.unpack_from(">h", batch, 21)
    return attributes & 0x7


# ---------------------------------------------------------------------------------------------
# Hand-built v2 records and batches, for batches no client library will produce (lying lengths,
# null header keys, unknown codecs, decompression bombs).

BATCH_HEADER_SIZE = 61


def uvarint(value: int) -> bytes:
    """An unsigned LEB128 varint."""
    if value < 0:
        raise ValueError("uvarint of a negative number")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(value: int) -> bytes:
    """A zigzag varint/varlong as used inside v2 records."""
    return uvarint((value << 1) ^ (value >> 63))


def varbytes(value: bytes | None) -> bytes:
    """A varint-length-prefixed byte string; None is length -1."""
    if value is None:
        return varint(-1)
    return varint(len(value)) + bytes(value)


def encode_record(
    offset_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[bytes | None, bytes | None]] | tuple = (),
    timestamp_delta: int = 0,
    length_delta: int = 0,
    trailing: bytes = b"",
) -> bytes:
    """One v2 record; `length_delta` makes its length prefix lie, `trailing` adds body bytes."""
    body = (
        b"\x00"  # attributes
        + varint(timestamp_delta)
        + varint(offset_delta)
        + varbytes(key)
        + varbytes(value)
        + varint(len(headers))
        + b"".join(varbytes(k) + varbytes(v) for k, v in headers)
        + trailing
    )
    return varint(len(body) + length_delta) + body


def record_around_value(offset_delta: int, value_len: int, key: bytes | None = None) -> tuple[bytes, bytes]:
    """(prefix, suffix) of a record whose value is `value_len` bytes that go in between.

    Lets a caller stream a huge value (e.g. zeros into a compressor) without holding it.
    """
    head = b"\x00" + varint(0) + varint(offset_delta) + varbytes(key) + varint(value_len)
    tail = varint(0)  # no headers
    return varint(len(head) + value_len + len(tail)) + head, tail


def build_raw_batch(
    payload: bytes,
    record_count: int,
    attributes: int = 0,
    last_offset_delta: int | None = None,
    base_timestamp: int | None = None,
    max_timestamp: int | None = None,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    base_offset: int = 0,
) -> bytes:
    """A v2 batch around an already encoded (and possibly compressed) records payload.

    The CRC-32C is computed over attributes..end, so the batch passes the CRC check whatever
    the payload holds. Timestamps default to now, so retention never deletes the batch early.
    """
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    if last_offset_delta is None:
        last_offset_delta = record_count - 1
    if max_timestamp is None:
        max_timestamp = base_timestamp
    after_crc = struct.pack(
        ">hiqqqhii", attributes, last_offset_delta, base_timestamp, max_timestamp,
        producer_id, producer_epoch, base_sequence, record_count,
    ) + payload
    crc = crc32c.crc32c(after_crc)
    batch_length = 4 + 1 + 4 + len(after_crc)  # partitionLeaderEpoch, magic, crc, rest
    return struct.pack(">qiibI", base_offset, batch_length, -1, 2, crc) + after_crc
