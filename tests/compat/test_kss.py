"""KSS end to end: a broker with an mTLS listener and ACLs, KSS applying an acl.yml and issuing
certificates over HTTPS, and sidecars whose files alone configure confluent-kafka clients; then
the hardening: planted symlinks, impersonated or broken KSS answers, reserved and unsafe service
ids, token replay across a restart, tokens from the future, drift authorization, deadlines and
body limits."""

from __future__ import annotations

import base64
import datetime
import http.client
import http.server
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from confluent_kafka.admin import AclOperation

from conftest import Broker, _die_with_parent, free_port, port_accepts
from pki import Pki, cn
from test_tls_acl import allow, consume_all, create_acls, create_topics, end_offset, produce_one

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


ADMIN_SERVICE = "kss-admin"
RESERVED = "ops"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(issuer_key: Path | None, sub: str, **claims) -> str:
    """An EdDSA token with any claims (the CLI only mints valid ones); None signs with a throwaway key."""
    if issuer_key is None:
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        # ring writes PKCS#8 v2 (with the public key), which `cryptography` does not parse: take the
        # 32-byte seed from the OCTET STRING inside the privateKey OCTET STRING.
        der = base64.b64decode("".join(issuer_key.read_text().strip().splitlines()[1:-1]))
        at = der.index(bytes([0x04, 0x22, 0x04, 0x20])) + 4
        key = ed25519.Ed25519PrivateKey.from_private_bytes(der[at:at + 32])
    now = int(time.time())
    body = {"sub": sub, "aud": "sluice-kss", "exp": now + 300, "iat": now, "jti": uuid.uuid4().hex, **claims}
    signing_input = f"{b64url(json.dumps({'alg': 'EdDSA', 'typ': 'JWT'}).encode())}.{b64url(json.dumps(body).encode())}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"


def https_request(url: str, cafile: Path, method: str = "GET", body: bytes | None = None,
                  token: str | None = None, timeout: float = 10) -> tuple[int, dict | str]:
    """(status, JSON body or text), verifying the server against `cafile` only."""
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=str(cafile))
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def new_csr() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    return key, csr


def run_sidecar(sluice: str, url: str, out_dir: Path, token: str, *extra: str,
                timeout: float = 60) -> subprocess.CompletedProcess:
    token_file = out_dir.parent / f"{out_dir.name}.token"
    token_file.write_text(token)
    return subprocess.run([sluice, "sidecar", "--once", "--once-timeout-secs", "5", "--kss", url,
                           "--dir", str(out_dir), "--token-file", str(token_file), *extra],
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class Kss:
    """A running `sluice kss` (HTTPS, its own CA) with its broker."""

    sluice: str
    url: str
    cmd: list[str]
    env: dict
    port: int
    proc: subprocess.Popen
    log: Path
    dir: Path
    broker: Broker
    ssl_bootstrap: str
    admin_conf: dict
    acl_file: Path
    admin_x: list[str]

    @property
    def ca(self) -> Path:
        """What sidecars and HTTPS clients trust: the KSS CA."""
        return self.dir / "ca" / "ca.pem"

    def token(self, service: str, *extra: str) -> str:
        out = subprocess.run([self.sluice, "kss", "token", "--service", service,
                              "--issuer-key", str(self.dir / "issuer.key"), *extra],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def mint(self, sub: str, **claims) -> str:
        return mint(self.dir / "issuer.key", sub, **claims)

    def sidecar(self, service: str, out_dir: Path, *extra: str, token: str | None = None,
                kss_ca: Path | None = None) -> subprocess.CompletedProcess:
        return run_sidecar(self.sluice, self.url, out_dir, token or self.token(service),
                           "--kss-ca", str(kss_ca or self.ca), "--bootstrap", self.ssl_bootstrap, *extra)

    def request(self, method: str, path: str, body: bytes | None = None,
                token: str | None = None) -> tuple[int, dict | str]:
        return https_request(f"{self.url}{path}", self.ca, method, body, token)

    def post_csr(self, csr_pem: str, token: str | None) -> tuple[int, dict]:
        return self.request("POST", "/v1/certificates", json.dumps({"csr": csr_pem}).encode(), token)

    def drift(self) -> dict:
        status, body = self.request("GET", "/v1/acls/drift", token=self.mint(ADMIN_SERVICE))
        assert status == 200, (status, body)
        return body

    def acl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.sluice, "acl", *args, "-b", self.ssl_bootstrap, *self.admin_x],
                              capture_output=True, text=True, timeout=60)

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env, preexec_fn=_die_with_parent)
        wait_for(lambda: port_accepts(self.port) or self.proc.poll() is not None, "KSS to listen")
        assert self.proc.poll() is None, self.log.read_text()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "killed"

    def restart(self) -> None:
        assert self.stop() == 0, self.log.read_text()[-5000:]
        self.start()

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"KSS exited:\n{self.log.read_text()[-5000:]}"
        assert self.request("GET", "/healthz") == (200, "ok\n")


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["RUST_LOG"] = "info"
    super_users = "User:CN=admin"
    cmd = [sluice_bin, "kss", "--listen", f"127.0.0.1:{kss_port}", "--ca-dir", str(kss_dir / "ca"),
           "--state-dir", str(kss_dir / "state"),
           "--dev-issuer-key", str(kss_dir / "issuer.key"), "--trust-bundle", str(pki.ca_path),
           "--acl-file", str(acl_file), "--sync-interval-ms", "300", "--cert-lifetime-secs", "3600",
           "--super-users", super_users, "--reserved-service", RESERVED, "--admin-service", ADMIN_SERVICE,
           "-b", ssl_bootstrap, *admin_x]
    broker = None
    k = Kss(sluice_bin, f"https://127.0.0.1:{kss_port}", cmd, env, kss_port, None, tmp_path / "kss.log", kss_dir,
            None, ssl_bootstrap, {}, acl_file, admin_x)
    try:
        k.start()
        # The broker trusts client certificates from KSS and from the operator's PKI (admin).
        bundle = tmp_path / "client-cas.pem"
        bundle.write_text(k.ca.read_text() + pki.ca_path.read_text())
        args = ["--ssl-listen", ssl_bootstrap, "--ssl-advertised", ssl_bootstrap,
                "--ssl-cert", str(server.cert), "--ssl-key", str(server.key), "--ssl-ca", str(bundle),
                "--ssl-client-auth", "required", "--acls", "--super-users", super_users]
        broker = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log", args)
        request.node.sluice_broker = broker
        broker.start()
        k.broker = broker
        k.admin_conf = {"bootstrap.servers": ssl_bootstrap, "security.protocol": "SSL",
                        "ssl.ca.location": str(pki.ca_path), "ssl.certificate.location": str(admin.cert),
                        "ssl.key.location": str(admin.key), "socket.timeout.ms": 10_000}
        wait_for(lambda: k.drift().get("in_sync"), "KSS to apply acl.yml")
        from confluent_kafka.admin import AdminClient
        create_topics(AdminClient(k.admin_conf), ["orders"])
        yield k
    finally:
        code = k.stop() if k.proc is not None else 0
        if broker is not None:
            assert broker.stop() == 0
    assert code == 0, f"KSS exited with {code} on SIGTERM:\n{k.log.read_text()[-5000:]}"
    assert "panicked at" not in k.log.read_text()


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
    proc = subprocess.Popen([kss.sluice, "sidecar", "--kss", kss.url, "--kss-ca", str(kss.ca), "--dir", str(out),
                             "--token-file", str(token_file), "--bootstrap", kss.ssl_bootstrap, "--lifetime-secs", "12"],
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


# --- Hardening (security issue items 8, 9, 10) ---------------------------------------------------


def test_symlinks_planted_at_temp_paths_are_not_followed(kss, tmp_path):
    """Links at every name the old code could have used (`.<file>.tmp-<pid>` for the next few
    hundred pids) point at a file outside: it stays untouched and the key lands in key.pem."""
    out = tmp_path / "planted"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    last_pid = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    planted = [out / f".{name}.tmp-{pid}" for name in ("key.pem", "keystore.pem", "cert.pem")
               for pid in range(last_pid + 1, last_pid + 300)]
    for link in planted:
        link.symlink_to(victim)
    result = kss.sidecar("orders-svc", out)
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "precious"
    assert all(link.is_symlink() and link.resolve() == victim for link in planted)
    key_path = out / "key.pem"
    assert not key_path.is_symlink() and stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert len(list(out.iterdir())) == len(planted) + 6, "no temporary file left behind"
    kss.assert_alive()


def test_plain_http_is_refused_on_both_ends(kss, tmp_path):
    result = run_sidecar(kss.sluice, kss.url.replace("https://", "http://"), tmp_path / "out", kss.token("orders-svc"))
    assert result.returncode != 0 and "plain HTTP" in result.stderr, result.stderr
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(kss.url.replace("https://", "http://") + "/healthz", timeout=5)
    assert not (tmp_path / "out" / "key.pem").exists()
    kss.assert_alive()


def test_sidecar_refuses_a_kss_with_another_ca(kss, tmp_path):
    other = Pki(tmp_path / "other", "other-ca")
    out = tmp_path / "orders"
    result = kss.sidecar("orders-svc", out, kss_ca=other.ca_path)
    assert result.returncode != 0
    assert "does not verify against --kss-ca" in result.stderr and "UnknownIssuer" in result.stderr, result.stderr
    assert not (out / "key.pem").exists()
    kss.assert_alive()


class FakeKss:
    """An HTTPS server with its own CA that answers POST /v1/certificates the way `mode` says:
    a malicious or broken KSS, to check what the sidecar accepts."""

    def __init__(self, directory: Path):
        self.pki = Pki(directory / "fake", "fake-kss-ca")
        self.other = Pki(directory / "fake-other", "other-ca")
        server = self.pki.issue("server", [cn("localhost")], server=True)
        self.mode = "good"
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body = json.dumps(fake.answer(request["csr"])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(server.cert), str(server.key))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, csr_pem: str) -> dict:
        public_key = x509.load_pem_x509_csr(csr_pem.encode()).public_key()
        pki, subject, now = self.pki, "orders-svc", datetime.datetime.now(datetime.timezone.utc)
        start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=1)
        if self.mode == "other-key":
            public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        elif self.mode == "other-cn":
            subject = "admin"
        elif self.mode == "other-ca":
            pki = self.other
        elif self.mode == "expired":
            start, end = now - datetime.timedelta(days=2), now - datetime.timedelta(days=1)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([cn(subject)])).issuer_name(pki.cert.subject)
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(pki.key, hashes.SHA256()))
        return {"service": "orders-svc", "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
                "ca": self.pki.ca_path.read_text(), "serial": "01", "not_before": 0, "not_after": 0}

    def alive(self) -> bool:
        return port_accepts(self.httpd.server_address[1])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_sidecar_refuses_a_certificate_it_cannot_use(sluice_bin, tmp_path):
    fake = FakeKss(tmp_path)
    out = tmp_path / "orders"
    out.mkdir()
    old = {"key.pem": "OLD KEY\n", "cert.pem": "OLD CERT\n", "ca.pem": "OLD CA\n"}
    for name, text in old.items():
        (out / name).write_text(text)
    reasons = {
        "other-key": "the certificate's public key is not the key this sidecar generated",
        "other-cn": 'expected exactly "CN=orders-svc"',
        "other-ca": "is not signed by a CA in --kss-ca",
        "expired": "the certificate is not valid now",
    }
    try:
        for mode, reason in reasons.items():
            fake.mode = mode
            result = run_sidecar(sluice_bin, fake.url, out, mint(None, "orders-svc"), "--kss-ca", str(fake.pki.ca_path))
            assert result.returncode != 0, (mode, result.stdout)
            assert "refusing KSS's answer, the existing credentials are kept" in result.stderr, result.stderr
            assert reason in result.stderr, (mode, result.stderr)
            assert {n: (out / n).read_text() for n in old} == old, f"{mode}: credentials replaced"
            assert fake.alive()
        # The same harness with a correct answer is accepted: the refusals above are the checks.
        fake.mode = "good"
        result = run_sidecar(sluice_bin, fake.url, out, mint(None, "orders-svc"), "--kss-ca", str(fake.pki.ca_path))
        assert result.returncode == 0, result.stderr
        assert subject_of(out / "cert.pem") == "CN=orders-svc"
    finally:
        fake.close()


def test_super_users_reserved_and_unsafe_service_ids_are_refused(kss, tmp_path):
    _, csr = new_csr()
    for service in ("admin", RESERVED):
        status, body = kss.post_csr(csr, kss.token(service))
        assert status == 403, (service, status, body)
        assert body["error"] == (f"service id {service} is reserved (a cluster super user or --reserved-service); "
                                 "KSS never issues a certificate for it"), body
    result = kss.sidecar("admin", tmp_path / "admin")
    assert result.returncode != 0 and "HTTP 403" in result.stderr and "reserved" in result.stderr, result.stderr
    assert not (tmp_path / "admin" / "cert.pem").exists()
    for sub in ("CN=admin", "admin,O=x", "a+b", 'a"b', "a<b>", "a;b", "#a", "a\\b", " admin", "admin ", "",
                "x" * 65, ".", "..", "../../etc/passwd", "a/b", "-admin", "Admin"):
        status, body = kss.post_csr(csr, kss.mint(sub))
        assert status == 401 and body["error"].startswith("invalid subject in identity token"), (sub, status, body)
    assert "certificate refused" in kss.log.read_text()
    kss.assert_alive()


def test_a_used_token_is_refused_after_a_kss_restart(kss):
    _, csr = new_csr()
    token = kss.token("orders-svc")
    assert kss.post_csr(csr, token)[0] == 200
    kss.restart()
    status, body = kss.post_csr(csr, token)
    assert status == 401 and body["error"].startswith("replayed identity token"), (status, body)
    cache = kss.dir / "state" / "token-replay-cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    kss.assert_alive()


def test_tokens_from_the_future_are_refused(kss):
    _, csr = new_csr()
    now = int(time.time())
    for claim in ("iat", "nbf"):
        status, body = kss.post_csr(csr, kss.mint("orders-svc", **{claim: now + 600}))
        assert status == 401, (claim, status, body)
        assert body["error"].startswith(f"identity token not yet valid: its {claim} is"), body
        assert "at most 60 s of clock skew is tolerated" in body["error"], body
    status, body = kss.post_csr(csr, kss.mint("orders-svc", iat=now + 20, nbf=now + 20))
    assert status == 200, ("within the tolerated skew", body)
    kss.assert_alive()


def test_drift_needs_an_admin_services_token(kss):
    status, body = kss.request("GET", "/v1/acls/drift")
    assert status == 401 and body["error"].startswith("missing identity token"), body
    status, body = kss.request("GET", "/v1/acls/drift", token=kss.token("orders-svc"))
    assert status == 403, body
    assert body["error"] == ("service orders-svc may not read the ACL drift report; "
                             "only KSS's admin services (--admin-service) may"), body
    status, body = kss.request("GET", "/v1/acls/drift", token=kss.token(ADMIN_SERVICE))
    assert status == 200 and body["in_sync"] is True, body
    kss.assert_alive()


def test_once_timeout_bounds_a_kss_that_accepts_but_never_answers(sluice_bin, tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    ca = Pki(tmp_path / "pki", "some-ca")
    try:
        started = time.monotonic()
        result = run_sidecar(sluice_bin, f"https://127.0.0.1:{silent.getsockname()[1]}", tmp_path / "out",
                             mint(None, "orders-svc"), "--kss-ca", str(ca.ca_path), timeout=30)
        took = time.monotonic() - started
        assert took < 7.0, f"--once-timeout-secs 5 took {took:.1f} s"
        assert result.returncode != 0
        assert "is unavailable: no answer before the deadline" in result.stderr, result.stderr
        assert held, "the sidecar did connect"
        assert port_accepts(silent.getsockname()[1]), "the silent server is still there"
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        silent.close()


def test_oversized_and_garbage_bodies_are_refused_with_a_reason(kss):
    token = kss.token("orders-svc")
    status, body = kss.request("POST", "/v1/certificates", b"x" * (128 * 1024), token)
    assert status == 413, (status, body)
    assert body["error"].startswith("request body larger than 65536 bytes"), body
    for garbage in (b"", b"not json", b"{}", b"[]", b'{"csr": 5}', b'{"csr": "x", "admin": true}', b"\xff\xfe"):
        status, body = kss.request("POST", "/v1/certificates", garbage, token)
        assert status == 400 and body["error"].startswith("invalid request"), (garbage, status, body)
    status, body = kss.request("PUT", "/v1/certificates", b"{}", token)
    assert status == 405 and "method not allowed" in body["error"], body
    status, body = kss.request("GET", "/v1/../../etc/passwd")
    assert status == 404, body
    _, csr = new_csr()
    assert kss.post_csr(csr, token)[0] == 200, "refused bodies did not use up the token"
    kss.assert_alive()
