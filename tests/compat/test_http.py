"""HTTP ingestion (`sluice http`, Confluent REST Proxy API v2/v3) against a real broker and
registry, driven by curl, raw sockets, headless Chromium and Confluent's own deserializers."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AclOperation, AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from clients import wait_until
from conftest import SHUTDOWN_TIMEOUT_S, _die_with_parent, free_port, port_accepts
from registry_fixture import registry  # noqa: F401  (fixture)
from test_sasl import ADMIN_PASSWORD, PASSWORD, client_conf, create_topic_as, create_user, plaintext, restart_with
from test_sasl import sasl  # noqa: F401  (fixture)
from test_tls_acl import allow, create_acls

V2 = "application/vnd.kafka.v2+json"
TIMEOUT_S = 30


class Proxy:
    """One `sluice http` process."""

    def __init__(self, binary: str, bootstrap: str, registry_url: str, log_path: Path, extra: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        cmd = [binary, "http", "--listen", f"127.0.0.1:{self.port}", "--bootstrap-server", bootstrap,
               "--registry-url", registry_url, *extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, preexec_fn=_die_with_parent)
        wait_until(lambda: port_accepts(self.port) or self.proc.poll() is not None, TIMEOUT_S, "the proxy")
        assert self.proc.poll() is None, log_path.read_text()[-4000:]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        log = self.log_path.read_text(errors="replace")
        assert code == 0, f"the proxy exited with {code}:\n{log[-4000:]}"
        assert "panicked at" not in log

    def call(self, method: str, path: str, body: bytes | dict | list | None = None,
             content_type: str | None = None, headers: dict | None = None) -> tuple[int, object, object]:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=dict(headers or {}))
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                raw = resp.read()
                return resp.status, resp.headers, json.loads(raw) if raw.strip() else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, e.headers, json.loads(raw) if raw.strip() else None


@pytest.fixture
def proxy_factory(sluice_bin, broker, registry, tmp_path):  # noqa: F811
    started: list[Proxy] = []

    def start(*extra: str) -> Proxy:
        p = Proxy(sluice_bin, broker.bootstrap, registry.url, tmp_path / f"http{len(started)}.log", list(extra))
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def proxy(proxy_factory):
    return proxy_factory()


def create_topic(broker, name: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(TIMEOUT_S)


def consume_all(broker, topic: str, count: int) -> list:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    consumer.close()
    assert len(got) == count, f"expected {count} records in {topic}, found {len(got)}"
    return sorted(got, key=lambda m: (m.partition(), m.offset()))


def curl(url: str, *args: str) -> tuple[int, object]:
    out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args, url], capture_output=True, check=True,
                         timeout=TIMEOUT_S).stdout.decode()
    body, _, status = out.rpartition("\n")
    return int(status), json.loads(body) if body.strip() else None


# ---------------------------------------------------------------------------------------------
# v2 produce: Confluent's documentation examples, replayed with curl


def test_v2_documented_produce_examples(proxy, broker, registry, topic_name):  # noqa: F811
    create_topic(broker, topic_name)
    url = f"{proxy.url}/topics/{topic_name}"
    accept = ["-H", "Accept: application/vnd.kafka.v2+json, application/vnd.kafka+json, application/json"]
    status, binary = curl(url, "-X", "POST", "-H", "Content-Type: application/vnd.kafka.binary.v2+json", *accept,
                          "--data", '{"records":[{"key":"a2V5","value":"Y29uZmx1ZW50"},'
                                    '{"value":"a2Fma2E=","partition":1},{"value":"bG9ncw=="}]}')
    assert status == 200, binary
    assert binary["key_schema_id"] is None and binary["value_schema_id"] is None
    assert [set(o) for o in binary["offsets"]] == [{"partition", "offset", "error_code", "error"}] * 3
    assert binary["offsets"][1]["partition"] == 1
    assert all(o["error_code"] is None for o in binary["offsets"])

    status, js = curl(url, "-X", "POST", "-H", "Content-Type: application/vnd.kafka.json.v2+json", *accept,
                      "--data", '{"records":[{"key":"somekey","value":{"foo":"bar"}},'
                                '{"value":["foo","bar"],"partition":1},{"value":53.5}]}')
    assert status == 200, js

    status, avro = curl(url, "-X", "POST", "-H", "Content-Type: application/vnd.kafka.avro.v2+json", *accept,
                        "--data", '{"value_schema":"{\\"name\\":\\"int\\",\\"type\\": \\"int\\"}",'
                                  '"records":[{"value":12},{"value":24,"partition":1}]}')
    assert status == 200, avro
    assert isinstance(avro["value_schema_id"], int)
    assert avro["offsets"][1]["partition"] == 1

    status, part = curl(f"{url}/partitions/2", "-X", "POST", "-H",
                        "Content-Type: application/vnd.kafka.binary.v2+json",
                        "--data", '{"records":[{"key":"a2V5","value":"Y29uZmx1ZW50"},{"value":"a2Fma2E="}]}')
    assert status == 200 and {o["partition"] for o in part["offsets"]} == {2}

    records = consume_all(broker, topic_name, 10)
    by_value = {m.value(): m for m in records}
    assert by_value[b"confluent"].key() == b"key"
    assert json.loads(by_value[b'{"foo":"bar"}'].key()) == "somekey"
    # Keys land where Java clients would put them (murmur2), like Confluent's proxy.
    headers = dict(by_value[b"kafka"].headers())
    assert headers["service_id"] == b"sluice-http"
    assert int(headers["event_time"]) > 1_600_000_000_000
    assert uuid.UUID(headers["event_id"].decode()).version == 7
    # Avro values are in Confluent's wire format: Confluent's deserializer reads them.
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    framed = [m for m in records if m.value()[:1] == b"\x00"]
    assert sorted(deserializer(m.value(), ctx) for m in framed) == [12, 24]


def test_v2_errors_are_the_documented_ones(proxy_factory, broker, topic_name):
    proxy = proxy_factory("--http-max-body-bytes", "65536")
    create_topic(broker, topic_name, 2)
    json_type = "application/vnd.kafka.json.v2+json"
    path = f"/topics/{topic_name}"
    one = {"records": [{"value": 1}]}
    assert proxy.call("POST", path, one, "application/json")[::2] == (
        415, {"error_code": 415, "message": "HTTP 415 Unsupported Media Type"})
    status, _, body = proxy.call("POST", "/topics/no-such-topic", one, json_type)
    assert (status, body["error_code"]) == (404, 40401)
    status, _, body = proxy.call("POST", path, {"records": [{"value": 1, "partition": 7}]}, json_type)
    assert (status, body["error_code"]) == (404, 40402)
    status, _, body = proxy.call("POST", path, {"records": [{"value": "x" * 70_000}]}, json_type)
    assert (status, body["error_code"]) == (413, 41301)
    status, _, body = proxy.call("POST", path, b"{not json", json_type)
    assert status == 400 and "not JSON" in body["message"]
    status, _, body = proxy.call("POST", path, {"records": []}, json_type)
    assert status == 422
    avro_type = "application/vnd.kafka.avro.v2+json"
    status, _, body = proxy.call("POST", path, one, avro_type)
    assert (status, body["error_code"]) == (422, 42202)
    schema = json.dumps({"type": "record", "name": "Click", "fields": [{"name": "page", "type": "string"}]})
    status, _, body = proxy.call("POST", path, {"value_schema": schema, "records": [{"value": {"page": 5}}]},
                                 avro_type)
    assert (status, body["error_code"]) == (422, 42203), body
    assert "page" in body["message"]
    # gzip bodies are taken; one that inflates past the limit is refused without inflating it all.
    small = gzip.compress(json.dumps(one).encode())
    status, _, body = proxy.call("POST", path, small, json_type, {"Content-Encoding": "gzip"})
    assert status == 200 and body["offsets"][0]["error_code"] is None
    bomb = gzip.compress(b'{"records":[{"value":"' + b"a" * (50 << 20) + b'"}]}')
    assert len(bomb) < 100_000
    status, _, body = proxy.call("POST", path, bomb, json_type, {"Content-Encoding": "gzip"})
    assert (status, body["error_code"]) == (413, 41301)
    status, _, _ = proxy.call("POST", path, small, json_type, {"Content-Encoding": "br"})
    assert status == 415
    # A malformed path or query gets the same JSON error shape, never axum's plain text.
    status, _, body = proxy.call("POST", f"{path}/partitions/not-a-number", one, json_type)
    assert (status, body["error_code"]) == (404, 404), body
    status, _, body = proxy.call("GET", "/consumers/g/instances/i/records?timeout=soon", None,
                                 "application/vnd.kafka.json.v2+json")
    assert status in (400, 404) and isinstance(body, dict) and "error_code" in body, body
    # Nothing refused reached Kafka: exactly the one gzip record did.
    assert len(consume_all(broker, topic_name, 1)) == 1


# ---------------------------------------------------------------------------------------------
# v3 produce


def cluster_id(proxy) -> str:
    status, _, body = proxy.call("GET", "/v3/clusters")
    assert status == 200, body
    return body["data"][0]["cluster_id"]


def test_v3_produce_single_batch_and_errors(proxy, broker, topic_name):
    create_topic(broker, topic_name, 2)
    cid = cluster_id(proxy)
    path = f"/v3/clusters/{cid}/topics/{topic_name}/records"
    # The example of Confluent's v3 API reference.
    example = {"partition_id": 1, "headers": [{"name": "Header-1", "value": "SGVhZGVyLTE="},
                                              {"name": "Header-2", "value": "SGVhZGVyLTI="}],
               "key": {"type": "BINARY", "data": "Zm9vYmFy"}, "value": {"type": "JSON", "data": {"foo": "bar"}},
               "timestamp": "2021-02-05T19:14:42Z"}
    status, _, body = proxy.call("POST", path, example, "application/json")
    assert status == 200, body
    assert body["error_code"] == 200 and body["cluster_id"] == cid and body["topic_name"] == topic_name
    assert body["partition_id"] == 1 and body["offset"] == 0
    assert body["timestamp"].startswith("2021-02-05T19:14:42")
    assert body["key"] == {"type": "BINARY", "size": 6} and body["value"] == {"type": "JSON", "size": 13}

    status, _, body = proxy.call("POST", f"{path}:batch", {"entries": [
        {"id": "a", "value": {"type": "STRING", "data": "hello"}},
        {"id": "b", "value": {"type": "BINARY", "data": "not base64!"}},
        {"id": "c", "partition_id": 9, "value": {"type": "STRING", "data": "x"}},
    ]}, "application/json")
    assert status == 207, body
    assert [s["id"] for s in body["successes"]] == ["a"]
    assert {f["id"]: f["error_code"] for f in body["failures"]} == {"b": 400, "c": 40402}
    status, _, body = proxy.call("POST", f"{path}:batch", {"entries": [{"id": "a"}, {"id": "a"}]},
                                 "application/json")
    assert (status, body["error_code"]) == (422, 42208)

    assert proxy.call("POST", path, {"value": {"type": "STRING", "data": "x"}}, "text/plain")[0] == 415
    status, _, body = proxy.call("POST", path, b"", "application/json")
    assert (status, body["error_code"]) == (422, 42206)
    status, _, body = proxy.call("POST", f"/v3/clusters/{cid}/topics/nope/records", {"value": None},
                                 "application/json")
    assert status == 404
    assert proxy.call("POST", f"/v3/clusters/other/topics/{topic_name}/records", {}, "application/json")[0] == 404

    records = consume_all(broker, topic_name, 2)
    example_record = next(m for m in records if m.key() == b"foobar")
    assert example_record.timestamp()[1] == 1612552482000
    headers = example_record.headers()
    assert headers[:2] == [("Header-1", b"Header-1"), ("Header-2", b"Header-2")]
    assert {k for k, _ in headers} >= {"service_id", "event_time", "event_id"}


def test_v3_streaming_reports_each_record_as_it_is_delivered(proxy, broker, topic_name):
    """A chunked body stays open; each record's report arrives before the body ends."""
    create_topic(broker, topic_name, 1)
    cid = cluster_id(proxy)
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT_S)
    sock.sendall((f"POST /v3/clusters/{cid}/topics/{topic_name}/records HTTP/1.1\r\nHost: x\r\n"
                  "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode())

    def chunk(data: bytes) -> None:
        sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    reader = sock.makefile("rb")
    status_line = None
    reports = []
    for i in range(5):
        chunk(json.dumps({"value": {"type": "STRING", "data": f"event-{i}"}}).encode())
        if status_line is None:
            status_line = reader.readline()
            assert b" 200 " in status_line, status_line
            while reader.readline() not in (b"\r\n", b""):
                pass
        # The response is chunked too: a size line, then the report ending in \r\n.
        size = int(reader.readline().strip(), 16)
        report = json.loads(reader.read(size))
        reader.readline()
        reports.append(report)
    # One record split across two chunks, then a malformed one that ends the stream.
    chunk(b'{"value": {"type": "STRING", ')
    chunk(b'"data": "split"}}')
    size = int(reader.readline().strip(), 16)
    reports.append(json.loads(reader.read(size)))
    reader.readline()
    chunk(b"][")
    size = int(reader.readline().strip(), 16)
    last = json.loads(reader.read(size))
    sock.close()
    assert [r["offset"] for r in reports] == list(range(6))
    assert all(r["error_code"] == 200 for r in reports)
    assert last["error_code"] == 400
    assert [m.value() for m in consume_all(broker, topic_name, 6)] == [
        *(f"event-{i}".encode() for i in range(5)), b"split"]


def read_through_proxy(proxy, topic: str, fmt: str, count: int) -> list:
    """Records of `topic` read by a v2 consumer instance of format `fmt`."""
    group = f"g-{uuid.uuid4().hex[:6]}"
    status, _, body = proxy.call("POST", f"/consumers/{group}", {"format": fmt, "auto.offset.reset": "earliest"}, V2)
    assert status == 200, body
    base = f"/consumers/{group}/instances/{body['instance_id']}"
    assert proxy.call("POST", f"{base}/subscription", {"topics": [topic]}, V2)[0] == 204
    got: list = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        status, _, records = proxy.call("GET", f"{base}/records?timeout=1000",
                                        headers={"Accept": f"application/vnd.kafka.{fmt}.v2+json"})
        assert status == 200, records
        got += records
    assert proxy.call("DELETE", base)[0] == 204
    return sorted(got, key=lambda r: r["offset"])


def test_v2_jsonschema_and_protobuf_through_the_registry(proxy, broker, registry, topic_name):  # noqa: F811
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer

    js_topic, pb_topic = f"{topic_name}-js", f"{topic_name}-pb"
    create_topic(broker, js_topic, 1)
    create_topic(broker, pb_topic, 1)
    schema = json.dumps({"title": "Click", "type": "object", "properties": {"page": {"type": "string"}},
                         "required": ["page"], "additionalProperties": False})
    js_type = "application/vnd.kafka.jsonschema.v2+json"
    status, _, body = proxy.call("POST", f"/topics/{js_topic}",
                                 {"value_schema": schema, "records": [{"value": {"page": "/home"}}]}, js_type)
    assert status == 200 and isinstance(body["value_schema_id"], int), body
    status, _, bad = proxy.call("POST", f"/topics/{js_topic}", {"value_schema_id": body["value_schema_id"],
                                                                 "records": [{"value": {"page": 1}}]}, js_type)
    assert (status, bad["error_code"]) == (422, 42203), bad
    [m] = consume_all(broker, js_topic, 1)
    assert dict(m.headers())["event_type"] == b"Click"
    deserializer = JSONDeserializer(schema, schema_registry_client=SchemaRegistryClient({"url": registry.url}))
    assert deserializer(m.value(), SerializationContext(js_topic, MessageField.VALUE)) == {"page": "/home"}

    proto = 'syntax = "proto3"; package shop; message Click { string page = 1; int32 count = 2; }'
    status, _, body = proxy.call("POST", f"/topics/{pb_topic}", {"value_schema": proto, "records": [
        {"value": {"page": "/a", "count": 2}}, {"value": {"page": "/b"}}]}, "application/vnd.kafka.protobuf.v2+json")
    assert status == 200, body
    [first, _] = consume_all(broker, pb_topic, 2)
    assert dict(first.headers())["event_type"] == b"shop.Click"
    assert first.value()[:1] == b"\x00" and first.value()[5:6] == b"\x00", "wire format with message index [0]"
    records = read_through_proxy(proxy, pb_topic, "protobuf", 2)
    assert [r["value"] for r in records] == [{"page": "/a", "count": 2}, {"page": "/b"}]
    # A consumer of another format still gets every record, each with the reason it cannot show it.
    records = read_through_proxy(proxy, pb_topic, "json", 2)
    assert all(r["value"] is None and "not JSON" in r["error"] for r in records), records


# ---------------------------------------------------------------------------------------------
# v2 consumers


def test_v2_consumer_instance_round_trip(proxy, broker, topic_name):
    create_topic(broker, topic_name, 2)
    status, _, _ = proxy.call("POST", f"/topics/{topic_name}", {"records": [
        {"key": "aw==", "value": base64.b64encode(f"v{i}".encode()).decode()} for i in range(6)]},
        "application/vnd.kafka.binary.v2+json")
    assert status == 200
    group = f"g-{uuid.uuid4().hex[:6]}"
    status, _, body = proxy.call("POST", f"/consumers/{group}", {
        "name": "c1", "format": "binary", "auto.offset.reset": "earliest", "auto.commit.enable": "false"}, V2)
    assert status == 200 and body == {"instance_id": "c1",
                                      "base_uri": f"{proxy.url}/consumers/{group}/instances/c1"}
    base = f"/consumers/{group}/instances/c1"
    assert proxy.call("POST", f"/consumers/{group}", {"name": "c1"}, V2)[2]["error_code"] == 40902
    assert proxy.call("POST", f"{base}/subscription", {"topics": [topic_name]}, V2)[0] == 204
    assert proxy.call("GET", f"{base}/subscription")[2] == {"topics": [topic_name]}
    accept = {"Accept": "application/vnd.kafka.binary.v2+json"}
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < 6 and time.monotonic() < deadline:
        status, headers, records = proxy.call("GET", f"{base}/records?timeout=1000", headers=accept)
        assert status == 200, records
        got += records
    assert sorted(base64.b64decode(r["value"]) for r in got) == [f"v{i}".encode() for i in range(6)]
    assert set(got[0]) == {"topic", "key", "value", "partition", "offset"}
    status, _, body = proxy.call("GET", f"{base}/records", headers={"Accept": "application/vnd.kafka.json.v2+json"})
    assert (status, body["error_code"]) == (406, 40601)
    last = max(r["offset"] for r in got if r["partition"] == got[0]["partition"])
    assert proxy.call("POST", f"{base}/offsets", {"offsets": [
        {"topic": topic_name, "partition": got[0]["partition"], "offset": last}]}, V2)[0] == 200
    status, _, body = proxy.call("GET", f"{base}/offsets",
                                 {"partitions": [{"topic": topic_name, "partition": got[0]["partition"]}]}, V2)
    assert status == 200 and body["offsets"][0]["offset"] == last + 1
    assert proxy.call("DELETE", base)[0] == 204
    assert proxy.call("GET", f"{base}/records", headers=accept)[2]["error_code"] == 40403

    # Partitions by hand, reading from a chosen position.
    part = got[0]["partition"]
    in_part = sorted(r["offset"] for r in got if r["partition"] == part)
    status, _, body = proxy.call("POST", f"/consumers/{group}", {"name": "c2", "format": "binary"}, V2)
    base = f"/consumers/{group}/instances/c2"
    partitions = {"partitions": [{"topic": topic_name, "partition": part}]}
    assert proxy.call("POST", f"{base}/assignments", partitions, V2)[0] == 204
    assert proxy.call("GET", f"{base}/assignments")[2] == partitions
    status, _, body = proxy.call("POST", f"{base}/subscription", {"topics": [topic_name]}, V2)
    assert (status, body["error_code"]) == (409, 40903)
    assert proxy.call("POST", f"{base}/positions", {"offsets": [
        {"topic": topic_name, "partition": part, "offset": in_part[1]}]}, V2)[0] == 204
    again: list = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(again) < len(in_part) - 1 and time.monotonic() < deadline:
        again += proxy.call("GET", f"{base}/records?timeout=1000", headers=accept)[2]
    assert [r["offset"] for r in again] == in_part[1:]
    assert proxy.call("DELETE", base)[0] == 204


# ---------------------------------------------------------------------------------------------
# API keys, rate limits, metrics


def keys_file(tmp_path: Path) -> Path:
    def sha(s: str) -> str:
        return hashlib.sha256(s.encode()).hexdigest()
    path = tmp_path / "keys.toml"
    path.write_text(f"""
[[keys]]
key = "web"
secret_sha256 = "{sha('web-secret')}"
service_id = "web-frontend"

[[keys]]
key = "slow"
secret_sha256 = "{sha('slow-secret')}"
records_per_second = 0.1
burst = 5.0
""")
    return path


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_api_keys_rate_limits_and_metrics(proxy_factory, broker, topic_name, tmp_path):
    metrics_port = free_port()
    proxy = proxy_factory("--http-keys-file", str(keys_file(tmp_path)),
                          "--http-metrics-listen", f"127.0.0.1:{metrics_port}")
    create_topic(broker, topic_name, 1)
    path = f"/topics/{topic_name}"
    json_type = "application/vnd.kafka.json.v2+json"
    status, headers, body = proxy.call("POST", path, {"records": [{"value": 1}]}, json_type)
    assert (status, body["error_code"]) == (401, 40101)
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert proxy.call("POST", path, {"records": [{"value": 1}]}, json_type, basic("web", "wrong"))[0] == 401
    status, _, body = proxy.call("POST", path, {"records": [{"value": 1}]}, json_type, basic("web", "web-secret"))
    assert status == 200, body
    # The slow key may send its burst, then is told to wait.
    status, _, _ = proxy.call("POST", path, {"records": [{"value": i} for i in range(5)]}, json_type,
                              basic("slow", "slow-secret"))
    assert status == 200
    status, headers, body = proxy.call("POST", path, {"records": [{"value": 9}]}, json_type,
                                       basic("slow", "slow-secret"))
    assert (status, body["error_code"]) == (429, 42901)
    assert int(headers["Retry-After"]) >= 1
    records = consume_all(broker, topic_name, 6)
    assert dict(records[0].headers())["service_id"] == b"web-frontend"
    assert dict(records[1].headers())["service_id"] == b"slow"
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=TIMEOUT_S) as resp:
        text = resp.read().decode()
    assert f'sluice_http_records_produced_total{{topic="{topic_name}"}} 6' in text
    assert 'sluice_http_requests_total{route="/topics/{topic}",code="429"} 1' in text
    assert 'sluice_http_requests_total{route="/topics/{topic}",code="401"} 2' in text


# ---------------------------------------------------------------------------------------------
# Browsers


PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
async function send() {
  try {
    const r = await fetch("%(proxy)s/topics/%(topic)s", {
      method: "POST",
      headers: {"Content-Type": "application/vnd.kafka.json.v2+json", "Authorization": "Basic %(auth)s"},
      body: JSON.stringify({records: [{value: {page: "/checkout", clicked: "buy"}}]}),
    });
    const body = await r.json();
    document.getElementById("out").textContent = "status=" + r.status + " " + JSON.stringify(body);
  } catch (e) {
    document.getElementById("out").textContent = "blocked: " + e;
  }
}
send();
</script></body></html>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        for d in os.environ.get("PATH", "").split(":"):
            if os.access(os.path.join(d, name), os.X_OK):
                return os.path.join(d, name)
    pytest.fail("chromium is not installed (scripts/test.sh installs Debian's chromium)")


def browse(url: str, tmp_path: Path) -> str:
    """The DOM of `url` after its scripts ran, from headless Chromium."""
    out = subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / f'chrome-{uuid.uuid4().hex[:6]}'}",
                          "--virtual-time-budget=15000", "--dump-dom", url],
                         capture_output=True, timeout=120)
    return out.stdout.decode(errors="replace")


class PageServer:
    """Serves `self.html` at / on a loopback port: the page's own origin."""

    def __init__(self):
        self.html = ""
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(outer.html.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_browser_sends_clickstream_with_fetch_and_cors(proxy_factory, broker, topic_name, tmp_path):
    create_topic(broker, topic_name, 1)
    auth = base64.b64encode(b"web:web-secret").decode()
    pages = PageServer()
    try:
        allowed = proxy_factory("--http-keys-file", str(keys_file(tmp_path)), "--http-cors-origin", pages.origin)
        pages.html = PAGE % {"proxy": allowed.url, "topic": topic_name, "auth": auth}
        dom = browse(pages.origin + "/", tmp_path)
        assert "status=200" in dom and '"error_code":null' in dom, dom[-2000:]
        # A proxy that does not list the page's origin: the browser refuses to send the event.
        other = proxy_factory("--http-keys-file", str(keys_file(tmp_path)), "--http-cors-origin",
                              "https://shop.example")
        pages.html = PAGE % {"proxy": other.url, "topic": topic_name, "auth": auth}
        dom = browse(pages.origin + "/", tmp_path)
        assert "blocked" in dom, dom[-2000:]
    finally:
        pages.server.shutdown()
    # Only the allowed page's event is in Kafka (the refused preflight let nothing through).
    [record] = consume_all(broker, topic_name, 1)
    assert json.loads(record.value()) == {"page": "/checkout", "clicked": "buy"}
    assert dict(record.headers())["service_id"] == b"web-frontend"


def test_api_keys_act_as_kafka_principals_so_acls_apply(sluice_bin, sasl, tmp_path):  # noqa: F811
    """Each key logs in to Kafka as its own SCRAM user: the cluster's ACLs decide, not the proxy."""

    broker, port = sasl
    create_user(plaintext(broker), "admin", ADMIN_PASSWORD)
    create_user(plaintext(broker), "alice")
    restart_with(broker, port, "--acls", "--super-users", "User:admin")
    admin = client_conf(port, "admin", ADMIN_PASSWORD, "SCRAM-SHA-512")
    create_topic_as(admin, "allowed", 1)
    create_topic_as(admin, "denied", 1)
    create_acls(AdminClient(admin), [allow("User:alice", "allowed", AclOperation.WRITE),
                                     allow("User:alice", "allowed", AclOperation.DESCRIBE)])
    keys = tmp_path / "keys.toml"
    keys.write_text(f"""
[[keys]]
key = "alice-app"
secret_sha256 = "{hashlib.sha256(b'alice-app-secret').hexdigest()}"
service_id = "alice-app"
[keys.kafka]
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "SCRAM-SHA-256"
"sasl.username" = "alice"
"sasl.password" = "{PASSWORD}"
""")
    proxy = Proxy(sluice_bin, f"127.0.0.1:{port}", "http://127.0.0.1:9", tmp_path / "http.log",
                  ["--http-keys-file", str(keys)])
    try:
        auth = basic("alice-app", "alice-app-secret")
        json_type = "application/vnd.kafka.json.v2+json"
        status, _, body = proxy.call("POST", "/topics/allowed", {"records": [{"value": "ok"}]}, json_type, auth)
        assert status == 200 and body["offsets"][0]["error_code"] is None, body
        status, _, body = proxy.call("POST", "/topics/denied", {"records": [{"value": "no"}]}, json_type, auth)
        assert (status, body["error_code"]) == (403, 40301), body
    finally:
        proxy.stop()
    consumer_conf = {**admin, "group.id": "check", "auto.offset.reset": "earliest"}
    consumer = Consumer(consumer_conf)
    consumer.subscribe(["allowed", "denied"])
    got = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got.append((m.topic(), m.value()))
    consumer.close()
    assert got == [("allowed", b'"ok"')]
