"""Background traffic for tests that change a live broker: a producer and a consumer that
record what was acknowledged and what was read, so a test can prove nothing was lost or
duplicated while it moved partitions around."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

TIMEOUT_S = 60


class Traffic:
    """A producer and a consumer running against a topic in the background."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.acked: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        self.consumed: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        self.errors: list[str] = []
        self.stop_producing = threading.Event()
        self.stop_consuming = threading.Event()
        self.producer_thread = threading.Thread(target=self.produce, daemon=True)
        self.consumer_thread = threading.Thread(target=self.consume, daemon=True)

    def start(self):
        self.consumer_thread.start()
        self.producer_thread.start()

    def produce(self):
        producer = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 2,
                             "enable.idempotence": True})

        def delivered(err, msg):
            if err is not None:
                self.errors.append(f"delivery failed: {err}")
            else:
                self.acked[msg.partition()].append((msg.offset(), msg.value()))

        i = 0
        while not self.stop_producing.is_set():
            for p in range(self.partitions):
                producer.produce(self.topic, value=f"live-{p}-{i:08d}".encode().ljust(500, b"."),
                                 partition=p, on_delivery=delivered)
            i += 1
            producer.poll(0)
            time.sleep(0.002)  # ~500 messages/s per partition, well under the throttle
        if producer.flush(TIMEOUT_S) != 0:
            self.errors.append("producer could not flush")

    def consume(self):
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"{self.topic}-reader",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([self.topic])
        while not self.stop_consuming.is_set():
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                self.errors.append(f"consume error: {msg.error()}")
                continue
            self.consumed[msg.partition()].append((msg.offset(), msg.value()))
        consumer.close()

    def finish(self) -> None:
        self.stop_producing.set()
        self.producer_thread.join(TIMEOUT_S)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and any(
            len(self.consumed[p]) < len(self.acked[p]) + self.prefilled(p) for p in range(self.partitions)
        ):
            time.sleep(0.1)
        self.stop_consuming.set()
        self.consumer_thread.join(TIMEOUT_S)

    def prefilled(self, partition: int) -> int:
        return self.acked[partition][0][0] if self.acked[partition] else 0


def prefill(bootstrap: str, topic: str, partitions: int, per_partition: int) -> dict[int, list[bytes]]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20})
    values = {p: [f"pre-{p}-{i:08d}".encode().ljust(1000, b"#") for i in range(per_partition)]
              for p in range(partitions)}
    for i in range(per_partition):
        for p in range(partitions):
            producer.produce(topic, value=values[p][i], partition=p)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(TIMEOUT_S) == 0
    return values


def read_partition(bootstrap: str, topic: str, partition: int, count: int) -> list[bytes]:
    """The first `count` values of a partition, read from its start."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-check"})
    reader.assign([TopicPartition(topic, partition, 0)])
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        msg = reader.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    reader.close()
    return got
