"""`sluice registry` with confluent-kafka-python's ProtobufSerializer/Deserializer (imported types)."""

from __future__ import annotations

import base64

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
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
