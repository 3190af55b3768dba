"""Change data capture over TLS: a real PostgreSQL with `ssl=on`, a server certificate from a
throwaway CA and a user that logs in by client certificate only; `sluice connect` with
`database.sslmode` as Debezium (and libpq) define it."""

from __future__ import annotations

import json

import pytest

from connect_fixture import (  # noqa: F401
    CERT_USER, Postgres, connect_worker, database, postgres, postgres_connector, wait_for)
from pki import Pki, cn
from test_connect_postgres import read_topic, running, status


@pytest.fixture(scope="module")
def tls_postgres(tmp_path_factory):
    pki = Pki(tmp_path_factory.mktemp("pg-pki"), "pg-ca")
    pg = Postgres(pki=pki)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def cert_connector(pg: Postgres, db: str, prefix: str, client, **extra) -> dict:
    """A connector logging in as CERT_USER with `client`'s certificate."""
    config = postgres_connector(pg, db, prefix, **extra)
    config.pop("database.password")
    config.update({"database.user": CERT_USER, "database.sslcert": str(client.cert),
                   "database.sslkey": str(client.key)})
    return config


def test_verify_full_with_a_client_certificate_streams_over_tls(tls_postgres, broker, connect_worker):
    pg = tls_postgres
    db = pg.new_database()
    pg.sql(db, "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'a')")
    client = pg.pki.issue("cdc-client", [cn(CERT_USER)])
    config = cert_connector(pg, db, "tls", client, **{
        "database.sslmode": "verify-full", "database.sslrootcert": str(pg.pki.ca_path),
        "value.converter.schemas.enable": "false"})
    assert connect_worker.call("POST", "/connectors", {"name": "pg-tls", "config": config})[0] == 201
    wait_for(lambda: running(connect_worker, "pg-tls"), "the connector to run")
    pg.sql(db, "INSERT INTO notes VALUES (2, 'b')")
    msgs = read_topic(broker.bootstrap, "tls.public.notes", lambda r: len(r) >= 2)
    assert [json.loads(m.value())["after"]["body"] for m in msgs] == ["a", "b"]
    # Every connection the worker holds (the replication stream included) is encrypted.
    rows = pg.sql("postgres", "SELECT a.backend_type, s.ssl FROM pg_stat_activity a "
                              f"JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '{CERT_USER}'")
    assert rows and all(line.endswith("|t") for line in rows.splitlines()), rows
    assert "walsender" in rows


def test_refused_certificates_and_missing_tls_fail_the_task_with_the_reason(tls_postgres, broker, connect_worker,
                                                                            tmp_path):
    pg = tls_postgres
    db = pg.new_database()
    pg.sql(db, "CREATE TABLE notes (id int PRIMARY KEY)")
    client = pg.pki.issue("cdc-client-2", [cn(CERT_USER)])
    other_ca = Pki(tmp_path / "other", "other-ca")

    def failure(name: str, config: dict) -> str:
        assert connect_worker.call("POST", "/connectors", {"name": name, "config": config})[0] == 201

        def trace():
            tasks = status(connect_worker, name)["tasks"]
            return tasks and tasks[0]["state"] == "FAILED" and tasks[0]["trace"]
        return wait_for(trace, f"{name} to fail")

    # A server certificate from a CA the connector does not trust.
    trace = failure("wrong-ca", cert_connector(pg, db, "wrongca", client, **{
        "database.sslmode": "verify-ca", "database.sslrootcert": str(other_ca.ca_path)}))
    assert "TLS handshake" in trace and "certificate" in trace.lower(), trace
    # No client certificate: the server's `cert` rule refuses the login.
    config = cert_connector(pg, db, "nocert", client, **{"database.sslmode": "require"})
    del config["database.sslcert"], config["database.sslkey"]
    trace = failure("no-cert", config)
    assert "certificate" in trace.lower(), trace
    # verify-full without the CA file is refused before anything runs.
    config = cert_connector(pg, db, "nocafile", client, **{"database.sslmode": "verify-full"})
    code, body = connect_worker.call("POST", "/connectors", {"name": "no-ca-file", "config": config})
    assert code == 400 and "database.sslrootcert" in body["message"], body


def test_require_against_a_server_without_tls_fails_and_prefer_falls_back(postgres, database, broker,
                                                                          connect_worker):
    postgres.sql(database, "CREATE TABLE notes (id int PRIMARY KEY); INSERT INTO notes VALUES (1)")
    config = postgres_connector(postgres, database, "plain", **{"database.sslmode": "require"})
    assert connect_worker.call("POST", "/connectors", {"name": "plain-require", "config": config})[0] == 201

    def trace():
        tasks = status(connect_worker, "plain-require")["tasks"]
        return tasks and tasks[0]["state"] == "FAILED" and tasks[0]["trace"]
    assert "does not accept TLS" in wait_for(trace, "the task to fail")
    # prefer (the default) connects in plaintext.
    config = postgres_connector(postgres, database, "plain2")
    assert connect_worker.call("POST", "/connectors", {"name": "plain-prefer", "config": config})[0] == 201
    read_topic(broker.bootstrap, "plain2.public.notes", lambda r: len(r) >= 1)
