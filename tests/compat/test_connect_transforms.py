"""Single message transforms and the error policy of `sluice connect`, configured as for Kafka
Connect and Debezium, on change events from a real PostgreSQL read back with confluent-kafka:
unwrap + mask + route + header in one chain, and records a transform rejects skipped into a
dead-letter topic (errors.tolerance=all) or failing the task (none)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

from connect_fixture import connect_worker, database, postgres, postgres_connector, wait_for  # noqa: F401
from test_connect_postgres import read_topic, running, status

UNWRAP = "io.debezium.transforms.ExtractNewRecordState"
MASK = "org.apache.kafka.connect.transforms.MaskField$Value"
TOPIC_MATCHES = "org.apache.kafka.connect.transforms.predicates.TopicNameMatches"


def headers_of(msg) -> dict:
    return {k: (v.decode() if v is not None else None) for k, v in (msg.headers() or [])}


def test_unwrap_mask_route_and_header_chain(postgres, database, broker, connect_worker):
    postgres.sql(database, """
        CREATE TABLE users (id int PRIMARY KEY, email text, name text);
        CREATE TABLE orders (id int PRIMARY KEY, email text, total int);
        INSERT INTO users VALUES (1, 'ann@example.com', 'Ann');
        INSERT INTO orders VALUES (10, 'ann@example.com', 5);
    """)
    prefix = f"tx{uuid.uuid4().hex[:6]}"
    config = postgres_connector(
        postgres, database, prefix,
        value__converter__schemas__enable="false",
        transforms="unwrap,mask,route,tag",
        transforms__unwrap__type=UNWRAP,
        transforms__unwrap__delete__handling__mode="rewrite",
        transforms__unwrap__add__fields="op,table,source.ts_ms",
        transforms__unwrap__add__headers="op",
        transforms__mask__type=MASK,
        transforms__mask__fields="email",
        transforms__mask__predicate="isUsers",
        transforms__route__type="org.apache.kafka.connect.transforms.RegexRouter",
        transforms__route__regex=rf"{prefix}\.public\.(.*)",
        transforms__route__replacement=f"{prefix}-rows-$1",
        transforms__tag__type="org.apache.kafka.connect.transforms.InsertHeader",
        transforms__tag__header="origin",
        transforms__tag__value__literal="pg-main",
        predicates="isUsers",
        predicates__isUsers__type=TOPIC_MATCHES,
        predicates__isUsers__pattern=r".*\.users",
    )
    code, body = connect_worker.call("PUT", "/connector-plugins/PostgresConnector/config/validate", config)
    assert code == 200 and body["error_count"] == 0, body
    code, body = connect_worker.call("POST", "/connectors", {"name": "pg-smt", "config": config})
    assert code == 201, body
    wait_for(lambda: running(connect_worker, "pg-smt"), "the connector to run")
    postgres.sql(database, "UPDATE users SET name = 'Annie' WHERE id = 1; DELETE FROM users WHERE id = 1")

    users = read_topic(broker.bootstrap, f"{prefix}-rows-users", lambda r: len(r) >= 3)
    rows = [json.loads(m.value()) for m in users]
    assert [r["__op"] for r in rows] == ["r", "u", "d"]
    assert [r["__deleted"] for r in rows] == ["false", "false", "true"]
    # The delete carries the old row as REPLICA IDENTITY DEFAULT sends it: the key only.
    assert [r["email"] for r in rows] == ["", "", None], "masked; null stays null"
    assert [r["name"] for r in rows] == ["Ann", "Annie", None]
    assert all(r["__table"] == "users" and r["__source_ts_ms"] > 0 for r in rows)
    assert [headers_of(m) for m in users] == [{"__op": op, "origin": "pg-main"} for op in ("r", "u", "d")]
    assert json.loads(users[0].key())["payload"] == {"id": 1}, "keys keep their schema envelope"
    assert len(users) == 3, "the delete's tombstone is dropped"

    orders = read_topic(broker.bootstrap, f"{prefix}-rows-orders", lambda r: len(r) >= 1)
    assert json.loads(orders[0].value())["email"] == "ann@example.com", "the predicate keeps orders unmasked"


def test_rejected_records_go_to_the_dead_letter_topic(postgres, database, broker, connect_worker, sluice_bin):
    postgres.sql(database, """
        CREATE TABLE good (id int PRIMARY KEY, v text);
        CREATE TABLE bad (id int PRIMARY KEY, v text);
        INSERT INTO good VALUES (1, 'g1');
        INSERT INTO bad VALUES (1, 'b1');
    """)
    prefix = f"dl{uuid.uuid4().hex[:6]}"
    dlq = f"{prefix}-dlq"
    # Masking an int column with a word fails, for the `bad` table only.
    rejecting = dict(
        transforms="mask",
        transforms__mask__type=MASK,
        transforms__mask__fields="after.id",
        transforms__mask__field__syntax__version="V2",
        transforms__mask__replacement="secret",
        transforms__mask__predicate="isBad",
        predicates="isBad",
        predicates__isBad__type=TOPIC_MATCHES,
        predicates__isBad__pattern=r".*\.bad",
    )
    config = postgres_connector(
        postgres, database, prefix, **rejecting,
        errors__tolerance="all",
        errors__deadletterqueue__topic__name=dlq,
        errors__deadletterqueue__context__headers__enable="true",
        errors__log__enable="true",
    )
    code, body = connect_worker.call("POST", "/connectors", {"name": "pg-dlq", "config": config})
    assert code == 201, body
    wait_for(lambda: running(connect_worker, "pg-dlq"), "the connector to run")
    postgres.sql(database, "INSERT INTO bad VALUES (2, 'b2'); INSERT INTO good VALUES (2, 'g2')")

    good = read_topic(broker.bootstrap, f"{prefix}.public.good", lambda r: len(r) >= 2)
    assert [json.loads(m.value())["payload"]["after"]["v"] for m in good] == ["g1", "g2"]
    dead = read_topic(broker.bootstrap, dlq, lambda r: len(r) >= 2)
    assert len(dead) == 2
    values = [json.loads(m.value()) for m in dead]
    assert [v["after"]["v"] for v in values] == ["b1", "b2"], "schemaless JSON of the record as it was"
    assert [json.loads(m.key()) for m in dead] == [{"id": 1}, {"id": 2}]
    h = headers_of(dead[0])
    assert h["__connect.errors.topic"] == f"{prefix}.public.bad"
    assert h["__connect.errors.stage"] == "TRANSFORMATION"
    assert h["__connect.errors.class.name"] == MASK
    assert "secret" in h["__connect.errors.exception.message"]
    assert h["__connect.errors.connector.name"] == "pg-dlq" and h["__connect.errors.task.id"] == "0"
    assert running(connect_worker, "pg-dlq"), "tolerated failures keep the task running"
    assert "skipping a record" in connect_worker.log_tail()

    # A dead-letter topic without errors.tolerance=all is refused up front…
    strict = postgres_connector(postgres, database, prefix + "s", **rejecting,
                                errors__deadletterqueue__topic__name=dlq)
    code, body = connect_worker.call("PUT", "/connector-plugins/PostgresConnector/config/validate", strict)
    assert code == 200 and body["error_count"] == 1, body
    bad_keys = [c["value"]["name"] for c in body["configs"] if c["value"]["errors"]]
    assert bad_keys == ["errors.deadletterqueue.topic.name"], bad_keys
    # …and with the default tolerance the first rejected record fails the task, naming why.
    del strict["errors.deadletterqueue.topic.name"]
    code, body = connect_worker.call("POST", "/connectors", {"name": "pg-strict", "config": strict})
    assert code == 201, body

    def failed():
        tasks = status(connect_worker, "pg-strict")["tasks"]
        return tasks and tasks[0]["state"] == "FAILED" and tasks[0]
    task = wait_for(failed, "the strict connector's task to fail")
    assert "TRANSFORMATION" in task["trace"] and "errors.tolerance is none" in task["trace"], task

    # `sluice connect status` shows both from the REST API; --check fails on the failed task.
    def cli(*args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        return subprocess.run([sluice_bin, "connect", "status", "--url", connect_worker.url, *args],
                              capture_output=True, text=True, timeout=60, env=env)
    out = cli()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["CONNECTOR", "TYPE", "STATE", "WORKER"], out.stdout
    assert ["pg-dlq", "source", "RUNNING"] == lines[1].split()[:3], out.stdout
    assert any(line.split()[:3] == ["task", "0", "FAILED"] for line in lines), out.stdout
    assert "errors.tolerance is none" in out.stdout
    checked = cli("--check", "pg-strict")
    assert checked.returncode == 1 and "FAILED" in checked.stderr, (checked.stdout, checked.stderr)
    assert cli("--check", "pg-dlq").returncode == 0
    as_json = json.loads(cli("--json", "pg-dlq").stdout)
    assert as_json["name"] == "pg-dlq" and as_json["tasks"][0]["state"] == "RUNNING"
