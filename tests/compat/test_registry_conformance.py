"""`sluice registry` answers as Confluent's Schema Registry 7.x does, one test per behaviour.

What is pinned: JSON Schema drafts (no `$schema` means draft-07) and JSON Schema compatibility
(pattern rules, `$ref`s followed locally and into referenced subjects); `GET /schemas`,
`/schemas/ids/{id}/versions|subjects`, compatibility against missing versions, empty and
null-reference register bodies; content negotiation (Accept, 406, 415); error codes and messages
word for word; and the `_schemas` topic in both directions (Sluice reads a topic Confluent wrote,
and writes keys and values in Confluent's layout, so a topic can move between the two).

Where the expectations come from: the source of confluentinc/schema-registry 7.x (7.9.x read;
`Errors.java` is identical across 7.0-7.9): rest/resources/{Schemas,Subjects,SubjectVersions,
Compatibility,Config}Resource, storage/KafkaSchemaRegistry (deletes, record writes),
storage/KafkaStoreReaderThread and KafkaStoreMessageHandler (record reads),
storage/serialization/SchemaRegistrySerializer and the *Key/*Value classes (record layout),
json-schema-provider JsonSchema.java (drafts) and json/diff (compatibility rules), and
confluentinc/rest-utils with Jersey for content negotiation.
"""

from __future__ import annotations

import http.client
import json
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from clients import confluent_read_to_end, create_topic
from registry_fixture import Registry, registry  # noqa: F401  (fixture)

V1 = "application/vnd.schemaregistry.v1+json"
VND = "application/vnd.schemaregistry+json"
JSON = "application/json"


def client_for(registry) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry.url})


def rest(registry, method: str, path: str, body: object = None,
         headers: dict | None = None) -> tuple[int, dict, object]:
    """One request with exactly the given headers (http.client, because urllib adds a
    form Content-Type to any body); returns (status, lower-cased headers, decoded JSON)."""
    host, port = registry.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        text = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(text or b"null")
    finally:
        conn.close()


def sr_error(call) -> tuple[int, int, str]:
    """(HTTP status, error_code, message) of a SchemaRegistryClient call that must fail."""
    with pytest.raises(SchemaRegistryError) as e:
        call()
    return e.value.http_status_code, e.value.error_code, e.value.error_message


def js(doc: dict, refs: list[SchemaReference] | None = None) -> Schema:
    return Schema(json.dumps(doc), "JSON", references=refs or [])


def obj(**props) -> dict:
    return {"type": "object", "properties": props}


# --- 1. JSON Schema drafts (JsonSchema.java: `$schema` absent or unknown -> draft-07) ------------

TUPLE = {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
DRAFT_04 = "http://json-schema.org/draft-04/schema#"


def test_json_schema_without_dollar_schema_is_draft07_so_tuple_items_register(registry):
    assert client_for(registry).register_schema("tuple-07", js(TUPLE)) > 0


def test_json_schema_2020_12_rejects_draft07_tuple_items(registry):
    status, code, _ = sr_error(lambda: client_for(registry).register_schema(
        "tuple-2020", js({"$schema": DRAFT_2020_12, **TUPLE})))
    assert (status, code) == (422, 42201)


def test_json_schema_draft04_boolean_exclusive_minimum_is_accepted(registry):
    client = client_for(registry)
    positive = {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert client.register_schema("draft-04", js({"$schema": DRAFT_04, **positive})) > 0
    # Without `$schema` the same keyword is read as draft-07, where it must be a number.
    assert sr_error(lambda: client.register_schema("draft-07", js(positive)))[:2] == (422, 42201)


# --- 2. JSON Schema compatibility, BACKWARD (json/diff: SchemaDiff, StringSchemaDiff) ------------

def verbose_check(registry, subject: str, schema: Schema) -> dict:
    status, _, body = rest(registry, "POST", f"/compatibility/subjects/{subject}/versions/latest?verbose=true",
                           schema.to_dict(), {"Content-Type": V1})
    assert status == 200, body
    return body


def test_json_pattern_added_is_incompatible_and_removed_is_compatible(registry):
    client = client_for(registry)
    plain = js(obj(code={"type": "string"}))
    patterned = js(obj(code={"type": "string", "pattern": "^[A-Z]+$"}))
    client.register_schema("pattern-add", plain)
    assert client.test_compatibility("pattern-add", patterned) is False
    body = verbose_check(registry, "pattern-add", patterned)
    assert body["is_compatible"] is False and "PATTERN_ADDED" in " ".join(body["messages"]), body
    assert sr_error(lambda: client.register_schema("pattern-add", patterned))[:2] == (409, 409)

    client.register_schema("pattern-remove", patterned)
    assert client.test_compatibility("pattern-remove", plain) is True
    client.register_schema("pattern-remove", plain)
    assert client.get_versions("pattern-remove") == [1, 2]


@pytest.mark.parametrize("bucket", ["definitions", "$defs"])
def test_json_local_refs_are_followed(registry, bucket):
    client = client_for(registry)
    subject = f"local-ref-{bucket.strip('$')}"

    def with_def(def_type: str) -> Schema:
        return js({**obj(x={"$ref": f"#/{bucket}/x"}), bucket: {"x": {"type": def_type}}})

    client.register_schema(subject, with_def("string"))
    assert client.test_compatibility(subject, with_def("integer")) is False
    assert client.test_compatibility(subject, js(obj(x={"type": "string"}))) is True


def test_json_reference_to_another_subject_is_followed(registry):
    client = client_for(registry)
    street = {"type": "object", "properties": {"street": {"type": "string"}}}
    user = js(obj(address={"$ref": "address.json"}), [SchemaReference("address.json", "address", 1)])
    client.register_schema("address", js(street))
    client.register_schema("user", user)
    client.set_compatibility("address", "NONE")
    client.register_schema("address", js({**street, "properties": {"street": {"type": "integer"}}}))
    client.register_schema("address", js({**street, "description": "a postal address"}))
    assert client.get_versions("address") == [1, 2, 3]

    def user_on(version: int) -> Schema:
        return js(obj(address={"$ref": "address.json"}), [SchemaReference("address.json", "address", version)])

    assert client.test_compatibility("user", user_on(2)) is False
    assert sr_error(lambda: client.register_schema("user", user_on(2)))[:2] == (409, 409)
    assert client.test_compatibility("user", user_on(3)) is True


# --- 3. Endpoints (SchemasResource, CompatibilityResource, SubjectVersionsResource) -------------

def test_get_schemas_lists_versions_by_subject_then_version_with_filters(registry):
    client = client_for(registry)
    texts = {("b-sub", 1): '"int"', ("b-sub", 2): '"long"', ("other", 1): '"string"',
             ("a-sub", 1): json.dumps(obj(n={"type": "integer"}))}
    ids = {}
    for (subject, version), text in texts.items():
        ids[subject, version] = client.register_schema(subject, Schema(text, "JSON" if subject == "a-sub" else "AVRO"))
    ref = SchemaReference("a.json", "a-sub", 1)
    texts["a-ref", 1] = json.dumps(obj(a={"$ref": "a.json"}))
    ids["a-ref", 1] = client.register_schema("a-ref", Schema(texts["a-ref", 1], "JSON", references=[ref]))

    def expected(*keys):
        out = []
        for subject, version in keys:
            entry = {"subject": subject, "version": version, "id": ids[subject, version]}
            if subject.startswith("a-"):
                entry["schemaType"] = "JSON"
            if subject == "a-ref":
                entry["references"] = [{"name": "a.json", "subject": "a-sub", "version": 1}]
            out.append((entry, json.loads(texts[subject, version])))
        return out

    def listed(query: str):
        status, _, body = rest(registry, "GET", f"/schemas{query}", headers={"Accept": V1})
        assert status == 200, body
        return [({k: v for k, v in e.items() if k != "schema"}, json.loads(e["schema"])) for e in body]

    everything = [("a-ref", 1), ("a-sub", 1), ("b-sub", 1), ("b-sub", 2), ("other", 1)]
    assert listed("") == expected(*everything)
    assert listed("?subjectPrefix=a-") == expected(("a-ref", 1), ("a-sub", 1))
    assert listed("?subjectPrefix=zzz") == []
    assert listed("?offset=1&limit=2") == expected(*everything[1:3])
    client.delete_version("b-sub", 2)
    assert listed("?latestOnly=true") == expected(("a-ref", 1), ("a-sub", 1), ("b-sub", 1), ("other", 1))
    assert listed("?subjectPrefix=b-") == expected(("b-sub", 1))
    assert listed("?subjectPrefix=b-&deleted=true") == expected(("b-sub", 1), ("b-sub", 2))
    assert listed("?subjectPrefix=b-&deleted=true&latestOnly=true") == expected(("b-sub", 2))


def test_schema_id_versions_and_subjects_hide_soft_deleted_users(registry):
    client = client_for(registry)
    sid = client.register_schema("x1", Schema('"string"', "AVRO"))
    assert client.register_schema("x2", Schema('"string"', "AVRO")) == sid

    def versions(deleted: bool):
        return sorted((v.subject, v.version) for v in client.get_schema_versions(sid, deleted=deleted))

    def subjects(deleted: bool):
        return sorted(client.get_subjects_by_schema_id(sid, deleted=deleted))

    client.delete_version("x1", 1)
    assert versions(False) == [("x2", 1)] and subjects(False) == ["x2"]
    assert versions(True) == [("x1", 1), ("x2", 1)] and subjects(True) == ["x1", "x2"]
    client.delete_subject("x2")
    # Every user soft-deleted: the id still maps to them, so `[]` rather than a 404.
    assert versions(False) == [] and subjects(False) == []
    assert versions(True) == [("x1", 1), ("x2", 1)] and subjects(True) == ["x1", "x2"]
    client.delete_subject("x1", permanent=True)
    client.delete_subject("x2", permanent=True)
    for call in (lambda: client.get_schema_versions(sid, deleted=True),
                 lambda: client.get_subjects_by_schema_id(sid, deleted=True)):
        assert sr_error(call) == (404, 40403, "Schema not found")


def test_unknown_schema_id_versions_and_subjects_are_40403_schema_not_found(registry):
    client = client_for(registry)
    assert sr_error(lambda: client.get_schema_versions(4242)) == (404, 40403, "Schema not found")
    assert sr_error(lambda: client.get_subjects_by_schema_id(4242)) == (404, 40403, "Schema not found")


def test_compatibility_with_latest_of_unknown_subject_is_compatible(registry):
    assert client_for(registry).test_compatibility("never-registered", Schema('"string"', "AVRO")) is True
    status, _, body = rest(registry, "POST", "/compatibility/subjects/never-registered/versions/latest",
                           {"schema": '"string"'}, {"Content-Type": V1})
    assert (status, body) == (200, {"is_compatible": True})


def test_compatibility_with_missing_version_is_40402(registry):
    client = client_for(registry)
    client.register_schema("one-version", Schema('"string"', "AVRO"))
    assert sr_error(lambda: client.test_compatibility("one-version", Schema('"string"', "AVRO"), version=3)) == (
        404, 40402, "Version 3 not found.")


def test_non_numeric_schema_id_is_404_with_error_code_404(registry):
    status, _, body = rest(registry, "GET", "/schemas/ids/abc", headers={"Accept": V1})
    assert (status, body["error_code"]) == (404, 404), body


@pytest.mark.parametrize("body", [{}, {"schema": ""}, {"schemaType": "JSON"}], ids=["absent", "blank", "typed"])
def test_register_without_schema_is_empty_schema_42201(registry, body):
    status, _, answer = rest(registry, "POST", "/subjects/empty/versions", body, {"Content-Type": V1})
    assert (status, answer) == (422, {"error_code": 42201, "message": "Empty schema"})


def test_register_accepts_null_references(registry):
    status, _, body = rest(registry, "POST", "/subjects/null-refs/versions",
                           {"schema": '"string"', "references": None}, {"Content-Type": V1})
    assert status == 200 and body["id"] > 0, body
    assert client_for(registry).get_versions("null-refs") == [1]


# --- 4. Content negotiation (rest-utils @Produces/@Consumes, Jersey's media-type order) ---------

@pytest.mark.parametrize("accept,expected", [
    (V1, V1), (VND, VND), (JSON, JSON), (None, V1), ("*/*", V1),
    (f"{JSON}; q=0.9, {V1}; q=0.1", JSON),
])
def test_accept_header_selects_response_content_type(registry, accept, expected):
    status, headers, body = rest(registry, "GET", "/subjects", headers={"Accept": accept} if accept else {})
    assert (status, body) == (200, [])
    assert headers.get("content-type") == expected


def test_unacceptable_accept_is_406(registry):
    status, _, body = rest(registry, "GET", "/subjects", headers={"Accept": "text/html"})
    assert (status, body["error_code"]) == (406, 406), body
    assert body["message"] == "HTTP 406 Not Acceptable"


def test_unsupported_request_content_type_is_415(registry):
    status, _, body = rest(registry, "POST", "/subjects/typed/versions", {"schema": '"string"'},
                           {"Content-Type": "text/plain"})
    assert (status, body["error_code"]) == (415, 415), body
    assert body["message"] == "HTTP 415 Unsupported Media Type"
    assert registry.call("GET", "/subjects/typed/versions")[0] == 404, "a refused body was registered"


@pytest.mark.parametrize("content_type", ["application/octet-stream", None])
def test_octet_stream_or_missing_content_type_is_read_as_json(registry, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    status, _, body = rest(registry, "POST", "/subjects/untyped/versions", {"schema": '"string"'}, headers)
    assert status == 200 and body["id"] > 0, body


# --- 5. Error messages word for word (Errors.java, Rest*Exception) ------------------------------

def test_deleting_a_referenced_version_is_42206_naming_the_schema_key(registry):
    client = client_for(registry)
    client.register_schema("referenced", js(obj(street={"type": "string"})))
    client.register_schema("referrer", js(obj(a={"$ref": "r.json"}), [SchemaReference("r.json", "referenced", 1)]))
    expected = (422, 42206, "One or more references exist to the schema "
                            "{magic=1,keytype=SCHEMA,subject=referenced,version=1}.")
    assert sr_error(lambda: client.delete_version("referenced", 1)) == expected
    assert sr_error(lambda: client.delete_subject("referenced")) == expected


def test_invalid_compatibility_level_is_42203(registry):
    status, _, body = rest(registry, "PUT", "/config", {"compatibility": "SIDEWAYS"}, {"Content-Type": V1})
    assert (status, body) == (422, {"error_code": 42203, "message": (
        "Invalid compatibility level. Valid values are none, backward, forward, full, "
        "backward_transitive, forward_transitive, and full_transitive")})


def test_permanent_delete_of_live_subject_is_40405(registry):
    client = client_for(registry)
    client.register_schema("live", Schema('"string"', "AVRO"))
    assert sr_error(lambda: client.delete_subject("live", permanent=True)) == (
        404, 40405, "Subject 'live' was not deleted first before being permanently deleted")


def test_permanent_delete_of_live_version_is_40407(registry):
    client = client_for(registry)
    client.register_schema("live-v", Schema('"string"', "AVRO"))
    assert sr_error(lambda: client.delete_version("live-v", 1, permanent=True)) == (
        404, 40407, "Subject 'live-v' Version 1 was not deleted first before being permanently deleted")


def test_soft_delete_of_soft_deleted_subject_is_40404(registry):
    client = client_for(registry)
    client.register_schema("twice", Schema('"string"', "AVRO"))
    assert client.delete_subject("twice") == [1]
    # Sic: Confluent's message has no space after "deleted.".
    assert sr_error(lambda: client.delete_subject("twice")) == (
        404, 40404, "Subject 'twice' was soft deleted.Set permanent=true to delete permanently")


def test_lookup_of_unregistered_schema_in_existing_subject_is_40403(registry):
    client = client_for(registry)
    client.register_schema("lookup", Schema('"string"', "AVRO"))
    assert client.lookup_schema("lookup", Schema('"string"', "AVRO")).version == 1
    assert sr_error(lambda: client.lookup_schema("lookup", Schema('"int"', "AVRO"))) == (
        404, 40403, "Schema not found")


# --- 6. The `_schemas` topic in Confluent's layout (storage/*Key, *Value, KafkaStore*) ---------

def dumps(doc) -> bytes:
    """JSON as Jackson writes it: compact, non-ASCII as is."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def key(keytype: str, subject: str | None = None, version: int | None = None) -> bytes:
    """A key in @JsonPropertyOrder(keytype, subject, version, magic); null fields left out."""
    doc: dict = {"keytype": keytype}
    if subject is not None:
        doc["subject"] = subject
    if version is not None:
        doc["version"] = version
    doc["magic"] = 1 if keytype == "SCHEMA" else 0
    return dumps(doc)


def schema_value(subject, version, sid, text, deleted=False, schema_type=None, refs=None, **extra) -> bytes:
    doc = {"subject": subject, "version": version, "id": sid, **extra}
    if schema_type:
        doc["schemaType"] = schema_type
    if refs:
        doc["references"] = refs
    return dumps({**doc, "schema": text, "deleted": deleted})


CAR_V1 = json.dumps({"type": "record", "name": "Car", "fields": [{"name": "make", "type": "string"}]})
CAR_V2 = json.dumps({"type": "record", "name": "Car", "fields": [{"name": "make", "type": "int"}]})
JSON_DOC = json.dumps(obj(id={"type": "integer"}))


def confluent_topic() -> list[tuple[bytes, bytes | None]]:
    """Records as Confluent 7.x writes them, in offset order; the comments say what each does."""
    return [
        (key("NOOP"), None),  # written at start-up to find the end of the topic
        (key("CONFIG"), dumps({"compatibilityLevel": "FULL"})),  # global level
        (key("SCHEMA", "Kafka-key", 1), schema_value("Kafka-key", 1, 1, '"string"')),
        (key("SCHEMA", "Car", 1), schema_value(  # fields Confluent 7.x adds, which a reader ignores
            "Car", 1, 2, CAR_V1, md5="q83vEjRWeJq83vEjRWeJqw==",
            metadata={"properties": {"owner": "fleet"}}, ruleSet={"domainRules": []})),
        (key("CONFIG", "Car"), dumps({"subject": "Car", "compatibilityLevel": "NONE"})),
        (key("SCHEMA", "Car", 2), schema_value("Car", 2, 3, CAR_V2)),
        (key("SCHEMA", "s", 1), schema_value("s", 1, 4, '"int"')),
        (key("SCHEMA", "s", 2), schema_value("s", 2, 5, '"long"')),
        (key("SCHEMA", "s", 3), schema_value("s", 3, 6, '"float"')),
        (key("DELETE_SUBJECT", "s"), dumps({"subject": "s", "version": 2})),  # soft-deletes 1..2
        (key("SCHEMA", "gone", 1), schema_value("gone", 1, 9, '"bytes"')),
        (key("SCHEMA", "gone", 1), None),  # permanent delete
        # Switching a subject with only soft-deleted versions to IMPORT: tombstones, then a clear.
        (key("SCHEMA", "cleared", 1), schema_value("cleared", 1, 7, '"double"', deleted=True)),
        (key("SCHEMA", "cleared", 1), None),
        (key("CLEAR_SUBJECT", "cleared"), dumps({"subject": "cleared"})),
        (key("MODE", "cleared"), dumps({"subject": "cleared", "mode": "IMPORT"})),
        (key("MODE", "frozen"), dumps({"subject": "frozen", "mode": "READONLY"})),
        (key("SCHEMA", "json-subj", 1), schema_value("json-subj", 1, 8, JSON_DOC, schema_type="JSON")),
        (dumps({"keytype": "CONTEXT", "tenant": "default", "context": ".ctx", "magic": 0}),
         dumps({"tenant": "default", "context": ".ctx"})),
        (key("NOOP"), None),
    ]


def test_registry_reads_a_confluent_schemas_topic(sluice_bin, broker, tmp_path):
    topic = f"_schemas-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic, 1, {"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for k, v in confluent_topic():
        producer.produce(topic, key=k, value=v, partition=0)
    assert producer.flush(30) == 0
    reg = Registry(sluice_bin, broker.bootstrap, tmp_path / "registry.log", topic=topic)
    reg.start()
    try:
        def get(path):
            status, body = reg.call("GET", path)
            assert status == 200, (path, body)
            return body

        assert sorted(get("/subjects")) == ["Car", "Kafka-key", "json-subj", "s"]
        assert sorted(get("/subjects?deleted=true")) == ["Car", "Kafka-key", "json-subj", "s"]
        assert get("/subjects/s/versions") == [3]
        assert get("/subjects/s/versions?deleted=true") == [1, 2, 3]
        assert get("/subjects/Kafka-key/versions/1") == {"subject": "Kafka-key", "version": 1, "id": 1,
                                                         "schema": '"string"'}
        car = get("/subjects/Car/versions/latest")
        assert (car["version"], car["id"], json.loads(car["schema"])) == (2, 3, json.loads(CAR_V2))
        assert json.loads(get("/schemas/ids/2")["schema"]) == json.loads(CAR_V1)
        js_entry = get("/schemas/ids/8")
        assert (js_entry["schemaType"], json.loads(js_entry["schema"])) == ("JSON", json.loads(JSON_DOC))
        assert get("/config") == {"compatibilityLevel": "FULL"}
        assert get("/config/Car") == {"compatibilityLevel": "NONE"}
        assert get("/mode/frozen") == {"mode": "READONLY"}
        assert get("/mode/cleared") == {"mode": "IMPORT"}
        for sid in (7, 9):  # only ever used by versions that were permanently deleted
            assert reg.call("GET", f"/schemas/ids/{sid}") == (
                404, {"error_code": 40403, "message": f"Schema {sid} not found"})
        status, body = reg.call("POST", "/subjects/frozen/versions", {"schema": '"string"'})
        assert (status, body.get("error_code")) == (422, 42205), body
        # Ids are never reused: the next one is above every id the topic ever held (9, deleted).
        status, body = reg.call("POST", "/subjects/fresh/versions", {"schema": '"boolean"'})
        assert (status, body) == (200, {"id": 10})
    finally:
        assert reg.stop() == 0, (tmp_path / "registry.log").read_text()[-5000:]


def ordered(raw: bytes) -> list:
    """A JSON object as its (key, value) pairs in the order they were written."""
    return json.loads(raw, object_pairs_hook=lambda pairs: pairs)


def test_registry_writes_keys_and_values_in_confluent_layout(sluice_bin, broker, tmp_path):
    topic = f"_schemas-{uuid.uuid4().hex[:6]}"
    reg = Registry(sluice_bin, broker.bootstrap, tmp_path / "registry.log", topic=topic)
    reg.start()
    try:
        client = client_for(reg)
        a1 = client.register_schema("a", Schema('"string"', "AVRO"))
        client.set_compatibility(level="FULL")
        client.set_compatibility("a", "NONE")
        a2 = client.register_schema("a", Schema('"int"', "AVRO"))
        addr = client.register_schema("addr", js(obj(street={"type": "string"})))
        user_doc = json.dumps(obj(a={"$ref": "addr.json"}))
        user = client.register_schema("user", Schema(user_doc, "JSON", [SchemaReference("addr.json", "addr", 1)]))
        assert reg.call("PUT", "/mode/frozen", {"mode": "READONLY"})[0] == 200
        client.delete_version("a", 1)
        assert client.delete_subject("a") == [2]
        assert client.delete_subject("a", permanent=True) == [1, 2]
    finally:
        assert reg.stop() == 0, (tmp_path / "registry.log").read_text()[-5000:]

    records = [(r.key, r.value) for r in confluent_read_to_end(broker.bootstrap, topic, 1, "read_uncommitted")]
    ref = [{"name": "addr.json", "subject": "addr", "version": 1}]
    schema_values = {
        ("a", 1): lambda d: schema_value("a", 1, a1, '"string"', d),
        ("a", 2): lambda d: schema_value("a", 2, a2, '"int"', d),
        ("addr", 1): lambda d: schema_value("addr", 1, addr, json.dumps(obj(street={"type": "string"})), d, "JSON"),
        ("user", 1): lambda d: schema_value("user", 1, user, user_doc, d, "JSON", ref),
    }
    seen = []
    for k, v in records:
        doc = dict(ordered(k))
        kt = doc["keytype"]
        subject, version = doc.get("subject"), doc.get("version")
        # Byte-exact keys: compaction only supersedes a record whose key bytes are equal.
        assert k == key(kt, subject, version), f"key not in Confluent's layout: {k!r}"
        if kt == "SCHEMA":
            if v is None:
                seen.append(("tombstone", subject, version))
                continue
            deleted = json.loads(v)["deleted"]
            # Schema text is compared parsed; field order and every other field exactly.
            expect = ordered(schema_values[subject, version](deleted))
            got = ordered(v)
            assert [f for f, _ in got] == [f for f, _ in expect], f"SCHEMA value fields: {v!r}"
            assert {f: (json.loads(x) if f == "schema" else x) for f, x in got} == \
                   {f: (json.loads(x) if f == "schema" else x) for f, x in expect}, v
            seen.append(("schema", subject, version, deleted))
        elif kt == "CONFIG" and v is None:
            # Permanently deleting subject "a" tombstones its compatibility level too.
            seen.append(("config tombstone", subject))
        elif kt == "CONFIG":
            expect = ([("compatibilityLevel", "FULL")] if subject is None
                      else [("subject", "a"), ("compatibilityLevel", "NONE")])
            assert ordered(v) == expect, v
            seen.append(("config", subject))
        elif kt == "MODE":
            assert ordered(v) == [("subject", "frozen"), ("mode", "READONLY")], v
            seen.append(("mode", subject))
        elif kt == "DELETE_SUBJECT":
            assert ordered(v) == [("subject", "a"), ("version", 2)], v
            seen.append(("delete_subject", subject))
        else:
            # Confluent writes NOOP with no value and never reads a NOOP's value
            # (KafkaStoreReaderThread checks the key first); Sluice's maxId marker is tolerated.
            assert kt == "NOOP" and (v is None or set(json.loads(v)) == {"maxId"}), (k, v)
    for event in [("schema", "a", 1, False), ("schema", "a", 2, False), ("schema", "addr", 1, False),
                  ("schema", "user", 1, False), ("config", None), ("config", "a"), ("mode", "frozen"),
                  ("schema", "a", 1, True), ("delete_subject", "a"), ("tombstone", "a", 1), ("tombstone", "a", 2),
                  ("config tombstone", "a")]:
        assert event in seen, (event, seen)
    assert seen.index(("delete_subject", "a")) < seen.index(("tombstone", "a", 1))


def test_permanent_subject_delete_drops_its_config_and_mode(registry, broker):
    """KafkaSchemaRegistry.deleteSubject(permanent): tombstones the subject's CONFIG and MODE keys."""
    client = client_for(registry)
    client.register_schema("short-lived", Schema('"string"', "AVRO"))
    client.set_compatibility("short-lived", "NONE")
    assert registry.call("PUT", "/mode/short-lived", {"mode": "READWRITE"})[0] == 200
    client.delete_subject("short-lived")
    client.delete_subject("short-lived", permanent=True)
    assert registry.call("GET", "/config/short-lived") == (404, {
        "error_code": 40408, "message": "Subject 'short-lived' does not have subject-level compatibility configured"})
    assert registry.call("GET", "/mode/short-lived") == (404, {
        "error_code": 40409, "message": "Subject 'short-lived' does not have subject-level mode configured"})
    records = confluent_read_to_end(broker.bootstrap, "_schemas", 1, "read_uncommitted")
    tombstoned = {r.key for r in records if r.value is None}
    assert key("CONFIG", "short-lived") in tombstoned and key("MODE", "short-lived") in tombstoned
