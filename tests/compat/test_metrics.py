"""The broker's Prometheus endpoint (`--metrics-listen`), scraped by a real Prometheus server
(Debian's `prometheus` package) and queried through its HTTP API: per-topic bytes and messages,
request latency per API, connections, partitions, log directory sizes and free space, fsync
latency and consumer-group lag — the series operators build dashboards and alerts on.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from conftest import Broker, free_port

PROMETHEUS = shutil.which("prometheus")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def scrape(port: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


def value(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


@pytest.fixture
def metrics_broker(sluice_bin, tmp_path):
    port = free_port()
    b = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log", ["--metrics-listen", f"127.0.0.1:{port}"])
    b.start()
    b.metrics_port = port
    try:
        yield b
    finally:
        assert b.stop() == 0, b.log_tail()


def traffic(broker, topic: str, n: int, group: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(n):
        producer.produce(topic, value=b"x" * 100, key=str(i).encode())
    assert producer.flush(30) == 0
    # Consumes half and commits, so the group lags by the other half.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 30
    while got < n // 2 and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            got += 1
    consumer.commit(asynchronous=False)
    consumer.close()
    assert got >= n // 2


def test_the_endpoint_serves_the_broker_metrics(metrics_broker, topic_name):
    traffic(metrics_broker, topic_name, 200, "lagging")
    content_type, text = scrape(metrics_broker.metrics_port)
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    assert value(text, f'sluice_broker_topic_messages_in_total{{topic="{topic_name}"}}') == 200
    assert value(text, f'sluice_broker_topic_bytes_in_total{{topic="{topic_name}"}}') > 200 * 100
    assert value(text, f'sluice_broker_topic_bytes_out_total{{topic="{topic_name}"}}') > 100 * 100
    assert value(text, 'sluice_broker_request_duration_seconds_count{api="Produce"}') >= 1
    assert value(text, 'sluice_broker_request_duration_seconds_bucket{api="Fetch",le="+Inf"}') >= 1
    assert value(text, "sluice_broker_partitions") >= 2
    assert value(text, "sluice_broker_under_min_isr_partitions") == 0
    assert value(text, "sluice_broker_fsync_duration_seconds_count") >= 1
    lag = sum(value(text, f'sluice_broker_consumer_group_lag{{group="lagging",topic="{topic_name}",partition="{p}"}}') or 0
              for p in range(2))
    assert 0 < lag <= 100, lag
    data_dir = str(metrics_broker.data_dir.resolve())
    assert value(text, f'sluice_broker_log_dir_size_bytes{{dir="{data_dir}"}}') > 200 * 100
    assert value(text, f'sluice_broker_log_dir_free_bytes{{dir="{data_dir}"}}') > 0
    assert value(text, "sluice_broker_connections") >= 0
    # Deleting the topic drops its series.
    admin = KafkaAdminClient(bootstrap_servers=metrics_broker.bootstrap)
    admin.delete_topics([topic_name])
    admin.close()
    _, text = scrape(metrics_broker.metrics_port)
    assert f'topic="{topic_name}"' not in text, text


@pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus package is not installed (scripts/test.sh installs it)")
def test_prometheus_scrapes_the_broker(metrics_broker, topic_name, tmp_path):
    traffic(metrics_broker, topic_name, 100, "g")
    web = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: sluice
    static_configs:
      - targets: ["127.0.0.1:{metrics_broker.metrics_port}"]
""")
    checked = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{web}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        query = urllib.parse.quote(f'sluice_broker_topic_messages_in_total{{topic="{topic_name}"}}')
        deadline = time.monotonic() + 60
        result = []
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/query?query={query}", timeout=5) as r:
                    result = json.load(r)["data"]["result"]
            except OSError:
                result = []
            if result:
                break
            time.sleep(0.5)
        assert result, "Prometheus never scraped the series"
        assert float(result[0]["value"][1]) == 100
        # The target is up and every sample parsed (a malformed line fails the whole scrape).
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/targets", timeout=5) as r:
            targets = json.load(r)["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"], targets
        # Every query of the Grafana dashboard is valid PromQL over metrics the broker exports.
        _, scraped = scrape(metrics_broker.metrics_port)
        exported = {line.split()[2] for line in scraped.splitlines() if line.startswith("# TYPE ")}
        dashboard = json.loads((DEPLOY / "grafana" / "sluice-broker.json").read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$instance", ".*")
                used = set(re.findall(r"sluice_[a-z_]+", expr))
                bases = {re.sub(r"_(bucket|count|sum)$", "", m) for m in used}
                assert bases <= exported, (panel["title"], bases - exported)
                q = urllib.parse.quote(expr)
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/query?query={q}", timeout=5) as r:
                    assert json.load(r)["status"] == "success", expr
    finally:
        prom.terminate()
        prom.wait(30)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="the prometheus package is not installed")
def test_the_alert_rules_are_valid_and_fire_as_their_unit_tests_say():
    rules = DEPLOY / "prometheus"
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        checked = subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=rules)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_an_open_scrape_connection_does_not_hold_the_broker_at_shutdown(metrics_broker, topic_name):
    traffic(metrics_broker, topic_name, 10, "g")
    # Prometheus keeps its connection open between scrapes.
    conn = http.client.HTTPConnection("127.0.0.1", metrics_broker.metrics_port, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    assert response.status == 200 and b"sluice_broker_partitions" in response.read()
    try:
        assert metrics_broker.stop() == 0, metrics_broker.log_tail()
        # The broker closed its logs rather than falling back to syncing shared state.
        assert "state still shared" not in metrics_broker.log_text(), metrics_broker.log_tail()
    finally:
        conn.close()
