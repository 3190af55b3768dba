"""The streaming SDK (`sluice stream run`) against real servers: a Sluice broker and the `moto`
AWS server (SQS, SNS, Kinesis), read back with boto3 and confluent-kafka. Fan-out to every
destination, signatures moto verifies, records refused inside a batch dead-lettered with the
error, a destination outage retried without loss and without committing past it, transforms,
and the linter."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from collections import defaultdict

from confluent_kafka import Consumer

from conftest import REPO_ROOT, free_port
from stream_fixture import (
    Moto, Pipeline, committed, create_topic, drain_queue, kinesis_records, moto, produce,  # noqa: F401
    read_all, source, wait_for,
)

N = 200
KEYS = [f"user-{i}" for i in range(8)]


def records(n: int, start: int = 0, **extra_headers) -> list:
    return [
        (KEYS[i % len(KEYS)], json.dumps({"n": i}),
         {"event_type": "Click", "event_id": f"e-{i}", **extra_headers})
        for i in range(start, start + n)
    ]


def n_of(body: str | bytes) -> int:
    return json.loads(body)["n"]


def test_fan_out_to_kafka_sqs_fifo_sns_and_kinesis(broker, moto, sluice_bin, tmp_path, topic_name):
    sqs, sns, kinesis = moto.client("sqs"), moto.client("sns"), moto.client("kinesis")
    queue = sqs.create_queue(QueueName="clicks")["QueueUrl"]
    fifo = sqs.create_queue(QueueName="clicks.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    from_sns = sqs.create_queue(QueueName="from-sns")["QueueUrl"]
    topic_arn = sns.create_topic(Name="clicks")["TopicArn"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=from_sns, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    kinesis.create_stream(StreamName="clicks", ShardCount=2)
    create_topic(broker.bootstrap, topic_name)
    produce(broker.bootstrap, topic_name, records(N))

    metrics_port = free_port()
    aws = moto.aws()
    pipe = Pipeline(sluice_bin, tmp_path, {
        "name": "fanout",
        "source": source(broker.bootstrap, topic_name, "fanout"),
        "destinations": [
            {"name": "copy", "preset": "durable",
             "kafka": {"topic": f"{topic_name}-copy", "properties": {"bootstrap.servers": broker.bootstrap}}},
            {"name": "queue", "sqs": {"queue_url": queue, "aws": aws}},
            {"name": "fifo", "preset": "ordered", "sqs": {"queue_url": fifo, "group_id": "key", "aws": aws}},
            {"name": "topic", "sns": {"topic_arn": topic_arn, "aws": aws}},
            # One request at a time: moto loses records under concurrent PutRecords into one
            # stream (boto3 with four threads shows it too), which would hide our own losses.
            {"name": "stream", "preset": "high-throughput", "batch": {"max_in_flight": 1},
             "kinesis": {"stream_name": "clicks", "aws": aws}},
        ],
    }, metrics_port=metrics_port).start()
    try:
        wait_for(lambda: committed(broker.bootstrap, "fanout", topic_name, 3) == N, "every offset committed")
        scrape = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    finally:
        assert pipe.stop() == 0, pipe.text()

    for name in ("copy", "queue", "fifo", "topic", "stream"):
        assert f'sluice_stream_sent_total{{destination="{name}"}} {N}' in scrape, scrape
    assert 'sluice_stream_pipeline_events_total{outcome="delivered"} 200' in scrape

    copies = read_all(broker.bootstrap, f"{topic_name}-copy", N)
    assert sorted(n_of(m.value()) for m in copies) == list(range(N))
    assert all(dict(m.headers())["event_type"] == b"Click" for m in copies)

    for url in (queue, from_sns):
        msgs = drain_queue(sqs, url, N)
        assert sorted(n_of(m["Body"]) for m in msgs) == list(range(N)), url
        attrs = msgs[0]["MessageAttributes"]
        assert attrs["event_type"]["StringValue"] == "Click"
        assert attrs["event_id"]["StringValue"] == f"e-{n_of(msgs[0]['Body'])}"

    fifo_msgs = drain_queue(sqs, fifo, N)
    by_group = defaultdict(list)
    for m in fifo_msgs:
        assert m["Attributes"]["MessageDeduplicationId"] == f"e-{n_of(m['Body'])}"
        by_group[m["Attributes"]["MessageGroupId"]].append(n_of(m["Body"]))
    assert set(by_group) == set(KEYS)
    for group, ns in by_group.items():
        assert ns == sorted(ns), f"order kept within message group {group}"
    assert sum(len(v) for v in by_group.values()) == N

    kin = kinesis_records(kinesis, "clicks")
    assert sorted(n_of(r["Data"]) for r in kin) == list(range(N))
    assert {r["PartitionKey"] for r in kin} == set(KEYS)
    shards = {r["PartitionKey"]: r["ShardId"] for r in kin}
    assert all(shards[r["PartitionKey"]] == r["ShardId"] for r in kin), "one key, one shard"


def test_requests_carry_signatures_moto_verifies(broker, sluice_bin, tmp_path, topic_name):
    # After three unchecked calls (creating the IAM user, its key and policy) moto verifies
    # every request's SigV4 signature: SQS and Kinesis (JSON) and SNS (query protocol).
    moto = Moto(tmp_path / "moto.log", auth_after=3)
    moto.start()
    try:
        iam = moto.client("iam")
        iam.create_user(UserName="pipeline")
        key = iam.create_access_key(UserName="pipeline")["AccessKey"]
        iam.put_user_policy(UserName="pipeline", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        keys = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        sqs, sns, kinesis = (moto.client(s, **keys) for s in ("sqs", "sns", "kinesis"))
        queue = sqs.create_queue(QueueName="signed")["QueueUrl"]
        topic_arn = sns.create_topic(Name="signed")["TopicArn"]
        kinesis.create_stream(StreamName="signed", ShardCount=1)
        create_topic(broker.bootstrap, topic_name, 1)
        produce(broker.bootstrap, topic_name, records(20))

        def config(group):
            return {
                "source": source(broker.bootstrap, topic_name, group),
                "destinations": [
                    {"name": "queue", "sqs": {"queue_url": queue, "aws": moto.aws()}},
                    {"name": "topic", "sns": {"topic_arn": topic_arn, "aws": moto.aws()}},
                    {"name": "stream", "kinesis": {"stream_name": "signed", "aws": moto.aws()}},
                ],
            }

        env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
        good = Pipeline(sluice_bin, tmp_path, config("signed"), env=env).start()
        try:
            wait_for(lambda: committed(broker.bootstrap, "signed", topic_name, 1) == 20, "all committed")
        finally:
            assert good.stop() == 0, good.text()
        assert len(drain_queue(sqs, queue, 20)) == 20
        assert len(kinesis_records(kinesis, "signed")) == 20

        # A wrong secret: refused by moto, not retried, and the pipeline stops without
        # committing anything.
        bad_env = dict(env, AWS_SECRET_ACCESS_KEY="not-the-secret")
        bad = Pipeline(sluice_bin, tmp_path, config("unsigned"), env=bad_env).start(ready=False)
        code = bad.wait(timeout=90)
        assert code == 1, bad.text()
        assert "SignatureDoesNotMatch" in bad.text() or "InvalidClientTokenId" in bad.text(), bad.text()[-3000:]
        assert committed(broker.bootstrap, "unsigned", topic_name, 1) == 0
    finally:
        moto.stop()


def test_records_refused_in_a_batch_are_dead_lettered_with_the_error(broker, moto, sluice_bin, tmp_path, topic_name):
    sqs, sns = moto.client("sqs"), moto.client("sns")
    # A queue that takes messages up to 2 KiB: moto refuses a batch holding a larger one as a
    # whole; the driver then sends its records one by one so only the large one fails.
    small = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "2048"})["QueueUrl"]
    # A FIFO topic without content-based deduplication: an entry without a deduplication id
    # fails inside a successful PublishBatch answer (SenderFault), the others go through.
    topic_arn = sns.create_topic(Name="orders.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    sub_queue = sqs.create_queue(QueueName="orders-sub.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sub_arn = sqs.get_queue_attributes(QueueUrl=sub_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=sub_arn, Attributes={"RawMessageDelivery": "true"})
    create_topic(broker.bootstrap, topic_name, 1)
    batch = records(30)
    batch[7] = (KEYS[0], json.dumps({"n": 7, "pad": "x" * 4000}), {"event_type": "Click", "event_id": "e-7"})
    batch[12] = (KEYS[1], json.dumps({"n": 12}), {"event_type": "Click"})  # no event_id
    produce(broker.bootstrap, topic_name, batch)

    dlq = f"{topic_name}-dlq"
    pipe = Pipeline(sluice_bin, tmp_path, {
        "source": source(broker.bootstrap, topic_name, "partial"),
        "destinations": [
            {"name": "small", "batch": {"linger_ms": 50}, "sqs": {"queue_url": small, "aws": moto.aws()}},
            {"name": "orders", "sns": {"topic_arn": topic_arn, "group_id": "key", "aws": moto.aws()}},
        ],
        "delivery": {"policy": "best_effort", "dead_letter": {
            "name": "dlq", "kafka": {"topic": dlq, "properties": {"bootstrap.servers": broker.bootstrap}}}},
    }).start()
    try:
        wait_for(lambda: committed(broker.bootstrap, "partial", topic_name, 1) == 30, "all committed")
    finally:
        assert pipe.stop() == 0, pipe.text()

    dead = read_all(broker.bootstrap, dlq, 2)
    assert len(dead) == 2
    by_n = {n_of(m.value()): {k: v.decode() for k, v in m.headers()} for m in dead}
    assert by_n[7]["sluice.dlq.destination"] == "small"
    assert by_n[7]["sluice.dlq.error.code"] == "InvalidParameterValue"
    assert "shorter than 2048" in by_n[7]["sluice.dlq.error.message"]
    assert by_n[12]["sluice.dlq.destination"] == "orders"
    assert by_n[12]["sluice.dlq.error.code"] == "InvalidParameter"
    assert by_n[12]["sluice.dlq.attempts"] == "1", "a sender fault is not retried"
    assert sorted(n_of(m["Body"]) for m in drain_queue(sqs, small, 29)) == [n for n in range(30) if n != 7]
    assert sorted(n_of(m["Body"]) for m in drain_queue(sqs, sub_queue, 29)) == [n for n in range(30) if n != 12]


def test_an_outage_is_retried_and_offsets_wait_for_it(broker, moto, sluice_bin, tmp_path, topic_name):
    sqs = moto.client("sqs")
    queue = sqs.create_queue(QueueName="outage")["QueueUrl"]
    create_topic(broker.bootstrap, topic_name, 2)
    pipe = Pipeline(sluice_bin, tmp_path, {
        "source": source(broker.bootstrap, topic_name, "outage"),
        "destinations": [{"name": "queue", "preset": "durable",
                          "batch": {"buffer_bytes": 65536},
                          "sqs": {"queue_url": queue, "aws": moto.aws()}}],
    }).start()
    try:
        produce(broker.bootstrap, topic_name, records(50))
        wait_for(lambda: committed(broker.bootstrap, "outage", topic_name, 2) == 50, "first 50 committed")
        assert sorted(n_of(m["Body"]) for m in drain_queue(sqs, queue, 50)) == list(range(50))

        moto.pause()  # SQS stops answering: requests time out and are retried
        produce(broker.bootstrap, topic_name, records(150, start=50, pad="y" * 1000))
        time.sleep(4)
        assert committed(broker.bootstrap, "outage", topic_name, 2) == 50, "nothing committed while SQS is down"
        assert pipe.proc.poll() is None, pipe.text()
        moto.resume()
        wait_for(lambda: committed(broker.bootstrap, "outage", topic_name, 2) == 200, "the rest committed", timeout=120)
    finally:
        moto.resume()
        assert pipe.stop() == 0, pipe.text()
    got = [n_of(m["Body"]) for m in drain_queue(sqs, queue, 150)]
    assert sorted(set(got)) == list(range(50, 200)), "every record after the outage arrived"
    assert len(got) - 150 <= 150, "duplicates only of what timed out in flight"


def test_filter_route_and_map(broker, sluice_bin, tmp_path, topic_name):
    create_topic(broker.bootstrap, topic_name, 1)
    rows = []
    for i in range(40):
        region = ["eu", "us", "ap"][i % 3]
        kind = "Click" if i % 4 else "Debug"
        rows.append((None, json.dumps({"n": i, "password": "s3cret", "uid": i}),
                     {"event_type": kind, "region": region}))
    produce(broker.bootstrap, topic_name, rows)
    out = {r: f"{topic_name}-{r}" for r in ("eu", "other")}
    kafka = {"bootstrap.servers": broker.bootstrap}
    pipe = Pipeline(sluice_bin, tmp_path, {
        "source": source(broker.bootstrap, topic_name, "routes"),
        "transforms": [
            {"filter": {"header": "event_type", "equals": "Debug", "negate": True}},
            {"map": {"remove": ["/password"], "rename": {"/uid": "/user_id"}, "set": {"/via": "sluice"}}},
            {"route": {"header": "region", "routes": {"eu": ["eu"]}, "default": ["other"]}},
        ],
        "destinations": [
            {"name": "eu", "kafka": {"topic": out["eu"], "properties": kafka}},
            {"name": "other", "kafka": {"topic": out["other"], "properties": kafka}},
        ],
    }).start()
    try:
        wait_for(lambda: committed(broker.bootstrap, "routes", topic_name, 1) == 40, "filtered offsets committed too")
    finally:
        assert pipe.stop() == 0, pipe.text()
    kept = [i for i in range(40) if i % 4]
    eu = [json.loads(m.value()) for m in read_all(broker.bootstrap, out["eu"], 1)]
    other = [json.loads(m.value()) for m in read_all(broker.bootstrap, out["other"], 1)]
    assert sorted(v["n"] for v in eu) == [i for i in kept if i % 3 == 0]
    assert sorted(v["n"] for v in other) == [i for i in kept if i % 3 != 0]
    assert all(v == {"n": v["n"], "user_id": v["n"], "via": "sluice"} for v in eu + other)
    assert "40 consumed, 30 delivered, 10 filtered" in pipe.text(), pipe.text()[-500:]


def test_lint_config_and_dry_run(sluice_bin, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(json.dumps({
        "source": {"kafka": {"topics": ["t"], "properties": {"bootstrap.servers": "b:1", "group.id": "g"}}},
        "destinations": [
            {"name": "q", "sqs": {"queue_url": "http://x/1/q.fifo"}},
            {"name": "k", "kinesis": {"stream_name": "s", "partition_key": "static:all"}},
            {"name": "t", "batch": {"max_records": 50}, "sns": {"topic_arn": "arn:aws:sns:r:1:t"}},
        ],
        "delivery": {"policy": "best_effort"},
    }))
    r = subprocess.run([sluice_bin, "lint-config", str(bad)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    for rule in ("sqs-fifo-without-group-id", "kinesis-hot-partition-key", "batch-over-service-limit",
                 "best-effort-without-dead-letter"):
        assert f"[{rule}]" in r.stdout, r.stdout
    assert "fix:" in r.stdout
    r = subprocess.run([sluice_bin, "stream", "run", "--dry-run", str(bad)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "would not start" in r.stderr, r

    good = tmp_path / "good.yml"
    good.write_text(
        "source: { kafka: { topics: [t], properties: { bootstrap.servers: 'b:1', group.id: g } } }\n"
        "destinations:\n"
        "  - { name: k, preset: high-throughput, kafka: { topic: t2, properties: { bootstrap.servers: 'b:1', linger.ms: '7' } } }\n")
    r = subprocess.run([sluice_bin, "stream", "run", "--dry-run", str(good)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    assert "compression.type=lz4" in r.stdout and "linger.ms=7" in r.stdout, r.stdout

    example = REPO_ROOT / "examples" / "stream" / "pipeline.yml"
    r = subprocess.run([sluice_bin, "lint-config", str(example)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "no problems found" in r.stdout, r

    broken = tmp_path / "broken.yml"
    broken.write_text("source: { kafka: { topics: [t] }\n")
    r = subprocess.run([sluice_bin, "stream", "run", str(broken)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "broken.yml" in r.stderr, r


def test_kafka_failover_switches_and_switches_back_without_loss(broker, sluice_bin, tmp_path, topic_name):
    """The source is one broker; the destination a primary and a standby cluster. The primary
    is killed with SIGKILL mid-stream and restarted: every record the pipeline acknowledged (its
    offset committed) is on one of the two clusters, duplicates stay within what was in flight,
    and traffic returns to the primary once it has been healthy long enough."""
    from conftest import Broker

    primary = Broker(sluice_bin, tmp_path / "primary", tmp_path / "primary.log")
    standby = Broker(sluice_bin, tmp_path / "standby", tmp_path / "standby.log")
    primary.start()
    standby.start()
    out = f"{topic_name}-out"
    try:
        create_topic(broker.bootstrap, topic_name, 2)
        for b in (primary, standby):
            create_topic(b.bootstrap, out, 2)
        in_flight = 100
        metrics_port = free_port()
        pipe = Pipeline(sluice_bin, tmp_path, {
            "source": source(broker.bootstrap, topic_name, "failover"),
            "destinations": [{"name": "regions", "preset": "ordered", "kafka": {
                "topic": out,
                "properties": {"bootstrap.servers": primary.bootstrap},
                "failover": {"clusters": [{"name": "standby", "properties": {"bootstrap.servers": standby.bootstrap}}],
                             "switch_after_ms": 2000, "switch_back_after_ms": 3000},
            }}],
            "delivery": {"max_in_flight": in_flight},
        }, metrics_port=metrics_port).start()

        def metrics() -> str:
            return urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()

        def done(n):
            return lambda: committed(broker.bootstrap, "failover", topic_name, 2) == n

        try:
            produce(broker.bootstrap, topic_name, records(300))
            wait_for(done(300), "300 committed on the primary")
            primary.kill9()
            produce(broker.bootstrap, topic_name, records(300, start=300))
            wait_for(done(600), "the next 300 committed through the standby", timeout=90)
            assert 'sluice_stream_failover_active{destination="regions",cluster="standby"} 1' in metrics()
            primary.start()
            wait_for(lambda: 'sluice_stream_failover_active{destination="regions",cluster="primary"} 1' in metrics(),
                     "the switch back to the primary", timeout=90)
            produce(broker.bootstrap, topic_name, records(300, start=600))
            wait_for(done(900), "the last 300 committed on the primary", timeout=90)
            scrape = metrics()
        finally:
            assert pipe.stop() == 0, pipe.text()
        assert 'sluice_stream_failover_switches_total{destination="regions",to="standby"} 1' in scrape, scrape
        assert 'sluice_stream_failover_switches_total{destination="regions",to="primary"} 1' in scrape, scrape
        assert "kafka failover: switched clusters" in pipe.text()

        def values(b):
            # Everything the cluster has: read until two quiet polls.
            c_records = []
            c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": f"r-{uuid.uuid4().hex[:6]}",
                          "auto.offset.reset": "earliest", "enable.auto.commit": False})
            c.subscribe([out])
            quiet, deadline = 0, time.monotonic() + 60
            while quiet < 6 and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None:
                    quiet += 1 if c_records else 0
                    continue
                quiet = 0
                if not m.error():
                    c_records.append(n_of(m.value()))
            c.close()
            return c_records

        on_primary, on_standby = values(primary), values(standby)
        assert set(on_primary) | set(on_standby) == set(range(900)), "every acknowledged record is on a cluster"
        duplicates = len(on_primary) + len(on_standby) - 900
        assert 0 <= duplicates <= in_flight, duplicates
        assert set(range(600, 900)) <= set(on_primary), "after the switch back, records go to the primary"
        assert set(range(300, 600)) - set(on_primary) <= set(on_standby)
    finally:
        primary.stop() if primary.running() else None
        standby.stop()


def test_exactly_once_kafka_to_kafka_across_kill_9(broker, sluice_bin, tmp_path, topic_name):
    """Each batch's results and its source offsets go in one Kafka transaction: the pipeline is
    killed with SIGKILL three times mid-stream and restarted, and a read_committed consumer of
    the output finds every kept event exactly once."""
    import random
    import signal as sig
    import threading

    create_topic(broker.bootstrap, topic_name, 3)
    out = f"{topic_name}-out"
    src = source(broker.bootstrap, topic_name, "eos")
    # A killed member leaves the group when its session expires: keep that short.
    src["kafka"]["properties"].update({"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"})
    config = {
        "name": "eos",
        "source": src,
        "transforms": [{"filter": {"header": "event_type", "equals": "Debug", "negate": True}}],
        "destinations": [{"name": "out", "kafka": {"topic": out, "properties": {"bootstrap.servers": broker.bootstrap}}}],
        "delivery": {"exactly_once": True},
    }
    total = 3000
    rows = [(KEYS[i % len(KEYS)], json.dumps({"n": i}), {"event_type": "Debug" if i % 10 == 0 else "Click"})
            for i in range(total)]

    def feed():
        for start in range(0, total, 100):
            produce(broker.bootstrap, topic_name, rows[start:start + 100])
            time.sleep(0.4)

    feeder = threading.Thread(target=feed)
    feeder.start()
    pipe = Pipeline(sluice_bin, tmp_path, config).start()
    rng = random.Random(7)
    try:
        kills = 0
        while kills < 3 and committed(broker.bootstrap, "eos", topic_name, 3) < total:
            before = committed(broker.bootstrap, "eos", topic_name, 3)
            wait_for(lambda: committed(broker.bootstrap, "eos", topic_name, 3) > before, "progress", timeout=60)
            time.sleep(rng.uniform(0.1, 0.8))
            kills += 1
            pipe.proc.send_signal(sig.SIGKILL)
            pipe.proc.wait()
            pipe = Pipeline(sluice_bin, tmp_path, config).start()
        feeder.join()
        assert kills >= 2, "the pipeline was killed mid-stream"
        wait_for(lambda: committed(broker.bootstrap, "eos", topic_name, 3) == total, "every offset committed", timeout=120)
    finally:
        assert pipe.stop() == 0, pipe.text()
    assert "exactly once" in pipe.text()

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"read-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed", "enable.auto.commit": False})
    c.subscribe([out])
    want = [i for i in range(total) if i % 10]
    got: list[int] = []
    deadline = time.monotonic() + 90
    quiet = 0
    while time.monotonic() < deadline and (len(got) < len(want) or quiet < 4):
        m = c.poll(0.5)
        if m is None:
            quiet += 1
            continue
        quiet = 0
        if not m.error():
            got.append(n_of(m.value()))
    c.close()
    assert sorted(got) == want, f"{len(got)} read, {len(set(got))} distinct, {len(want)} expected"
