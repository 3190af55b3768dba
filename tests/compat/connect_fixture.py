"""A real PostgreSQL server (Debian's package, started here with wal_level=logical) and
`sluice connect` workers, for the change-data-capture tests (imported by test_connect*.py)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import SHUTDOWN_TIMEOUT_S, _die_with_parent, free_port, port_accepts
from pki import cn

STARTUP_TIMEOUT_S = 60.0
# A login with a password, so SCRAM-SHA-256 (PostgreSQL's default method) is exercised.
CDC_USER, CDC_PASSWORD = "cdc", "s3cret-cdc"
# A login by client certificate (the certificate's CN), on servers started with TLS.
CERT_USER = "cdc_cert"


class Postgres:
    """One PostgreSQL cluster on a loopback port; tests get a database each."""

    def __init__(self, synchronous_commit: bool = False, parent: str | None = None, pki=None):
        # Tests commit without waiting for the WAL flush (fast); the benchmark waits, as a
        # production server does, since the WAL sender only sends what is flushed.
        self.synchronous_commit = synchronous_commit
        # With a pki.Pki: TLS on, a server certificate from it, and CERT_USER logging in by
        # client certificate only.
        self.pki = pki
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (scripts/test.sh installs Debian's postgresql)")
        self.bindir = Path(bins[-1]).parent
        self.port = free_port()
        # PostgreSQL refuses to run as root and needs a directory its user can reach.
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-pg-", dir=parent))
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self.as_postgres, *cmd], check=True, capture_output=True, cwd=self.dir)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        hba = (
            (f"hostssl all {CERT_USER} 127.0.0.1/32 cert\n"
             f"hostssl replication {CERT_USER} 127.0.0.1/32 cert\n" if self.pki else "")
            + "local all all trust\n"
            f"host all {CDC_USER} 127.0.0.1/32 scram-sha-256\n"
            f"host replication {CDC_USER} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n"
            "host replication all 127.0.0.1/32 trust\n"
        )
        (self.data / "pg_hba.conf").write_text(hba)
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
            "-c wal_level=logical -c max_wal_senders=40 -c max_replication_slots=40 "
            f"-c fsync=off -c synchronous_commit={'on' if self.synchronous_commit else 'off'}"
        )
        if self.pki:
            options += " " + self._server_certificate()
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "postgres.log"), "-w", "-t", "60", "start")
        self.sql("postgres", f"CREATE ROLE {CDC_USER} LOGIN REPLICATION SUPERUSER PASSWORD '{CDC_PASSWORD}'")
        if self.pki:
            self.sql("postgres", f"CREATE ROLE {CERT_USER} LOGIN REPLICATION SUPERUSER")

    def _server_certificate(self) -> str:
        """Issues the server's certificate into the cluster's directory (the key readable by
        the server's user only, as PostgreSQL insists); returns the ssl settings."""
        # Valid for "localhost" only, so connecting to 127.0.0.1 tells verify-ca (which
        # accepts it) from verify-full (which does not).
        server = self.pki.issue("postgres-server", [cn("localhost")], server=True, names=("localhost",))
        files = {"cert": self.dir / "server.crt", "key": self.dir / "server.key", "ca": self.dir / "ca.crt"}
        shutil.copy(server.cert, files["cert"])
        shutil.copy(server.key, files["key"])
        shutil.copy(self.pki.ca_path, files["ca"])
        for f in files.values():
            if self.as_postgres:
                shutil.chown(f, "postgres", "postgres")
            os.chmod(f, 0o600)
        return (f"-c ssl=on -c ssl_cert_file={files['cert']} -c ssl_key_file={files['key']} "
                f"-c ssl_ca_file={files['ca']}")

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, db: str, sql: str) -> str:
        """Runs `sql` with psql as the superuser; returns its unaligned output."""
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
             "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql],
            capture_output=True, text=True, timeout=300,
        )
        if done.returncode != 0:
            raise AssertionError(f"psql failed: {done.stderr}\n{sql[:2000]}")
        return done.stdout.strip()

    def script(self, db: str) -> subprocess.Popen:
        """Starts psql in the background, reading a script from its stdin."""
        return subprocess.Popen(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
             "-v", "ON_ERROR_STOP=1", "-X", "-q"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )

    def new_database(self) -> str:
        name = f"db_{uuid.uuid4().hex[:10]}"
        self.sql("postgres", f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        # Slots of the database go first; a worker may still hold one for a moment.
        for _ in range(50):
            try:
                self.sql("postgres", f"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                                     f"WHERE database = '{name}' AND active_pid IS NOT NULL")
                self.sql("postgres", f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                     f"WHERE database = '{name}'")
                self.sql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                return
            except AssertionError:
                time.sleep(0.2)


@pytest.fixture(scope="session")
def postgres():
    pg = Postgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture
def database(postgres):
    name = postgres.new_database()
    try:
        yield name
    finally:
        postgres.drop_database(name)


class ConnectWorker:
    """One `sluice connect` process; restartable on the same port."""

    def __init__(self, binary: str, bootstrap: str, log_path: Path, group: str):
        self.binary = binary
        self.bootstrap = bootstrap
        self.log_path = log_path
        self.group = group
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [self.binary, "connect", "--listen", f"127.0.0.1:{self.port}", "--bootstrap-server", self.bootstrap,
               "--connect-group-id", self.group]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.setdefault("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start: {' '.join(cmd)} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if port_accepts(self.port):
                return
            time.sleep(0.1)
        self.kill9()
        raise RuntimeError(f"worker did not listen on {self.url} within {STARTUP_TIMEOUT_S}s")

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
                raise AssertionError(f"worker ignored SIGTERM:\n{self.log_tail()}")
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except FileNotFoundError:
            return ""

    def call(self, method: str, path: str, body=None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None


@pytest.fixture
def connect_worker(sluice_bin, broker, tmp_path):
    w = ConnectWorker(sluice_bin, broker.bootstrap, tmp_path / "connect.log", f"connect-{uuid.uuid4().hex[:6]}")
    w.start()
    try:
        yield w
    finally:
        code = w.stop()
        assert code == 0, f"worker exited with {code}:\n{w.log_tail()}"
        assert "panicked at" not in w.log_tail()


def postgres_connector(postgres: Postgres, database: str, prefix: str, **extra) -> dict:
    """A Debezium-style PostgreSQL connector config (logging in with SCRAM as the cdc user)."""
    config = {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1",
        "database.port": str(postgres.port),
        "database.user": CDC_USER,
        "database.password": CDC_PASSWORD,
        "database.dbname": database,
        "topic.prefix": prefix,
        "slot.name": f"slot_{uuid.uuid4().hex[:10]}",
        "publication.name": f"pub_{prefix.replace('-', '_')}",
    }
    config.update({k.replace("__", "."): v for k, v in extra.items()})
    return config


def wait_for(predicate, what: str, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
