"""`sluice registry` against confluent-kafka-python's SchemaRegistryClient and serializers."""

from __future__ import annotations

import http.client
import json
import time

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer

from registry_fixture import Registry, registry, round_trip  # noqa: F401  (fixture)

USER_V1 = json.dumps({
    "type": "record", "name": "User", "namespace": "com.example",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
})
USER_V2 = json.dumps({
    "type": "record", "name": "User", "namespace": "com.example",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"},
               {"name": "email", "type": ["null", "string"], "default": None}],
})


def test_avro_round_trip_through_broker(broker, registry, topic_name):
    client = SchemaRegistryClient({"url": registry.url})
    ser = AvroSerializer(client, USER_V1)
    de = AvroDeserializer(client)
    values = [{"name": f"u{i}", "age": i} for i in range(5)]
    assert round_trip(broker, topic_name, ser, de, values) == values
    latest = client.get_latest_version(f"{topic_name}-value")
    assert latest.version == 1
    # Same schema again: same id.
    assert client.register_schema(f"{topic_name}-value", Schema(USER_V1, "AVRO")) == latest.schema_id


def test_json_schema_round_trip_through_broker(broker, registry, topic_name):
    schema = json.dumps({"type": "object", "properties": {"id": {"type": "integer"}, "tag": {"type": "string"}},
                         "required": ["id"]})
    client = SchemaRegistryClient({"url": registry.url})
    ser = JSONSerializer(schema, client)
    de = JSONDeserializer(schema, schema_registry_client=client)
    values = [{"id": i, "tag": "t"} for i in range(3)]
    assert round_trip(broker, topic_name, ser, de, values) == values


def test_compatibility_errors_and_verbose_reasons(registry):
    client = SchemaRegistryClient({"url": registry.url})
    client.register_schema("people", Schema(USER_V1, "AVRO"))
    v2 = client.register_schema("people", Schema(USER_V2, "AVRO"))
    assert v2 > 0
    incompatible = json.dumps({"type": "record", "name": "User", "namespace": "com.example",
                               "fields": [{"name": "name", "type": "int"}]})
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema("people", Schema(incompatible, "AVRO"))
    assert e.value.http_status_code == 409
    status, body = registry.call("POST", "/compatibility/subjects/people/versions/latest?verbose=True",
                                 {"schema": incompatible})
    assert status == 200 and body["is_compatible"] is False and body["messages"], body
    status, body = registry.call("POST", "/subjects/people/versions", {"schema": '{"type": "recrd"}'})
    assert (status, body["error_code"]) == (422, 42201), body
    assert "recrd" in body["message"] or "Unknown" in body["message"] or "invalid" in body["message"].lower()
    status, body = registry.call("GET", "/subjects/ghost/versions")
    assert (status, body["error_code"]) == (404, 40401)
    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility("people", "NONE")
    assert client.register_schema("people", Schema(incompatible, "AVRO")) > v2


def test_state_survives_restart(registry):
    client = SchemaRegistryClient({"url": registry.url})
    id1 = client.register_schema("keep", Schema(USER_V1, "AVRO"))
    id2 = client.register_schema("keep", Schema(USER_V2, "AVRO"))
    client.set_compatibility("keep", "FULL")
    registry.call("PUT", "/mode/frozen", {"mode": "READONLY"})
    client.delete_version("keep", 1)
    registry.restart()
    client = SchemaRegistryClient({"url": registry.url})
    assert client.get_versions("keep") == [2]
    status, body = registry.call("GET", "/subjects/keep/versions?deleted=true")
    assert body == [1, 2]
    assert client.get_schema(id1).schema_str and client.get_schema(id2).schema_str
    assert registry.call("GET", "/config/keep")[1] == {"compatibilityLevel": "FULL"}
    assert registry.call("GET", "/mode/frozen")[1] == {"mode": "READONLY"}
    new_id = client.register_schema("fresh", Schema('"string"', "AVRO"))
    assert new_id > id2, "ids are never reused"


def test_two_instances_share_state(sluice_bin, broker, registry, tmp_path):
    # No --leader-url: the two instances elect the writer through the Kafka group protocol.
    follower = Registry(sluice_bin, broker.bootstrap, tmp_path / "follower.log")
    follower.start()
    try:
        via_follower = SchemaRegistryClient({"url": follower.url})
        sid = via_follower.register_schema("shared", Schema(USER_V1, "AVRO"))
        assert SchemaRegistryClient({"url": registry.url}).get_schema(sid).schema_str
        deadline = time.monotonic() + 10
        while registry.call("GET", f"/schemas/ids/{sid}")[0] != 200 or follower.call("GET", f"/schemas/ids/{sid}")[0] != 200:
            assert time.monotonic() < deadline, "the follower never saw the schema"
            time.sleep(0.1)
    finally:
        assert follower.stop() == 0


# Hostile input: every parser fed by the network is bounded (crates/sluice-registry
# src/formats/limits.rs). Each case used to abort the registry process (a stack overflow is not
# a panic); now each is a Confluent error and the registry keeps serving.
NESTING_LIMIT = 64
BODY_LIMIT = 4 * 1024 * 1024


def _raw_call(registry, method: str, path: str, data: bytes) -> tuple[int, dict]:
    """One request with a raw body. The registry may answer (413) before reading all of a body
    it refuses, so a failed send is not the end: the answer is read regardless."""
    host, port = registry.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest(method, path)
        conn.putheader("Content-Type", "application/vnd.schemaregistry.v1+json")
        conn.putheader("Content-Length", str(len(data)))
        conn.endheaders()
        try:
            conn.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def _assert_still_serving(registry):
    assert registry.proc is not None and registry.proc.poll() is None, "the registry process died"
    status, body = registry.call("POST", "/subjects/healthy/versions", {"schema": USER_V1})
    assert status == 200 and body["id"] > 0, body
    status, body = registry.call("GET", "/subjects/healthy/versions")
    assert (status, body) == (200, [1]), body


def _assert_limit_error(status, body):
    assert (status, body["error_code"]) == (422, 42201), body
    assert f"limit of {NESTING_LIMIT} levels" in body["message"], body


def test_thousand_nested_protobuf_messages_are_refused(registry):
    schema = 'syntax = "proto3";\n' + "message A {\n" * 1000 + "}" * 1000
    assert len(schema) // 1000 == 13  # the 13 KB report
    # The subject exists, so lookups and compatibility tests get as far as parsing too.
    status, body = registry.call("POST", "/subjects/deep-proto/versions",
                                 {"schema": 'syntax = "proto3"; message A {}', "schemaType": "PROTOBUF"})
    assert status == 200, body
    for path in ("/subjects/deep-proto/versions", "/subjects/deep-proto",
                 "/compatibility/subjects/deep-proto/versions",
                 "/compatibility/subjects/deep-proto/versions/latest"):
        status, body = registry.call("POST", path, {"schema": schema, "schemaType": "PROTOBUF"})
        _assert_limit_error(status, body)
    _assert_still_serving(registry)


def test_deep_avro_and_json_schemas_are_refused(registry):
    deep_avro = '{"type":"array","items":' * 1000 + '"int"' + "}" * 1000
    deep_json = '{"type":"object","properties":{"a":' * 500 + "true" + "}}" * 500
    for subject, schema, schema_type in (("deep-avro", deep_avro, "AVRO"), ("deep-json", deep_json, "JSON")):
        status, body = registry.call("POST", f"/subjects/{subject}/versions",
                                     {"schema": schema, "schemaType": schema_type})
        _assert_limit_error(status, body)
    # A self-referencing JSON Schema is fine: $refs are not followed.
    status, body = registry.call("POST", "/subjects/self-ref/versions",
                                 {"schema": '{"$ref":"#"}', "schemaType": "JSON"})
    assert status == 200, body
    _assert_still_serving(registry)


def test_oversized_and_malformed_bodies(registry):
    big = json.dumps({"schema": " " * BODY_LIMIT}).encode()
    status, body = _raw_call(registry, "POST", "/subjects/big/versions", big)
    assert (status, body["error_code"]) == (413, 413), body
    assert str(BODY_LIMIT) in body["message"], body
    # Under the body limit but over the schema text limit: an invalid schema, naming the limit.
    # (Not blank: a blank schema is Confluent's "Empty schema".)
    status, body = registry.call("POST", "/subjects/big/versions", {"schema": "x" * (600 * 1024)})
    assert (status, body["error_code"]) == (422, 42201), body
    assert "limit of 524288 bytes" in body["message"], body
    # Malformed JSON and JSON of the wrong shape: 400, as Confluent's rest-utils answers.
    for data in (b"{not json", b'{"schema": 5}', b"[" * 1000, b""):
        status, body = _raw_call(registry, "POST", "/subjects/bad/versions", data)
        assert (status, body["error_code"]) == (400, 400), (data[:20], body)
    status, body = _raw_call(registry, "PUT", "/config", b'{"compatibility": ')
    assert (status, body["error_code"]) == (400, 400), body
    _assert_still_serving(registry)
