"""OpenTelemetry traces: spans exported over OTLP/HTTP when the standard environment asks for it.

No OpenTelemetry collector can be installed here (Debian and PyPI carry none), so the receiver is
a plain HTTP server that decodes what arrives with the OpenTelemetry project's own protobuf
classes (`opentelemetry-proto`): the exporter, the wire format and the decoder are all theirs.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from confluent_kafka import Producer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from conftest import Broker, free_port
from registry_fixture import Registry

DEADLINE_S = 30


class Collector:
    """Accepts OTLP/HTTP protobuf trace exports and keeps (service name, span name, attributes)."""

    def __init__(self):
        self.spans: list[tuple[str, str, dict]] = []
        self.content_types: set[str] = set()
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector.lock:
                    collector.content_types.add(f"{self.path} {self.headers['Content-Type']}")
                    for resource_spans in request.resource_spans:
                        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                        for scope in resource_spans.scope_spans:
                            for span in scope.spans:
                                attrs = {a.key: a.value for a in span.attributes}
                                attrs["trace_id"] = span.trace_id.hex()
                                attrs["parent_span_id"] = span.parent_span_id.hex()
                                collector.spans.append((resource.get("service.name", ""), span.name, attrs))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, service: str, name: str, where=lambda attrs: True) -> dict:
        """The attributes of the first span `name` from `service` that `where` accepts."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            with self.lock:
                for svc, span_name, attrs in self.spans:
                    if (svc, span_name) == (service, name) and where(attrs):
                        return attrs
            time.sleep(0.1)
        with self.lock:
            seen = sorted({(s, n) for s, n, _ in self.spans})
        pytest.fail(f"no span {name!r} from {service!r} within {DEADLINE_S}s; received {seen}")


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.server.shutdown()


def test_broker_and_registry_export_spans_over_otlp(sluice_bin, tmp_path, monkeypatch, collector):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    broker = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log")
    broker.start()
    registry = Registry(sluice_bin, broker.bootstrap, tmp_path / "registry.log")
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "trace-test"})
        producer.produce("traced", b"hello")
        assert producer.flush(DEADLINE_S) == 0

        produce = collector.wait_for("sluice-broker", "Produce")
        assert produce["kafka.client_id"].string_value == "trace-test"
        assert produce["messaging.system"].string_value == "kafka"
        assert produce["kafka.api_version"].int_value >= 3

        registry.start()
        # A caller's W3C trace context is continued: the span joins its trace, under its span.
        trace_id, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        request = urllib.request.Request(f"{registry.url}/subjects",
                                         headers={"traceparent": f"00-{trace_id}-{caller_span}-01"})
        with urllib.request.urlopen(request, timeout=DEADLINE_S) as resp:
            assert resp.status == 200
        # (The registry's start-up polls made GET /subjects spans of their own, in new traces.)
        subjects = collector.wait_for("sluice-registry", "GET /subjects", lambda a: a["trace_id"] == trace_id)
        assert subjects["http.route"].string_value == "/subjects"
        assert subjects["http.response.status_code"].int_value == 200
        assert subjects["parent_span_id"] == caller_span
        assert collector.content_types == {"/v1/traces application/x-protobuf"}
    finally:
        registry.stop()
        assert broker.stop() == 0


def test_no_spans_leave_without_the_environment(sluice_bin, tmp_path, monkeypatch, collector):
    """Off by default: a broker started without OTEL_EXPORTER_OTLP_* sends nothing anywhere."""

    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    broker = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log")
    broker.start()
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce("untraced", b"x")
        assert producer.flush(DEADLINE_S) == 0
    finally:
        assert broker.stop() == 0
    time.sleep(0.5)
    assert collector.spans == []
