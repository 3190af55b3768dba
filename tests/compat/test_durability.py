"""Data survives a clean restart, and every acks=all acknowledgement survives kill -9."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from confluent_kafka import Producer

from clients import (
    Msg,
    assert_roundtrip,
    confluent_consume,
    confluent_produce,
    create_topic,
    make_messages,
    mid_of,
)

PARTITIONS = 6


def test_restart_between_produce_and_consume(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, PARTITIONS)
    msgs = make_messages(30_000, PARTITIONS, seed=21)
    delivery = confluent_produce(broker.bootstrap, topic_name, msgs, {"compression.type": "lz4", "acks": "1"})
    assert delivery.errors == []
    broker.restart()
    got = confluent_consume(broker.bootstrap, topic_name, PARTITIONS, expected=len(msgs))
    assert_roundtrip(msgs, got, delivery)

    # The log keeps going where it stopped: new records get the next offsets.
    more = [Msg(len(msgs) + i, m.partition, m.key, m.value, (("mid", b"%d" % (len(msgs) + i)),))
            for i, m in enumerate(msgs[:PARTITIONS])]
    d2 = confluent_produce(broker.bootstrap, topic_name, more)
    ends = {p: sum(1 for m in msgs if m.partition == p) for p in range(PARTITIONS)}
    for m in more:
        assert d2.offsets[m.mid] == (m.partition, ends[m.partition])


class BackgroundProducer:
    """Produces numbered messages as fast as the broker acknowledges them, recording every ack."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, conf: dict):
        self.topic = topic
        self.partitions = partitions
        self.acked: list[int] = []
        self.errors: list[str] = []
        self.sent = 0
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 60_000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 200,
            **conf,
        })
        self.thread = threading.Thread(target=self.run, daemon=True)

    def on_delivery(self, err, mid):
        with self.lock:
            if err is None:
                self.acked.append(mid)
            else:
                self.errors.append(f"{mid}: {err}")

    def run(self):
        while not self.stop_event.is_set():
            mid = self.sent
            try:
                self.producer.produce(self.topic, value=b"payload-%d" % mid + b"." * (mid % 100), key=b"k%d" % mid,
                                      partition=mid % self.partitions, headers=[("mid", b"%d" % mid)],
                                      on_delivery=lambda err, _msg, mid=mid: self.on_delivery(err, mid))
                self.sent += 1
            except BufferError:
                pass
            self.producer.poll(0.001 if self.sent % 50 == 0 else 0)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def wait_acked(self, n: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.acked_count() < n:
            assert time.monotonic() < deadline, f"only {self.acked_count()} of {n} acks after {timeout_s}s"
            time.sleep(0.02)

    def stop_producing(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)

    def finish(self, timeout_s: float) -> int:
        """Waits for outstanding deliveries; returns how many are still undelivered."""
        return self.producer.flush(timeout_s)


@pytest.mark.timeout(240)
def test_kill9_during_acks_all_stream_keeps_every_ack(broker, topic_name):
    create_topic(broker.bootstrap, topic_name, 3)
    bg = BackgroundProducer(broker.bootstrap, topic_name, 3, {"enable.idempotence": False,
                                                               "message.timeout.ms": 3_000})
    bg.thread.start()
    try:
        bg.wait_acked(5_000, timeout_s=60)
        broker.kill9()
        time.sleep(0.5)
        bg.stop_producing()
        # Messages in flight at the kill fail (message timeout); only those already acked count.
        bg.finish(15)
        with bg.lock:
            acked = list(bg.acked)
        assert len(acked) >= 5_000
        # The kill really landed mid-stream: some messages were sent but never acknowledged.
        assert bg.sent > len(acked)
    finally:
        bg.stop_producing()
        bg.producer.purge()

    broker.start()
    got = confluent_consume(broker.bootstrap, topic_name, 3, expected=len(acked), settle_s=2)
    present = {mid_of(r.headers) for r in got}
    missing = sorted(set(acked) - present)
    assert not missing, f"{len(missing)} acknowledged messages lost after kill -9, e.g. {missing[:10]}"
    # Every stored record is intact (no torn tail served) and each partition's offsets are gap-free.
    for r in got:
        mid = mid_of(r.headers)
        assert r.value == b"payload-%d" % mid + b"." * (mid % 100)
        assert r.partition == mid % 3


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill9_idempotent_producer_exactly_once(broker, topic_name):
    """An idempotent producer that outlives a broker crash ends with each message exactly once."""
    create_topic(broker.bootstrap, topic_name, 3)
    bg = BackgroundProducer(broker.bootstrap, topic_name, 3, {"enable.idempotence": True})
    bg.thread.start()
    try:
        bg.wait_acked(5_000, timeout_s=60)
        broker.kill9()
        time.sleep(1.0)
        broker.start()
        bg.wait_acked(bg.acked_count() + 5_000, timeout_s=60)
        bg.stop_producing()
        assert bg.finish(60) == 0, "producer could not deliver everything after the broker restarted"
    finally:
        bg.stop_producing()
    assert bg.errors == [], f"delivery errors: {bg.errors[:5]}"
    sent = bg.sent
    assert sorted(bg.acked) == list(range(sent))

    got = confluent_consume(broker.bootstrap, topic_name, 3, expected=sent, settle_s=2)
    mids = [mid_of(r.headers) for r in got]
    dupes = len(mids) - len(set(mids))
    assert dupes == 0, f"{dupes} duplicates after restart"
    assert sorted(mids) == list(range(sent))
    # Idempotence also preserves per-partition order across the crash.
    for p in range(3):
        part = [mid_of(r.headers) for r in got if r.partition == p]
        assert part == sorted(part), f"partition {p} out of order"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown_during_acks_all_stream(broker, topic_name, sig):
    """SIGTERM/SIGINT mid-stream: a clean exit (code 0), and every acknowledged message is kept."""
    create_topic(broker.bootstrap, topic_name, 3)
    bg = BackgroundProducer(broker.bootstrap, topic_name, 3, {"message.timeout.ms": 3_000})
    bg.thread.start()
    try:
        bg.wait_acked(3_000, timeout_s=60)
        code = broker.stop(sig)
        assert code == 0, f"broker exited with {code} on {sig!r}"
        bg.stop_producing()
        bg.finish(15)
        with bg.lock:
            acked = list(bg.acked)
    finally:
        bg.stop_producing()
        bg.producer.purge()
    broker.start()
    got = confluent_consume(broker.bootstrap, topic_name, 3, expected=len(acked), settle_s=1)
    missing = set(acked) - {mid_of(r.headers) for r in got}
    assert not missing, f"{len(missing)} acknowledged messages lost after a graceful stop"
