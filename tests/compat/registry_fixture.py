"""A `sluice registry` process for the schema registry compat tests (imported by test_registry*.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import SHUTDOWN_TIMEOUT_S, _die_with_parent, free_port

REGISTRY_STARTUP_TIMEOUT_S = 60.0


class Registry:
    """One `sluice registry` process against a broker; restartable on the same port."""

    def __init__(self, binary: str, bootstrap: str, log_path: Path, leader_url: str | None = None,
                 topic: str | None = None):
        self.binary = binary
        self.bootstrap = bootstrap
        self.log_path = log_path
        self.leader_url = leader_url
        self.topic = topic  # the state topic (`--topic`); None keeps the default `_schemas`
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [self.binary, "registry", "--listen", f"127.0.0.1:{self.port}", "--bootstrap-server", self.bootstrap]
        if self.leader_url:
            cmd += ["--leader-url", self.leader_url]
        if self.topic:
            cmd += ["--topic", self.topic]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + REGISTRY_STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited with {self.proc.returncode}:\n{self.log_path.read_text()[-5000:]}")
            try:
                self.call("GET", "/subjects")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"registry did not answer on {self.url} within {REGISTRY_STARTUP_TIMEOUT_S}s")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def restart(self) -> None:
        assert self.stop() == 0, "registry did not stop cleanly"
        self.start()

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        """One REST call; returns (HTTP status, decoded JSON body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


@pytest.fixture
def registry(sluice_bin, broker, tmp_path):
    r = Registry(sluice_bin, broker.bootstrap, tmp_path / "registry.log")
    r.start()
    try:
        yield r
    finally:
        code = r.stop()
        assert code == 0, f"registry exited with {code}:\n{(tmp_path / 'registry.log').read_text()[-5000:]}"


def round_trip(broker, topic, serializer, deserializer, values):
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for v in values:
        payload = serializer(v, SerializationContext(topic, MessageField.VALUE))
        assert payload[0] == 0, "Confluent wire format starts with magic byte 0"
        producer.produce(topic, payload)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(values) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        got.append(deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE)))
    consumer.close()
    return got
