"""KSS end to end: a broker with an mTLS listener and ACLs, KSS applying an acl.yml and issuing
certificates, and sidecars whose files alone configure confluent-kafka clients."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from confluent_kafka.admin import AclOperation

from conftest import Broker, _die_with_parent, free_port, port_accepts
from test_tls_acl import Pki, allow, cn, consume_all, create_acls, create_topics, end_offset, produce_one

ACL_YML = """\
services:
  orders-svc:
    produces: [orders]
  analytics-svc:
    consumes: [orders]
    groups: [analytics]
  retired-svc:
    disabled: true
"""


@dataclass
class Kss:
    """A running `sluice kss` with its broker."""

    sluice: str
    url: str
    proc: subprocess.Popen
    log: Path
    dir: Path
    broker: Broker
    ssl_bootstrap: str
    admin_conf: dict
    acl_file: Path
    admin_x: list[str]

    def token(self, service: str, *extra: str) -> str:
        out = subprocess.run([self.sluice, "kss", "token", "--service", service,
                              "--issuer-key", str(self.dir / "issuer.key"), *extra],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def sidecar(self, service: str, out_dir: Path, *extra: str, token: str | None = None) -> subprocess.CompletedProcess:
        token_file = out_dir.parent / f"{out_dir.name}.token"
        token_file.write_text(token or self.token(service))
        return subprocess.run([self.sluice, "sidecar", "--once", "--once-timeout-secs", "5", "--kss", self.url,
                               "--dir", str(out_dir), "--token-file", str(token_file),
                               "--bootstrap", self.ssl_bootstrap, *extra],
                              capture_output=True, text=True, timeout=60)

    def post_csr(self, csr_pem: str, token: str | None) -> tuple[int, dict]:
        req = urllib.request.Request(f"{self.url}/v1/certificates", data=json.dumps({"csr": csr_pem}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def drift(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/v1/acls/drift", timeout=10) as resp:
            return json.loads(resp.read())

    def acl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.sluice, "acl", *args, "-b", self.ssl_bootstrap, *self.admin_x],
                              capture_output=True, text=True, timeout=60)


def wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def client_conf(directory: Path, **extra) -> dict:
    """librdkafka settings read only from the sidecar's client.properties."""
    conf = {}
    for line in (directory / "client.properties").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            conf[key] = value
    conf["socket.timeout.ms"] = 10_000
    conf.update(extra)
    return conf


@pytest.fixture
def kss(sluice_bin, tmp_path, request):
    pki = Pki(tmp_path / "pki", "broker-ca")
    server = pki.issue("server", [cn("localhost")], server=True)
    admin = pki.issue("admin", [cn("admin")])
    kss_dir = tmp_path / "kss"
    acl_file = tmp_path / "acl.yml"
    acl_file.write_text(ACL_YML)
    ssl_port = free_port()
    ssl_bootstrap = f"127.0.0.1:{ssl_port}"
    admin_x = ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={pki.ca_path}",
               "-X", f"ssl.certificate.location={admin.cert}", "-X", f"ssl.key.location={admin.key}"]
    kss_port = free_port()
    log = tmp_path / "kss.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["RUST_LOG"] = "info"
    cmd = [sluice_bin, "kss", "--listen", f"127.0.0.1:{kss_port}", "--ca-dir", str(kss_dir / "ca"),
           "--dev-issuer-key", str(kss_dir / "issuer.key"), "--trust-bundle", str(pki.ca_path),
           "--acl-file", str(acl_file), "--sync-interval-ms", "300", "--cert-lifetime-secs", "3600",
           "-b", ssl_bootstrap, *admin_x]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=_die_with_parent)
    broker = None
    try:
        wait_for(lambda: port_accepts(kss_port) or proc.poll() is not None, "KSS to listen")
        assert proc.poll() is None, log.read_text()
        # The broker trusts client certificates from KSS and from the operator's PKI (admin).
        bundle = tmp_path / "client-cas.pem"
        bundle.write_text((kss_dir / "ca" / "ca.pem").read_text() + pki.ca_path.read_text())
        args = ["--ssl-listen", ssl_bootstrap, "--ssl-advertised", ssl_bootstrap,
                "--ssl-cert", str(server.cert), "--ssl-key", str(server.key), "--ssl-ca", str(bundle),
                "--ssl-client-auth", "required", "--acls", "--super-users", "User:CN=admin"]
        broker = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log", args)
        request.node.sluice_broker = broker
        broker.start()
        admin_conf = {"bootstrap.servers": ssl_bootstrap, "security.protocol": "SSL",
                      "ssl.ca.location": str(pki.ca_path), "ssl.certificate.location": str(admin.cert),
                      "ssl.key.location": str(admin.key), "socket.timeout.ms": 10_000}
        k = Kss(sluice_bin, f"http://127.0.0.1:{kss_port}", proc, log, kss_dir, broker, ssl_bootstrap, admin_conf,
                acl_file, admin_x)
        wait_for(lambda: k.drift().get("in_sync"), "KSS to apply acl.yml")
        from confluent_kafka.admin import AdminClient
        create_topics(AdminClient(admin_conf), ["orders"])
        yield k
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed"
        if broker is not None:
            assert broker.stop() == 0
    assert code == 0, f"KSS exited with {code} on SIGTERM:\n{log.read_text()[-5000:]}"
    assert "panicked at" not in log.read_text()


def subject_of(cert_path: Path) -> str:
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).subject.rfc4514_string()


def test_sidecar_credentials_drive_real_clients(kss, tmp_path):
    orders, analytics = tmp_path / "orders", tmp_path / "analytics"
    for service, d in (("orders-svc", orders), ("analytics-svc", analytics)):
        out = kss.sidecar(service, d)
        assert out.returncode == 0, out.stderr
        assert stat.S_IMODE((d / "key.pem").stat().st_mode) == 0o600
        assert subject_of(d / "cert.pem") == f"CN={service}"
    assert produce_one(client_conf(orders), "orders", b"order-1") is None
    assert consume_all(client_conf(analytics), "orders", "analytics", 1) == [b"order-1"]
    before = end_offset(kss.admin_conf, "orders")
    err = produce_one(client_conf(analytics), "orders", b"forged")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert end_offset(kss.admin_conf, "orders") == before, "a refused produce must not append"
    assert "event=\"issued\"" in kss.log.read_text() or "certificate issued" in kss.log.read_text()

    # Renewal: new key and certificate in place; a new client uses them with no broker restart.
    serial = x509.load_pem_x509_certificate((orders / "cert.pem").read_bytes()).serial_number
    assert kss.sidecar("orders-svc", orders).returncode == 0
    renewed = x509.load_pem_x509_certificate((orders / "cert.pem").read_bytes()).serial_number
    assert renewed != serial
    assert produce_one(client_conf(orders), "orders", b"order-2") is None


def test_csr_asking_for_admin_gets_the_service_cn(kss):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]))
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("admin.example")]), critical=False)
           .sign(key, hashes.SHA256()))
    status, body = kss.post_csr(csr.public_bytes(serialization.Encoding.PEM).decode(), kss.token("orders-svc"))
    assert status == 200, body
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    assert cert.subject.rfc4514_string() == "CN=orders-svc"
    # Not a CA: an end-entity certificate carries no basicConstraints (or cA=FALSE).
    try:
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    except x509.ExtensionNotFound:
        pass
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.serial_number.bit_length() > 64
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_bad_tokens_are_refused_with_the_reason(kss, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    forged = subprocess.run([kss.sluice, "kss", "token", "--service", "orders-svc", "--issuer-key",
                             str(tmp_path / "attacker.key")], capture_output=True, text=True).stdout.strip()
    cases = {
        "missing": None,
        "forged": forged,
        "expired": kss.token("orders-svc", "--expires-in-secs", "-120"),
        "wrong audience": kss.token("orders-svc", "--audience", "someone-else"),
    }
    for reason, token in cases.items():
        status, body = kss.post_csr(csr, token)
        assert status == 401 and reason in body["error"], (reason, status, body)
    token = kss.token("orders-svc")
    assert kss.post_csr(csr, token)[0] == 200
    status, body = kss.post_csr(csr, token)
    assert status == 401 and "replayed" in body["error"], body
    assert "certificate refused" in kss.log.read_text()


def test_disabled_service_gets_no_certificate(kss, tmp_path):
    out = kss.sidecar("retired-svc", tmp_path / "retired")
    assert out.returncode != 0
    assert "disabled" in out.stderr, out.stderr
    assert not (tmp_path / "retired" / "cert.pem").exists()


def test_hand_added_binding_is_drift_and_apply_removes_it(kss, tmp_path):
    from confluent_kafka.admin import AdminClient
    create_acls(AdminClient(kss.admin_conf), [allow("User:CN=analytics-svc", "orders", AclOperation.WRITE)])
    plan = kss.acl("plan", "--file", str(kss.acl_file))
    assert plan.returncode == 0, plan.stderr
    removed = plan.stdout.split("to remove")[1]
    assert "User:CN=analytics-svc" in removed and "WRITE" in removed.upper(), plan.stdout
    report = wait_for(lambda: (d := kss.drift()) and d["unexpected"] and d, "drift report")
    assert report["in_sync"] is False
    apply = kss.acl("apply", "--file", str(kss.acl_file))
    assert apply.returncode == 0, apply.stderr
    again = kss.acl("apply", "--file", str(kss.acl_file))
    assert "nothing to do" in again.stdout, again.stdout
    wait_for(lambda: kss.drift()["in_sync"], "drift to clear")
    assert "ACL drift" in kss.log.read_text()

    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  orders-svc:\n    produces: [orders]\n    consume: [x]\n")
    out = subprocess.run([kss.sluice, "acl", "validate", "--file", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and f"{bad}:4:" in out.stderr, out.stderr


def test_daemon_renewal_is_used_without_a_broker_restart(kss, tmp_path):
    """A sidecar renewing a 12 s certificate: the files change under a running producer, whose
    established connection keeps working, and a client created afterwards uses the new files."""
    from confluent_kafka import Producer
    out = tmp_path / "orders"
    token_file = tmp_path / "orders.token"
    token_file.write_text(kss.token("orders-svc"))
    proc = subprocess.Popen([kss.sluice, "sidecar", "--kss", kss.url, "--dir", str(out), "--token-file",
                             str(token_file), "--bootstrap", kss.ssl_bootstrap, "--lifetime-secs", "12"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
    try:
        wait_for(lambda: (out / "client.properties").exists(), "first credentials")
        first = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes()).serial_number
        token_file.write_text(kss.token("orders-svc"))  # tokens are single-use: the next renewal needs a new one
        producer = Producer({**client_conf(out), "acks": "all", "message.timeout.ms": 15_000})
        delivered: list = []
        producer.produce("orders", b"before-renewal", on_delivery=lambda e, m: delivered.append(e))
        assert producer.flush(30) == 0 and delivered == [None]
        wait_for(lambda: x509.load_pem_x509_certificate((out / "cert.pem").read_bytes()).serial_number != first,
                 "renewal at ~2/3 of 12 s", timeout=20)
        producer.produce("orders", b"after-renewal-old-client", on_delivery=lambda e, m: delivered.append(e))
        assert producer.flush(30) == 0 and delivered == [None, None]
        assert produce_one(client_conf(out), "orders", b"after-renewal-new-client") is None
        assert kss.broker.running(), "no broker restart"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, proc.stderr.read().decode() if proc.stderr else ""


def test_edited_acl_file_is_applied_and_can_disable_a_service(kss, tmp_path):
    kss.acl_file.write_text(ACL_YML.replace("  retired-svc:", "  billing-svc:\n    consumes: [orders]\n  retired-svc:")
                            .replace("    produces: [orders]\n", "    produces: [orders]\n    disabled: true\n"))

    def billing_listed():
        out = kss.acl("list", "--principal", "User:CN=billing-svc")
        return out.returncode == 0 and "orders" in out.stdout

    wait_for(billing_listed, "KSS to apply the edited acl.yml")
    out = kss.sidecar("orders-svc", tmp_path / "orders")
    assert out.returncode != 0 and "disabled" in out.stderr, out.stderr
    assert kss.sidecar("billing-svc", tmp_path / "billing").returncode == 0
