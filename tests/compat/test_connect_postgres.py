"""Change data capture from a real PostgreSQL through `sluice connect`, checked with real Kafka
clients (confluent-kafka / librdkafka, Confluent's AvroDeserializer): Debezium's event format,
Kafka Connect's REST API, no loss across kill -9, and workers sharing and taking over tasks."""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid
from decimal import Decimal

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connect_fixture import ConnectWorker, connect_worker, database, postgres, postgres_connector, wait_for  # noqa: F401
from registry_fixture import registry  # noqa: F401


def read_topic(bootstrap: str, topic: str, until, timeout: float = 60.0) -> list:
    """Every record of `topic` from the start, until `until(records)` holds."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    records = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if until(records):
                    return records
                continue
            if msg.error():
                continue
            records.append(msg)
            if until(records):
                return records
        raise AssertionError(f"timed out reading {topic}: {len(records)} records")
    finally:
        consumer.close()


def payload(msg):
    value = msg.value()
    return None if value is None else json.loads(value)["payload"]


def decimal_of(b64: str, scale: int) -> Decimal:
    return Decimal(int.from_bytes(base64.b64decode(b64), "big", signed=True)).scaleb(-scale)


def status(worker: ConnectWorker, name: str) -> dict:
    code, body = worker.call("GET", f"/connectors/{name}/status")
    assert code == 200, body
    return body


def running(worker: ConnectWorker, name: str) -> bool:
    s = status(worker, name)
    return s["connector"]["state"] == "RUNNING" and all(t["state"] == "RUNNING" for t in s["tasks"])


TYPES_TABLE = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.everything (
    id int PRIMARY KEY,
    small smallint, big bigint, price numeric(10,2), anynum numeric, ratio real, dbl double precision,
    flag boolean, name text NOT NULL, code varchar(8), fixed char(3), doc json, docb jsonb,
    at timestamptz, local_at timestamp, day date, clock time, uid uuid, raw bytea,
    nums int[], words text[], feeling mood, span interval
);
"""

ROW_1 = """INSERT INTO everything VALUES (1, -7, 9007199254740993, 12345.67, 3.14159, 1.5, 2.25, true, 'first',
 'abc', 'xy', '{"a": [1, 2]}', '{"b": {"c": null}}', '2024-02-29 12:34:56.789+02', '2024-02-29 12:34:56.000123',
 '2024-02-29', '23:59:59.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10', '{1,NULL,3}',
 '{"with space","quote\\"d",plain}', 'happy', '1 day 2 hours')"""


def test_snapshot_then_streaming_as_debezium_events(postgres, database, broker, connect_worker):
    postgres.sql(database, TYPES_TABLE + ROW_1 + "; INSERT INTO everything (id, name) VALUES (2, 'second')")
    config = postgres_connector(postgres, database, "shop")
    code, body = connect_worker.call("POST", "/connectors", {"name": "pg-types", "config": config})
    assert code == 201, body
    assert body["type"] == "source" and body["tasks"] == [{"connector": "pg-types", "task": 0}]
    wait_for(lambda: running(connect_worker, "pg-types"), "the connector to run")

    topic = "shop.public.everything"
    snap = read_topic(broker.bootstrap, topic, lambda r: len(r) >= 2)
    events = [payload(m) for m in snap]
    assert [e["op"] for e in events] == ["r", "r"]
    assert [e["source"]["snapshot"] for e in events] == ["true", "last"]
    first = events[0]["after"]
    key = json.loads(snap[0].key())
    assert key["payload"] == {"id": 1}
    assert key["schema"]["name"] == "shop.public.everything.Key"
    fields = {f["field"]: f for f in json.loads(snap[0].value())["schema"]["fields"][1]["fields"]}
    assert fields["name"]["optional"] is False and fields["small"]["optional"] is True
    assert fields["price"]["name"] == "org.apache.kafka.connect.data.Decimal"
    assert fields["feeling"]["parameters"]["allowed"] == "sad,ok,happy"
    assert first["small"] == -7 and first["big"] == 9007199254740993
    assert decimal_of(first["price"], 2) == Decimal("12345.67")
    assert decimal_of(first["anynum"]["value"], first["anynum"]["scale"]) == Decimal("3.14159")
    assert first["ratio"] == 1.5 and first["dbl"] == 2.25 and first["flag"] is True
    assert (first["name"], first["code"], first["fixed"]) == ("first", "abc", "xy ")
    assert json.loads(first["doc"]) == {"a": [1, 2]} and json.loads(first["docb"]) == {"b": {"c": None}}
    assert first["at"] == "2024-02-29T10:34:56.789Z"
    assert first["local_at"] == int(datetime.datetime(2024, 2, 29, 12, 34, 56, 123,
                                                      tzinfo=datetime.timezone.utc).timestamp()) * 1_000_000 + 123
    assert first["day"] == (datetime.date(2024, 2, 29) - datetime.date(1970, 1, 1)).days
    assert first["clock"] == (23 * 3600 + 59 * 60 + 59) * 1_000_000 + 500_000
    assert first["uid"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert base64.b64decode(first["raw"]) == b"\x00\xff\x10"
    assert first["nums"] == [1, None, 3] and first["words"] == ["with space", 'quote"d', "plain"]
    assert first["feeling"] == "happy" and first["span"] == (26 * 3600) * 1_000_000
    assert events[1]["after"]["price"] is None and events[1]["after"]["name"] == "second"
    assert all(e["source"]["connector"] == "postgresql" and e["source"]["db"] == database for e in events)

    # Streaming: insert, update, key change, delete, truncate, in one order.
    postgres.sql(database, """
        INSERT INTO everything (id, name, price) VALUES (3, 'third', 1.5);
        UPDATE everything SET price = 2.25, name = 'third!' WHERE id = 3;
        UPDATE everything SET id = 4 WHERE id = 2;
        DELETE FROM everything WHERE id = 1;
        TRUNCATE everything;
    """)
    records = read_topic(broker.bootstrap, topic, lambda r: len(r) >= 2 + 8)
    streamed = records[2:]
    ops = [(payload(m) or {}).get("op", "tombstone") for m in streamed]
    # A key change is a delete (+ tombstone) of the old key and a create of the new one.
    assert ops == ["c", "u", "d", "tombstone", "c", "d", "tombstone", "t"], ops
    update = payload(streamed[1])
    assert update["before"] is None, "REPLICA IDENTITY DEFAULT sends no old row"
    assert decimal_of(update["after"]["price"], 2) == Decimal("2.25")
    assert json.loads(streamed[2].key())["payload"] == {"id": 2}
    assert json.loads(streamed[4].key())["payload"] == {"id": 4}
    deleted = payload(streamed[5])
    assert deleted["before"]["id"] == 1 and deleted["after"] is None
    assert streamed[6].value() is None and json.loads(streamed[6].key())["payload"] == {"id": 1}
    assert streamed[7].key() is None
    lsns = [payload(m)["source"]["lsn"] for m in streamed if payload(m)]
    assert lsns == sorted(lsns), "events are in WAL order"
    assert all(payload(m)["source"]["snapshot"] == "false" for m in streamed if payload(m))

    # REPLICA IDENTITY FULL sends the whole old row.
    postgres.sql(database, "ALTER TABLE everything REPLICA IDENTITY FULL; "
                           "INSERT INTO everything (id, name) VALUES (5, 'five'); "
                           "UPDATE everything SET name = 'FIVE' WHERE id = 5")
    records = read_topic(broker.bootstrap, topic, lambda r: len(r) >= 2 + 8 + 2)
    full = payload(records[-1])
    assert full["op"] == "u" and full["before"]["name"] == "five" and full["after"]["name"] == "FIVE"


def test_rest_api_lifecycle(postgres, database, broker, connect_worker):
    postgres.sql(database, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    w = connect_worker
    code, root = w.call("GET", "/")
    assert code == 200 and "version" in root
    code, plugins = w.call("GET", "/connector-plugins")
    assert {"class": "io.debezium.connector.postgresql.PostgresConnector", "type": "source"}.items() <= plugins[0].items()

    code, checked = w.call("PUT", "/connector-plugins/PostgresConnector/config/validate",
                           {"connector.class": "PostgresConnector", "database.port": "x", "snapshot.mode": "sometimes"})
    assert code == 200 and checked["error_count"] >= 4
    errors = {c["value"]["name"]: c["value"]["errors"] for c in checked["configs"] if c["value"]["errors"]}
    assert {"database.hostname", "database.port", "snapshot.mode", "topic.prefix"} <= errors.keys()

    code, body = w.call("POST", "/connectors", {"name": "bad", "config": {"connector.class": "PostgresConnector"}})
    assert code == 400 and "database.hostname" in body["message"]
    code, body = w.call("POST", "/connectors", {"name": "bad", "config": {"connector.class": "com.example.Nope"}})
    assert code == 400 and body["error_code"] == 400
    code, _ = w.call("GET", "/connectors/nope/status")
    assert code == 404

    config = postgres_connector(postgres, database, "life")
    assert w.call("POST", "/connectors", {"name": "life", "config": config})[0] == 201
    assert w.call("POST", "/connectors", {"name": "life", "config": config})[0] == 409
    code, names = w.call("GET", "/connectors")
    assert names == ["life"]
    code, got = w.call("GET", "/connectors/life/config")
    assert got["topic.prefix"] == "life" and got["name"] == "life"
    wait_for(lambda: running(w, "life"), "the connector to run")
    postgres.sql(database, "INSERT INTO t VALUES (1, 'a')")
    read_topic(broker.bootstrap, "life.public.t", lambda r: len(r) >= 1)

    assert w.call("PUT", "/connectors/life/pause")[0] == 202
    wait_for(lambda: status(w, "life")["connector"]["state"] == "PAUSED"
             and status(w, "life")["tasks"][0]["state"] == "PAUSED", "the connector to pause")
    postgres.sql(database, "INSERT INTO t VALUES (2, 'while paused')")
    time.sleep(2)
    assert len(read_topic(broker.bootstrap, "life.public.t", lambda r: len(r) >= 1)) == 1, "nothing flows while paused"
    assert w.call("PUT", "/connectors/life/resume")[0] == 202
    wait_for(lambda: running(w, "life"), "the connector to resume")
    rows = read_topic(broker.bootstrap, "life.public.t", lambda r: len(r) >= 2)
    assert payload(rows[1])["after"] == {"id": 2, "v": "while paused"}

    code, offsets = w.call("GET", "/connectors/life/offsets")
    assert code == 200
    wait_for(lambda: w.call("GET", "/connectors/life/offsets")[1]["offsets"], "an offset to be stored")
    offsets = w.call("GET", "/connectors/life/offsets")[1]["offsets"]
    assert offsets[0]["partition"] == {"server": "life"} and offsets[0]["offset"]["lsn"] > 0

    # A config change restarts the task with it: only `id` from now on in the key's table.
    config["table.exclude.list"] = "public\\.t"
    code, _ = w.call("PUT", "/connectors/life/config", config)
    assert code == 200
    postgres.sql(database, "INSERT INTO t VALUES (3, 'excluded')")
    time.sleep(2)
    assert len(read_topic(broker.bootstrap, "life.public.t", lambda r: len(r) >= 2)) == 2

    assert w.call("POST", "/connectors/life/restart?includeTasks=true")[0] == 202
    assert w.call("POST", "/connectors/life/tasks/0/restart")[0] == 204
    assert w.call("POST", "/connectors/life/tasks/7/restart")[0] == 404
    assert w.call("DELETE", "/connectors/life")[0] == 204
    assert w.call("GET", "/connectors/life")[0] == 404
    assert w.call("GET", "/connectors")[1] == []


def test_avro_events_decode_with_confluents_deserializer(postgres, database, broker, registry, connect_worker):
    postgres.sql(database, "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12,2) NOT NULL, "
                           "note text, placed date); "
                           "INSERT INTO orders VALUES (1, 99.95, 'first', '2024-01-31')")
    config = postgres_connector(postgres, database, "avro", **{
        "key.converter": "io.confluent.connect.avro.AvroConverter",
        "key.converter.schema.registry.url": registry.url,
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": registry.url,
    })
    assert connect_worker.call("POST", "/connectors", {"name": "pg-avro", "config": config})[0] == 201
    topic = "avro.public.orders"
    wait_for(lambda: running(connect_worker, "pg-avro"), "the connector to run")
    postgres.sql(database, "UPDATE orders SET note = NULL, total = 100 WHERE id = 1; DELETE FROM orders")
    msgs = read_topic(broker.bootstrap, topic, lambda r: len(r) >= 4)
    client = SchemaRegistryClient({"url": registry.url})
    values = AvroDeserializer(client)
    keys = AvroDeserializer(client)
    decoded = [
        (keys(m.key(), SerializationContext(topic, MessageField.KEY)),
         values(m.value(), SerializationContext(topic, MessageField.VALUE)) if m.value() is not None else None)
        for m in msgs
    ]
    assert [k for k, _ in decoded] == [{"id": 1}] * 4
    snap, update, delete, tombstone = [v for _, v in decoded]
    assert snap["op"] == "r" and snap["after"]["total"] == Decimal("99.95") and snap["after"]["note"] == "first"
    assert snap["after"]["placed"] == (datetime.date(2024, 1, 31) - datetime.date(1970, 1, 1)).days
    assert update["op"] == "u" and update["after"] == {"id": 1, "total": Decimal("100.00"), "note": None,
                                                        "placed": snap["after"]["placed"]}
    assert delete["op"] == "d" and delete["before"]["id"] == 1 and tombstone is None
    assert snap["source"]["table"] == "orders" and snap["source"]["connector"] == "postgresql"
    subjects = registry.call("GET", "/subjects")[1]
    assert {f"{topic}-key", f"{topic}-value"} <= set(subjects)


def test_kill9_during_a_write_load_loses_no_committed_change(postgres, database, broker, connect_worker, sluice_bin):
    postgres.sql(database, "CREATE TABLE counters (id int PRIMARY KEY, v int NOT NULL)")
    config = postgres_connector(postgres, database, "load", **{"value.converter.schemas.enable": "false",
                                                                "key.converter.schemas.enable": "false"})
    assert connect_worker.call("POST", "/connectors", {"name": "load", "config": config})[0] == 201
    wait_for(lambda: running(connect_worker, "load"), "the connector to run")
    # 50 transactions inserting 1,000 rows each, then 50 updating them: 100,000 changes.
    script = []
    for t in range(50):
        script.append(f"INSERT INTO counters SELECT g, 0 FROM generate_series({t * 1000}, {t * 1000 + 999}) g;")
    for t in range(50):
        script.append(f"UPDATE counters SET v = v + 1 WHERE id BETWEEN {t * 1000} AND {t * 1000 + 999};")
    load = postgres.script(database)
    load.stdin.write("\n".join(script))
    load.stdin.close()
    time.sleep(1.0)
    connect_worker.kill9()
    assert load.wait(timeout=300) == 0, load.stderr.read()
    connect_worker.start()

    missing = {(i, v) for i in range(50_000) for v in (0, 1)}
    seen: dict[tuple[int, int], int] = {}
    order: dict[int, list[tuple[int, int]]] = {}
    done = [0]

    def collect(records):
        for m in records[done[0]:]:
            p = payload_plain(m)
            if p is None:
                continue
            row = p["after"]
            seen[(row["id"], row["v"])] = seen.get((row["id"], row["v"]), 0) + 1
            missing.discard((row["id"], row["v"]))
            order.setdefault(row["id"], []).append((p["source"]["lsn"], row["v"]))
        done[0] = len(records)
        return not missing

    read_topic(broker.bootstrap, "load.public.counters", collect, timeout=240)
    duplicates = sum(c - 1 for c in seen.values())
    # Commit order per key: with redelivered events dropped, each key's changes come in WAL order.
    for key, events in order.items():
        first_seen = []
        for e in events:
            if e not in first_seen:
                first_seen.append(e)
        assert first_seen == sorted(first_seen), (key, events)
    print(f"{len(seen)} distinct changes, {duplicates} redelivered after the kill")


def payload_plain(msg):
    value = msg.value()
    return None if value is None else json.loads(value)


def test_two_workers_share_four_connectors_and_take_over(postgres, database, broker, sluice_bin, tmp_path):
    group = f"cluster-{uuid.uuid4().hex[:6]}"
    workers = [ConnectWorker(sluice_bin, broker.bootstrap, tmp_path / f"w{i}.log", group) for i in range(2)]
    for w in workers:
        w.start()
    try:
        names = [f"c{i}" for i in range(4)]
        for name in names:
            postgres.sql(database, f"CREATE TABLE {name} (id int PRIMARY KEY)")
            config = postgres_connector(postgres, database, f"share-{name}", **{"table.include.list": f"public\\.{name}"})
            assert workers[0].call("POST", "/connectors", {"name": name, "config": config})[0] == 201

        def spread():
            owners = [status(workers[1], n)["tasks"][0] for n in names]
            if not all(t["state"] == "RUNNING" for t in owners):
                return None
            by_worker = {}
            for t in owners:
                by_worker[t["worker_id"]] = by_worker.get(t["worker_id"], 0) + 1
            return by_worker if sorted(by_worker.values()) == [2, 2] else None

        wait_for(spread, "four tasks spread two per worker", timeout=90)
        for name in names:
            postgres.sql(database, f"INSERT INTO {name} VALUES (1)")
        for name in names:
            read_topic(broker.bootstrap, f"share-{name}.public.{name}", lambda r: len(r) >= 1)

        workers[1].kill9()
        survivor = f"127.0.0.1:{workers[0].port}"
        wait_for(lambda: all(status(workers[0], n)["tasks"][0] == {"id": 0, "state": "RUNNING", "worker_id": survivor}
                             for n in names), "the survivor to run all four", timeout=90)
        for name in names:
            postgres.sql(database, f"INSERT INTO {name} VALUES (2)")
        for name in names:
            rows = read_topic(broker.bootstrap, f"share-{name}.public.{name}",
                              lambda r: any(payload(m) and payload(m)["after"] == {"id": 2} for m in r))
            assert [payload(m)["after"]["id"] for m in rows if payload(m)][:2] == [1, 2]
    finally:
        for w in workers:
            w.kill9() if w.proc else None


def test_new_column_becomes_a_new_registry_schema_version(postgres, database, broker, registry, connect_worker):
    """A column added while streaming shows in the next event, and the Avro value schema gets a
    second version the registry accepts under its default BACKWARD compatibility (the new field
    is optional with a null default, as Debezium's are); events before and after both decode."""
    postgres.sql(database, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); "
                           "INSERT INTO items VALUES (1, 'one')")
    config = postgres_connector(postgres, database, "evolve", **{
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": registry.url,
    })
    assert connect_worker.call("POST", "/connectors", {"name": "pg-evolve", "config": config})[0] == 201
    topic = "evolve.public.items"
    wait_for(lambda: running(connect_worker, "pg-evolve"), "the connector to run")
    read_topic(broker.bootstrap, topic, lambda r: len(r) >= 1)
    postgres.sql(database, "ALTER TABLE items ADD COLUMN colour text; "
                           "INSERT INTO items VALUES (2, 'two', 'red'); "
                           "UPDATE items SET colour = 'blue' WHERE id = 1")
    msgs = read_topic(broker.bootstrap, topic, lambda r: len(r) >= 3)
    values = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    snap, insert, update = [values(m.value(), SerializationContext(topic, MessageField.VALUE)) for m in msgs]
    assert snap["op"] == "r" and snap["after"] == {"id": 1, "name": "one"}
    assert insert["op"] == "c" and insert["after"] == {"id": 2, "name": "two", "colour": "red"}
    assert update["op"] == "u" and update["after"] == {"id": 1, "name": "one", "colour": "blue"}
    code, versions = registry.call("GET", f"/subjects/{topic}-value/versions")
    assert code == 200 and versions == [1, 2], versions
    schema_ids = {int.from_bytes(m.value()[1:5], "big") for m in msgs}
    assert len(schema_ids) == 2, schema_ids
