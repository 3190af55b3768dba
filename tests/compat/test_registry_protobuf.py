"""`sluice registry` with confluent-kafka-python's ProtobufSerializer/Deserializer (imported types)."""

from __future__ import annotations

import base64

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import pytest

from registry_fixture import registry, round_trip  # noqa: F401  (fixture)


def message_classes():
    """acme.User (acme/user.proto) imports acme.Address (acme/address.proto); built at run time."""
    pool = descriptor_pool.DescriptorPool()
    address = descriptor_pb2.FileDescriptorProto(name="acme/address.proto", package="acme", syntax="proto3")
    msg = address.message_type.add(name="Address")
    msg.field.add(name="city", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    user = descriptor_pb2.FileDescriptorProto(name="acme/user.proto", package="acme", syntax="proto3",
                                              dependency=["acme/address.proto"])
    msg = user.message_type.add(name="User")
    msg.field.add(name="name", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    msg.field.add(name="home", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, type_name=".acme.Address")
    pool.Add(address)
    pool.Add(user)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("acme.User")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("acme.Address")))


def test_protobuf_round_trip_with_import(broker, registry, topic_name):
    User, Address = message_classes()
    client = SchemaRegistryClient({"url": registry.url})
    ser = ProtobufSerializer(User, client, {"use.deprecated.format": False})
    de = ProtobufDeserializer(User, {"use.deprecated.format": False}, schema_registry_client=client)
    values = [User(name=f"u{i}", home=Address(city=f"c{i}")) for i in range(3)]
    assert round_trip(broker, topic_name, ser, de, values) == values
    # The import was registered as its own subject and referenced.
    assert "acme/address.proto" in client.get_subjects()
    latest = client.get_latest_version(f"{topic_name}-value")
    assert [r.name for r in latest.schema.references] == ["acme/address.proto"]


PROTO_V1 = 'syntax = "proto3";\npackage shop;\nmessage Order {\n  string id = 1;\n  int32 qty = 2;\n}\n'


def test_protobuf_text_compatibility_and_serialized_format(registry):
    client = SchemaRegistryClient({"url": registry.url})
    sid = client.register_schema("orders", Schema(PROTO_V1, "PROTOBUF"))
    # Adding a field and widening int32 -> int64 (same varint group) is backward compatible.
    v2 = PROTO_V1.replace("int32 qty = 2;", "int64 qty = 2;\n  string note = 3;")
    assert client.register_schema("orders", Schema(v2, "PROTOBUF")) > sid
    # string -> int32 changes the wire type: incompatible, with the reason.
    bad = v2.replace("string id = 1;", "int32 id = 1;")
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema("orders", Schema(bad, "PROTOBUF"))
    assert e.value.http_status_code == 409
    status, body = registry.call("POST", "/compatibility/subjects/orders/versions/latest?verbose=true",
                                 {"schema": bad, "schemaType": "PROTOBUF"})
    assert body["is_compatible"] is False and any("FIELD_SCALAR_KIND_CHANGED" in m for m in body["messages"]), body
    status, body = registry.call("GET", f"/schemas/ids/{sid}?format=serialized")
    fd = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(body["schema"]))
    assert fd.package == "shop" and fd.message_type[0].name == "Order"
    status, body = registry.call("POST", "/subjects/broken/versions",
                                 {"schema": "syntax = \"proto3\"; message M { strin a = 1; }", "schemaType": "PROTOBUF"})
    assert (status, body["error_code"]) == (422, 42201) and "strin" in body["message"], body


# Confluent stores a PROTOBUF schema in canonical form, so the same schema sent in another
# layout, with comments, with its options in another order or as a base64 FileDescriptorProto
# is found again under its id.
LAYOUTS = [
    'syntax = "proto3";\npackage shop;\noption java_package = "com.shop";\noption go_package = "shop";\n'
    'message Line {\n  string sku = 1 [deprecated = true, json_name = "SKU"];\n  int32 qty = 2;\n}\n',
    '// an order line\nsyntax = "proto3"; package shop;\noption go_package = \'shop\';\n'
    '/* packages */ option java_package = "com.shop";\n'
    'message Line { string sku = 1 [json_name = "SKU", deprecated = true]; /* how many */ int32 qty = 2; }',
]


def test_protobuf_layout_comments_and_option_order_keep_one_id(registry):
    client = SchemaRegistryClient({"url": registry.url})
    sid = client.register_schema("lines", Schema(LAYOUTS[0], "PROTOBUF"))
    for text in LAYOUTS[1:]:
        assert client.register_schema("lines", Schema(text, "PROTOBUF")) == sid
        assert client.lookup_schema("lines", Schema(text, "PROTOBUF")).schema_id == sid
    assert client.get_versions("lines") == [1]
    # The stored text is the canonical one: no comments, options sorted.
    stored = client.get_schema(sid).schema_str
    assert "an order line" not in stored
    assert stored.index("go_package") < stored.index("java_package"), stored


def test_protobuf_registered_as_base64_is_one_schema_returned_as_proto_text(registry):
    client = SchemaRegistryClient({"url": registry.url})
    sid = client.register_schema("lines-text", Schema(LAYOUTS[0], "PROTOBUF"))
    status, body = registry.call("GET", f"/schemas/ids/{sid}?format=serialized")
    assert status == 200, body
    b64 = body["schema"]
    # The descriptor of the same file is the same schema, in another subject too.
    assert client.register_schema("lines-b64", Schema(b64, "PROTOBUF")) == sid
    # A schema first registered as a descriptor is answered as .proto text.
    fd = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(b64))
    fd.message_type[0].field.add(name="note", number=3, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                                 label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    new_id = client.register_schema("lines-b64", Schema(base64.b64encode(fd.SerializeToString()).decode(), "PROTOBUF"))
    assert new_id != sid
    text = client.get_schema(new_id).schema_str
    assert text.startswith('syntax = "proto3";') and "string note = 3;" in text, text


def test_protobuf_normalize_on_register_and_lookup(registry):
    client = SchemaRegistryClient({"url": registry.url})
    ordered = 'syntax = "proto3";\nmessage P {\n  string a = 1;\n  string b = 2;\n}\n'
    swapped = 'syntax = "proto3";\nmessage P {\n  string b = 2;\n  string a = 1;\n}\n'
    sid = client.register_schema("normalized", Schema(ordered, "PROTOBUF"), normalize_schemas=True)
    # Declaration order is kept without normalize, so only a normalized lookup matches.
    assert client.register_schema("normalized", Schema(swapped, "PROTOBUF"), normalize_schemas=True) == sid
    assert client.lookup_schema("normalized", Schema(swapped, "PROTOBUF"), normalize_schemas=True).schema_id == sid
    # (Raw calls: the client answers lookups of schemas it registered from its cache.)
    status, body = registry.call("POST", "/subjects/normalized", {"schema": swapped, "schemaType": "PROTOBUF"})
    assert (status, body["error_code"]) == (404, 40403), body
    status, body = registry.call("POST", "/subjects/normalized?normalize=true",
                                 {"schema": swapped, "schemaType": "PROTOBUF"})
    assert (status, body["id"]) == (200, sid), body


def test_protobuf_bundled_google_type_and_confluent_imports_resolve(registry):
    client = SchemaRegistryClient({"url": registry.url})
    text = (
        'syntax = "proto3";\npackage shop;\n'
        'import "google/type/money.proto";\nimport "google/type/postal_address.proto";\n'
        'import "google/type/date.proto";\nimport "google/type/latlng.proto";\n'
        'import "confluent/meta.proto";\nimport "confluent/type/decimal.proto";\n'
        'message Parcel {\n  google.type.Money value = 1;\n  google.type.PostalAddress to = 2;\n'
        '  google.type.Date sent = 3;\n  google.type.LatLng at = 4;\n'
        '  confluent.type.Decimal weight = 5 [(confluent.field_meta).doc = "kilograms"];\n}\n'
    )
    sid = client.register_schema("parcels", Schema(text, "PROTOBUF"))
    stored = client.get_schema(sid).schema_str
    assert '(confluent.field_meta) = { doc: "kilograms" }' in stored, stored


def test_protobuf_compatibility_follows_references(registry):
    client = SchemaRegistryClient({"url": registry.url})
    home_v1 = 'syntax = "proto3";\npackage devices;\nmessage Home {\n  int32 id = 1;\n}\n'
    home_v2 = home_v1.replace("int32 id", "string id")
    client.set_compatibility("devices/home.proto", "NONE")
    client.register_schema("devices/home.proto", Schema(home_v1, "PROTOBUF"))
    client.register_schema("devices/home.proto", Schema(home_v2, "PROTOBUF"))
    user = 'syntax = "proto3";\nimport "devices/home.proto";\nmessage Owner {\n  devices.Home home = 1;\n}\n'

    def ref(version):
        return [SchemaReference("devices/home.proto", "devices/home.proto", version)]

    client.register_schema("owners", Schema(user, "PROTOBUF", ref(1)))
    # The same text over version 2 of the import breaks data written over version 1.
    assert client.test_compatibility("owners", Schema(user, "PROTOBUF", ref(2))) is False
    status, body = registry.call(
        "POST", "/compatibility/subjects/owners/versions/latest?verbose=true",
        {"schema": user, "schemaType": "PROTOBUF",
         "references": [{"name": "devices/home.proto", "subject": "devices/home.proto", "version": 2}]})
    assert any("FIELD_SCALAR_KIND_CHANGED" in m for m in body["messages"]), body
    assert any("FIELD_NAMED_TYPE_CHANGED" in m for m in body["messages"]), body


def test_protobuf_unknown_custom_options_are_tolerated(registry):
    client = SchemaRegistryClient({"url": registry.url})
    text = ('syntax = "proto3";\npackage acme;\noption (com.custom.map).subject = "user-value";\n'
            'message User {\n  option (acme.audit) = true;\n  string id = 1 [(acme.pii) = true];\n}\n')
    sid = client.register_schema("custom-options", Schema(text, "PROTOBUF"))
    assert "string id = 1;" in client.get_schema(sid).schema_str
