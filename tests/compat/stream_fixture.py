"""Real servers for the streaming SDK's tests: the `moto` AWS server (SQS, SNS, Kinesis; PyPI
`moto[server]`, which nobody here wrote) and `sluice stream run` pipelines, read back with
boto3 and confluent-kafka."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import _prepare_child, free_port, port_accepts
from connect_fixture import wait_for  # noqa: F401  (re-exported for the stream tests)

REGION = "us-east-1"
# moto accepts any keys unless told to check signatures (see Moto(auth_after=...)).
TEST_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class Moto:
    """One `moto_server` process; restartable on the same port (its state is in memory)."""

    def __init__(self, log_path: Path, auth_after: int | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.auth_after = auth_after
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
        env = dict(os.environ)
        if self.auth_after is not None:
            # After this many calls moto verifies every request's SigV4 signature against the
            # IAM users it knows.
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.auth_after)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, preexec_fn=functools.partial(_prepare_child, None),
            )
        deadline = time.monotonic() + 30
        while not port_accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        """An outage that keeps the state: the server stops answering (SIGSTOP)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def client(self, service: str, **keys):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **(keys or TEST_KEYS))

    def aws(self) -> dict:
        """The `aws:` block of a pipeline destination."""
        return {"endpoint_url": self.url, "region": REGION}


@pytest.fixture
def moto(tmp_path):
    m = Moto(tmp_path / "moto.log")
    m.start()
    try:
        yield m
    finally:
        m.stop()


def drain_queue(sqs, url: str, expect: int, timeout: float = 60.0) -> list[dict]:
    """Receives (and deletes) messages until `expect` arrived and the queue stays empty."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                AttributeNames=["All"], WaitTimeSeconds=0)
        msgs = r.get("Messages", [])
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        out.extend(msgs)
        if not msgs:
            if len(out) >= expect:
                return out
            time.sleep(0.2)
    raise AssertionError(f"{url}: {len(out)} of {expect} messages arrived")


def kinesis_records(kinesis, stream: str) -> list[dict]:
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            r = kinesis.get_records(ShardIterator=it, Limit=10000)
            out.extend(dict(rec, ShardId=shard["ShardId"]) for rec in r["Records"])
            if not r["Records"]:
                break
            it = r.get("NextShardIterator")
    return out


def create_topic(bootstrap: str, name: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(30)


def produce(bootstrap: str, topic: str, records: list[tuple[str | None, bytes | str, dict]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value, headers in records:
        p.produce(topic, key=key, value=value, headers=headers)
    assert p.flush(30) == 0


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """Sum of the group's committed offsets on `topic`."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        c.close()


def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 60.0) -> list:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                if len(out) >= expect:
                    return out
                continue
            if not m.error():
                out.append(m)
        raise AssertionError(f"{topic}: {len(out)} of {expect} records")
    finally:
        c.close()


class Pipeline:
    """`sluice stream run FILE` as a child process."""

    def __init__(self, binary: str, tmp: Path, config: dict, env: dict | None = None,
                 metrics_port: int | None = None):
        self.path = tmp / f"pipeline-{uuid.uuid4().hex[:6]}.yml"
        # JSON is YAML: the file is written exactly as the test declares it.
        self.path.write_text(json.dumps(config, indent=1))
        self.log_path = tmp / f"{self.path.stem}.log"
        self.args = [binary, "stream", "run", str(self.path)]
        if metrics_port:
            self.args += ["--metrics-listen", f"127.0.0.1:{metrics_port}"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
        self.env.update(TEST_ENV_KEYS)
        self.env.update(env or {})
        self.env.setdefault("RUST_LOG", "info")
        self.proc: subprocess.Popen | None = None

    def start(self, ready: bool = True) -> "Pipeline":
        """Starts it and, unless told otherwise, waits for its ready line (before it, SIGTERM
        would find no handler installed yet)."""
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env,
                                     preexec_fn=functools.partial(_prepare_child, None))
        if ready:
            deadline = time.monotonic() + 60
            while "sluice stream: pipeline" not in self.text():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"pipeline did not start:\n{self.text()[-3000:]}")
                time.sleep(0.05)
        return self

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM: the pipeline drains and commits; its exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")


TEST_ENV_KEYS = {"AWS_ACCESS_KEY_ID": TEST_KEYS["aws_access_key_id"],
                 "AWS_SECRET_ACCESS_KEY": TEST_KEYS["aws_secret_access_key"]}


def source(bootstrap: str, topic: str, group: str) -> dict:
    return {"kafka": {"topics": [topic], "properties": {"bootstrap.servers": bootstrap, "group.id": group}}}
