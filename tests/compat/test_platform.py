"""`sluice up` as a supervisor: one component dying never takes the others down.

The whole platform runs as `sluice up`; each component is a child process of its own. Killing
one (as an abort or the OOM killer would) must leave the broker serving, be logged, and the
component must come back by itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from conftest import SHUTDOWN_TIMEOUT_S, _die_with_parent, free_port, port_accepts

START_TIMEOUT_S = 60.0


class Platform:
    """One `sluice up` with the broker, registry, KSS, REST proxy and Connect worker on free
    loopback ports, each with its Prometheus endpoint."""

    COMPONENTS = ("broker", "registry", "kss", "http", "connect")

    def __init__(self, binary: str, tmp_path: Path):
        self.broker_port = free_port()
        self.registry_port = free_port()
        self.kss_port = free_port()
        self.http_port = free_port()
        self.connect_port = free_port()
        self.metrics_ports = {c: free_port() for c in self.COMPONENTS}
        self.bootstrap = f"127.0.0.1:{self.broker_port}"
        self.registry_url = f"http://127.0.0.1:{self.registry_port}"
        self.log_path = tmp_path / "up.log"
        cmd = [
            binary, "up",
            "--listen", self.bootstrap,
            "--data-dir", str(tmp_path / "data"),
            "--registry-listen", f"127.0.0.1:{self.registry_port}",
            "--kss-listen", f"127.0.0.1:{self.kss_port}",
            "--http-listen", f"127.0.0.1:{self.http_port}",
            "--connect-listen", f"127.0.0.1:{self.connect_port}",
            "--metrics-listen", f"127.0.0.1:{self.metrics_ports['broker']}",
            "--registry-metrics-listen", f"127.0.0.1:{self.metrics_ports['registry']}",
            "--kss-metrics-listen", f"127.0.0.1:{self.metrics_ports['kss']}",
            "--http-metrics-listen", f"127.0.0.1:{self.metrics_ports['http']}",
            "--connect-metrics-listen", f"127.0.0.1:{self.metrics_ports['connect']}",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env["RUST_LOG"] = "info"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, env=env,
            preexec_fn=_die_with_parent, text=True,
        )
        self.ready = [self.proc.stdout.readline() for _ in self.COMPONENTS]

    def children(self) -> dict[str, int]:
        """Component name → pid of the supervisor's children."""
        found = {}
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                for entry in environ:
                    if entry.startswith(b"SLUICE_UP_COMPONENT="):
                        found[entry.split(b"=", 1)[1].decode()] = int(pid)
        return found

    def registry_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.registry_url}/subjects", timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S * 2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("sluice up ignored SIGTERM")
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def platform(sluice_bin, tmp_path):
    p = Platform(sluice_bin, tmp_path)
    try:
        assert all(line.startswith("sluice up: ") for line in p.ready), (p.ready, p.log_text()[-5000:])
        yield p
    finally:
        code = p.stop()
    assert code == 0, f"sluice up exited with {code}:\n{p.log_text()[-5000:]}"


def wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def round_trip(bootstrap: str, topic: str, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, value)
    assert producer.flush(30) == 0
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.value() == value:
                return
        raise AssertionError(f"{value!r} did not come back from {topic}")
    finally:
        consumer.close()


def test_every_component_runs_in_its_own_process(platform):
    kinds = {line.split(":", 1)[1].split()[0] for line in platform.ready}
    assert kinds == {"broker", "KSS", "schema", "REST", "Connect"}, platform.ready
    children = platform.children()
    assert set(children) == {"broker", "kss", "registry", "http", "connect"}, children
    assert len(set(children.values())) == 5


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="scripts/test.sh installs Debian's prometheus")
def test_prometheus_scrapes_every_component(platform, tmp_path):
    """Each component serves its own metrics; a real Prometheus scrapes all five."""
    # Some traffic for the registry and the proxy to count.
    body = json.dumps({"schema": '{"type":"string"}'}).encode()
    req = urllib.request.Request(f"{platform.registry_url}/subjects/s-value/versions", data=body, method="POST",
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    urllib.request.urlopen(req, timeout=30).read()
    urllib.request.urlopen(f"http://127.0.0.1:{platform.http_port}/v3/clusters", timeout=30).read()
    urllib.request.urlopen(f"http://127.0.0.1:{platform.connect_port}/connectors", timeout=30).read()
    web = free_port()
    targets = ", ".join(f'"127.0.0.1:{port}"' for port in platform.metrics_ports.values())
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: sluice
    static_configs:
      - targets: [{targets}]
""")
    prom = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{web}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def query(expr: str) -> list:
        q = urllib.parse.quote(expr)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/query?query={q}", timeout=5) as r:
                return json.load(r)["data"]["result"]
        except OSError:
            return []

    try:
        wait_for(lambda: len(query("up == 1")) == 5, "Prometheus to find all five targets up", 60)
        wait_for(lambda: query("sluice_registry_schemas == 1"), "the registry's schema count", 30)
        wait_for(lambda: query('sluice_registry_requests_total{route="/subjects/{subject}/versions",code="200"}'),
                 "the registry's request count", 30)
        wait_for(lambda: query("sluice_kss_ca_expiry_timestamp_seconds - time() > 86400 * 300"),
                 "KSS's CA expiry, about ten years ahead", 30)
        wait_for(lambda: query('sluice_http_requests_total{route="/v3/clusters",code="200"} == 1'),
                 "the REST proxy's request count", 30)
        wait_for(lambda: query("sluice_broker_partitions > 0"), "the broker's partitions", 30)
        wait_for(lambda: query('sluice_connect_requests_total{route="/connectors",code="200"} == 1'),
                 "the Connect worker's request count", 30)
    finally:
        prom.terminate()
        prom.wait(30)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGABRT])
def test_a_dying_registry_leaves_the_broker_serving_and_comes_back(platform, sig):
    round_trip(platform.bootstrap, "before-crash", b"one")
    wait_for(platform.registry_answers, "the registry to answer")
    registry = platform.children()["registry"]
    broker = platform.children()["broker"]
    os.kill(registry, sig)
    wait_for(lambda: not platform.registry_answers(), "the registry to go away", 10)
    # The broker never stopped: same process, still serving.
    assert port_accepts(platform.broker_port)
    round_trip(platform.bootstrap, "during-crash", b"two")
    wait_for(platform.registry_answers, "the registry to be restarted", 60)
    children = platform.children()
    assert children["broker"] == broker
    assert children["registry"] != registry
    log = platform.log_text()
    assert "exited unexpectedly" in log and "registry" in log, log[-3000:]
    assert platform.proc.poll() is None


def test_a_dying_broker_is_restarted_and_keeps_its_data(platform):
    round_trip(platform.bootstrap, "kept", b"durable")
    os.kill(platform.children()["broker"], signal.SIGKILL)
    wait_for(lambda: not port_accepts(platform.broker_port), "the broker to go away", 10)
    wait_for(lambda: port_accepts(platform.broker_port), "the broker to be restarted", 60)
    consumer = Consumer({
        "bootstrap.servers": platform.bootstrap, "group.id": "after-restart",
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe(["kept"])
    deadline = time.monotonic() + 30
    got = None
    try:
        while time.monotonic() < deadline and got is None:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got = msg.value()
    finally:
        consumer.close()
    assert got == b"durable"
    assert platform.proc.poll() is None
