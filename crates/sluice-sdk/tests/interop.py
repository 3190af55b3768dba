"""Driven by interop.rs: confluent-kafka-python's Protobuf serializers against the Rust SDK.

Environment: MODE (produce|consume), BOOTSTRAP, REGISTRY, TOPIC, FDS (base64 FileDescriptorSet
holding shop/order.proto and its import).
"""

import base64
import json
import os
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def order_class():
    fds = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(os.environ["FDS"]))
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:  # dependencies first, as protox orders them
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order"))


def main():
    Order = order_class()
    topic = os.environ["TOPIC"]
    client = SchemaRegistryClient({"url": os.environ["REGISTRY"]})
    ctx = SerializationContext(topic, MessageField.VALUE)
    if os.environ["MODE"] == "produce":
        ser = ProtobufSerializer(Order, client, {"use.deprecated.format": False})
        p = Producer({"bootstrap.servers": os.environ["BOOTSTRAP"]})
        for i in range(3):
            o = Order(id=f"py{i}", note="from python")
            o.total.currency = "USD"
            o.total.cents = 100 + i
            line = o.lines.add()
            line.sku = f"sku-{i}"
            line.quantity = i
            p.produce(topic, value=ser(o, ctx), key=f"k{i}",
                      headers=[("event_type", b"shop.Order"), ("service_id", b"py-svc")])
        if p.flush(30) != 0:
            sys.exit("python producer could not deliver everything")
        return
    de = ProtobufDeserializer(Order, {"use.deprecated.format": False})
    c = Consumer({"bootstrap.servers": os.environ["BOOTSTRAP"], "group.id": "py-interop",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = 0
    while got < 3:
        m = c.poll(30)
        if m is None:
            sys.exit(f"python consumer timed out after {got} records")
        if m.error():
            sys.exit(f"python consumer: {m.error()}")
        o = de(m.value(), ctx)
        headers = {k: v.decode() for k, v in (m.headers() or [])}
        print(json.dumps({"id": o.id, "cents": o.total.cents, "sku": o.lines[0].sku,
                          "event_type": headers.get("event_type"),
                          "producer_seq": headers.get("producer_seq")}), flush=True)
        got += 1
    c.close()


if __name__ == "__main__":
    main()
