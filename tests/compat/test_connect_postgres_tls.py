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
    """A connector logging in as CERT_USER with `client`'s certificate, to "localhost" (the
    only name in the server's certificate) unless `extra` says otherwise."""
    config = postgres_connector(pg, db, prefix)
    config.pop("database.password")
    config.update({"database.user": CERT_USER, "database.sslcert": str(client.cert),
                   "database.sslkey": str(client.key), "database.hostname": "localhost"})
    config.update({k.replace("__", "."): v for k, v in extra.items()})
    return config


def failed_trace(worker, name: str, config: dict) -> str:
    """Creates connector `name` and waits for its task to fail; returns the trace."""
    assert worker.call("POST", "/connectors", {"name": name, "config": config})[0] == 201

    def trace():
        tasks = status(worker, name)["tasks"]
        return tasks and tasks[0]["state"] == "FAILED" and tasks[0]["trace"]
    return wait_for(trace, f"{name} to fail")


def ssl_of_sessions(pg: Postgres, application: str) -> list[str]:
    """`backend_type|ssl` of the sessions of one connector (by its application_name)."""
    rows = pg.sql("postgres", "SELECT a.backend_type, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s "
                              f"USING (pid) WHERE a.application_name = 'sluice-connect {application}'")
    return rows.splitlines()


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
    rows = ssl_of_sessions(pg, "tls")
    assert rows and all(line.endswith("|t") for line in rows) and "walsender|t" in rows, rows


def test_verify_ca_skips_the_name_and_verify_full_checks_it(tls_postgres, broker, connect_worker):
    pg = tls_postgres
    db = pg.new_database()
    pg.sql(db, "CREATE TABLE notes (id int PRIMARY KEY); INSERT INTO notes VALUES (1)")
    client = pg.pki.issue("cdc-client-3", [cn(CERT_USER)])
    ca = str(pg.pki.ca_path)
    # 127.0.0.1 is not in the certificate: fine for verify-ca, refused by verify-full.
    config = cert_connector(pg, db, "byca", client, database__hostname="127.0.0.1",
                            database__sslmode="verify-ca", database__sslrootcert=ca)
    assert connect_worker.call("POST", "/connectors", {"name": "by-ca", "config": config})[0] == 201
    read_topic(broker.bootstrap, "byca.public.notes", lambda r: len(r) >= 1)
    trace = failed_trace(connect_worker, "by-name", cert_connector(
        pg, db, "byname", client, database__hostname="127.0.0.1", database__sslmode="verify-full",
        database__sslrootcert=ca))
    assert "TLS handshake" in trace and "not valid for name" in trace, trace
    # prefer (the default) uses TLS when the server offers it, without checking anything.
    config = cert_connector(pg, db, "prefer", client, database__hostname="127.0.0.1")
    assert connect_worker.call("POST", "/connectors", {"name": "prefer", "config": config})[0] == 201
    read_topic(broker.bootstrap, "prefer.public.notes", lambda r: len(r) >= 1)
    assert "walsender|t" in ssl_of_sessions(pg, "prefer")


def test_refused_certificates_and_missing_tls_fail_the_task_with_the_reason(tls_postgres, broker, connect_worker,
                                                                            tmp_path):
    pg = tls_postgres
    db = pg.new_database()
    pg.sql(db, "CREATE TABLE notes (id int PRIMARY KEY)")
    client = pg.pki.issue("cdc-client-2", [cn(CERT_USER)])
    other_ca = Pki(tmp_path / "other", "other-ca")

    # A server certificate from a CA the connector does not trust.
    trace = failed_trace(connect_worker, "wrong-ca", cert_connector(
        pg, db, "wrongca", client, database__sslmode="verify-ca", database__sslrootcert=str(other_ca.ca_path)))
    assert "TLS handshake" in trace and "UnknownIssuer" in trace, trace
    # No client certificate: the server's `cert` rule refuses the login.
    config = cert_connector(pg, db, "nocert", client, database__sslmode="require")
    del config["database.sslcert"], config["database.sslkey"]
    trace = failed_trace(connect_worker, "no-cert", config)
    assert "28000" in trace and "TLS handshake" not in trace, trace
    # verify-full without the CA file is refused before anything runs.
    config = cert_connector(pg, db, "nocafile", client, database__sslmode="verify-full")
    code, body = connect_worker.call("POST", "/connectors", {"name": "no-ca-file", "config": config})
    assert code == 400 and "database.sslrootcert" in body["message"], body


def test_require_against_a_server_without_tls_fails_and_prefer_falls_back(postgres, database, broker,
                                                                          connect_worker):
    postgres.sql(database, "CREATE TABLE notes (id int PRIMARY KEY); INSERT INTO notes VALUES (1)")
    config = postgres_connector(postgres, database, "plain", database__sslmode="require")
    assert "does not accept TLS" in failed_trace(connect_worker, "plain-require", config)
    # prefer (the default) connects in plaintext.
    config = postgres_connector(postgres, database, "plain2")
    assert connect_worker.call("POST", "/connectors", {"name": "plain-prefer", "config": config})[0] == 201
    read_topic(broker.bootstrap, "plain2.public.notes", lambda r: len(r) >= 1)
