"""Client quotas (KIP-13/55/124/546) with real clients: `sluice quota` sets and lists them
through DescribeClientQuotas/AlterClientQuotas, librdkafka producers and consumers are held to
their byte rates (and told so: throttle_cb fires with the broker's throttle_time_ms), an
unthrottled client on the same broker keeps its speed, quotas on a SASL user apply to that
principal, and quotas survive a restart.
"""

from __future__ import annotations

import subprocess
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (
    AdminClient,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from conftest import free_port, port_accepts

TIMEOUT_S = 20
MB = 1_000_000
QUOTA = 1_048_576
PAYLOAD = b"x" * 1000


def sluice_quota(sluice_bin: str, bootstrap: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([sluice_bin, "quota", *args, "-b", bootstrap], capture_output=True, text=True,
                         timeout=TIMEOUT_S)
    if ok:
        assert out.returncode == 0, f"sluice quota {' '.join(args)}: {out.stderr}"
    return out


class Throttles:
    """Collects librdkafka's throttle events."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event.throttle_time)


def produce_for(conf: dict, topic: str, seconds: float) -> tuple[float, Throttles]:
    """Produces 1 kB messages as fast as the client lets it for `seconds`, then waits for every
    acknowledgement; returns the acknowledged payload rate (bytes/s, until the last
    acknowledgement) and the throttle events seen."""
    throttles = Throttles()
    producer = Producer({**conf, "linger.ms": 5, "queue.buffering.max.kbytes": 4096, "throttle_cb": throttles})
    acked = [0]

    def delivered(err, msg):
        if err is None:
            acked[0] += len(msg.value())

    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            producer.produce(topic, PAYLOAD, on_delivery=delivered)
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages left unacknowledged"
    return acked[0] / (time.monotonic() - start), throttles


def test_cli_sets_lists_validates_and_removes(broker, sluice_bin):
    b = broker.bootstrap
    sluice_quota(sluice_bin, b, "set", "--user", "alice", "--client-id", "app", "--producer-byte-rate", "2048",
                 "--request-percentage", "25.5")
    sluice_quota(sluice_bin, b, "set", "--user-default", "--consumer-byte-rate", "4096")
    listed = sluice_quota(sluice_bin, b, "list").stdout.splitlines()
    assert "user=alice client-id=app producer_byte_rate=2048 request_percentage=25.5" in listed
    assert "user=<default> consumer_byte_rate=4096" in listed
    only_alice = sluice_quota(sluice_bin, b, "list", "--user", "alice").stdout.splitlines()
    assert only_alice == ["user=alice client-id=app producer_byte_rate=2048 request_percentage=25.5"]
    # Kafka's validation: positive values, integral byte rates, known keys only.
    refused = sluice_quota(sluice_bin, b, "set", "--client-id", "x", "--request-percentage", "0", ok=False)
    assert refused.returncode != 0 and "InvalidRequest" in refused.stderr, refused.stderr
    sluice_quota(sluice_bin, b, "remove", "--user", "alice", "--client-id", "app", "--key", "request_percentage")
    assert "user=alice client-id=app producer_byte_rate=2048" in sluice_quota(sluice_bin, b, "list").stdout
    sluice_quota(sluice_bin, b, "remove", "--user", "alice", "--client-id", "app")
    broker.restart()
    assert sluice_quota(sluice_bin, b, "list").stdout.splitlines() == ["user=<default> consumer_byte_rate=4096"]


def test_a_producer_is_held_to_its_quota_and_others_are_not_slowed(broker, sluice_bin, topic_name):
    sluice_quota(sluice_bin, broker.bootstrap, "set", "--client-id", "slow", "--producer-byte-rate", str(QUOTA))
    rates = {}

    def run(client_id: str, seconds: float):
        rates[client_id] = produce_for({"bootstrap.servers": broker.bootstrap, "client.id": client_id},
                                       f"{topic_name}-{client_id}", seconds)

    threads = [threading.Thread(target=run, args=("slow", 20)), threading.Thread(target=run, args=("fast", 10))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    slow_rate, slow_throttles = rates["slow"]
    fast_rate, fast_throttles = rates["fast"]
    # Payload bytes are a little below the record bytes the quota counts.
    assert 0.8 * QUOTA <= slow_rate <= 1.2 * QUOTA, f"throttled producer ran at {slow_rate / MB:.2f} MB/s"
    assert slow_throttles.events and max(slow_throttles.events) > 0, "librdkafka saw no throttle_time_ms"
    assert fast_rate > 10 * QUOTA, f"the unthrottled producer ran at only {fast_rate / MB:.2f} MB/s"
    assert not fast_throttles.events or max(fast_throttles.events) == 0


def test_a_consumer_is_held_to_its_quota(broker, sluice_bin, topic_name):
    total = 6 * MB
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20})
    for _ in range(total // len(PAYLOAD)):
        while True:
            try:
                producer.produce(topic_name, PAYLOAD)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    sluice_quota(sluice_bin, broker.bootstrap, "set", "--client-id", "reader", "--consumer-byte-rate", str(QUOTA))
    throttles = Throttles()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name, "client.id": "reader",
                         "auto.offset.reset": "earliest", "throttle_cb": throttles})
    consumer.subscribe([topic_name])
    got, start, first = 0, time.monotonic(), None
    while got < total and time.monotonic() - start < 60:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            first = first or time.monotonic()
            got += len(msg.value())
    elapsed = time.monotonic() - first
    consumer.close()
    assert got == total, f"consumed {got} of {total} bytes"
    rate = got / elapsed
    # The first second's worth comes at once, so the rate over 6 MB is slightly above the quota.
    assert 0.8 * QUOTA <= rate <= 1.3 * QUOTA, f"throttled consumer read at {rate / MB:.2f} MB/s"
    assert throttles.events and max(throttles.events) > 0


def test_a_user_quota_applies_to_the_sasl_principal(sluice_bin, tmp_path, request, topic_name):
    from conftest import Broker
    port = free_port()
    broker = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log", ["--sasl-listen", f"127.0.0.1:{port}"])
    request.node.sluice_broker = broker
    broker.start()
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not port_accepts(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for user in ("alice", "bob"):
            upsert = UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"pw")
            for future in admin.alter_user_scram_credentials([upsert]).values():
                future.result(TIMEOUT_S)
        sluice_quota(sluice_bin, broker.bootstrap, "set", "--user", "alice", "--producer-byte-rate", str(QUOTA // 2))

        def conf(user):
            return {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_PLAINTEXT",
                    "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": user, "sasl.password": "pw"}

        alice_rate, alice_throttles = produce_for(conf("alice"), f"{topic_name}-a", 8)
        bob_rate, _ = produce_for(conf("bob"), f"{topic_name}-b", 3)
        assert alice_rate <= 1.3 * QUOTA // 2 + QUOTA / 8, f"alice ran at {alice_rate / MB:.2f} MB/s"
        assert alice_throttles.events
        assert bob_rate > 5 * QUOTA, f"bob (no quota) ran at only {bob_rate / MB:.2f} MB/s"
    finally:
        code = broker.stop()
    assert code == 0
    assert "panicked at" not in broker.log_text()


def test_fetches_larger_than_a_second_of_quota_still_progress(broker, sluice_bin, topic_name):
    """A fetch bigger than one second's worth of consumer_byte_rate is served and the client then
    waits off the debt; it must never be refused forever (librdkafka asks for up to 1 MiB per
    partition, here ~5 s of quota)."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(timeout=TIMEOUT_S)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20})
    for i in range(1000):
        producer.produce(topic_name, PAYLOAD, partition=i % 2)
    assert producer.flush(TIMEOUT_S) == 0
    sluice_quota(sluice_bin, broker.bootstrap, "set", "--client-id", "slow-reader", "--consumer-byte-rate", "200000")
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name, "client.id": "slow-reader",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic_name])
    got, start = 0, time.monotonic()
    while got < 1000 and time.monotonic() - start < 30:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got += 1
    elapsed = time.monotonic() - start
    consumer.close()
    assert got == 1000, f"consumed {got} of 1000 messages in {elapsed:.1f} s"
    # 1 MB at 200 kB/s: about 5 s, the first second's worth at once.
    assert elapsed >= 3, f"a 200 kB/s consumer read 1 MB in {elapsed:.1f} s"
