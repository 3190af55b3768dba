"""Driver of scripts/bench-cdc.sh: change events from a real PostgreSQL through `sluice connect`
into Kafka. Measures the snapshot rate, the streaming rate (WAL written while the connector is
paused, then drained after resume) and the capture latency (commit time in the event's
source.ts_us → the event arriving at a consumer) under a steady pgbench update load.

    bench_cdc.py BOOTSTRAP CONNECT_URL ROWS RATE SECONDS FSYNC_DIR

FSYNC_DIR is on the broker's disk: a 4 KB write + fdatasync there is timed in the same run, the
floor under every acknowledgement.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "compat"))
from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from connect_fixture import Postgres, postgres_connector  # noqa: E402

bootstrap, connect_url, rows, rate, seconds = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
fsync_dir = Path(sys.argv[6])
TOPIC = "bench.public.bench"


def rest(method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(connect_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def task_state() -> str:
    tasks = rest("GET", "/connectors/bench/status")["tasks"]
    return tasks[0]["state"] if tasks else "NONE"


def wait(predicate, what: str, timeout: float = 600.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


watermarks = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})


def end_offset() -> int:
    try:
        return watermarks.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=5)[1]
    except Exception:  # the topic does not exist yet
        return 0


def fsync_p50_ms(directory: Path, count: int = 200) -> float:
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        samples = []
        for _ in range(count):
            t = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)
            samples.append((time.perf_counter() - t) * 1000)
        return statistics.median(samples)
    finally:
        os.close(fd)
        path.unlink()


print(f"floor: 4 KB append + fdatasync on the broker's disk p50 {fsync_p50_ms(fsync_dir):.2f} ms")
# The database lives in memory when it can: on one shared disk the kernel's writeback of its
# pages (fsync is off) stalls the broker's fdatasync for up to 0.7 s every few seconds, which
# a database on a machine of its own would not do.
pg = Postgres(synchronous_commit=True, parent="/dev/shm" if os.path.isdir("/dev/shm") else None)
pg.start()
try:
    db = pg.new_database()
    pg.sql(db, "CREATE TABLE bench (id int PRIMARY KEY, v bigint NOT NULL, pad text NOT NULL)")
    pg.sql(db, f"INSERT INTO bench SELECT g, 0, repeat('x', 100) FROM generate_series(1, {rows}) g")
    config = postgres_connector(pg, db, "bench", value__converter__schemas__enable="false",
                                key__converter__schemas__enable="false")

    # 1. Snapshot: every row as an `r` event.
    t0 = time.monotonic()
    rest("POST", "/connectors", {"name": "bench", "config": config})
    t1 = wait(lambda: end_offset() >= rows, "the snapshot")
    print(f"snapshot: {rows} rows in {t1 - t0:.2f} s = {rows / (t1 - t0):,.0f} events/s "
          f"(including connector start-up)")

    # 2. Streaming: `rows` updates written while the task is paused (transactions of `batch`
    #    rows each, so the WAL is written fast), then drained from the slot after resume.
    rest("PUT", "/connectors/bench/pause")
    wait(lambda: task_state() == "PAUSED", "the task to pause", interval=0.1)
    batch = 10_000
    started = time.monotonic()
    script = pg.script(db)
    for lo in range(1, rows + 1, batch):
        script.stdin.write(f"UPDATE bench SET v = v + 1 WHERE id BETWEEN {lo} AND {lo + batch - 1};\n")
    script.stdin.close()
    if script.wait() != 0:
        raise SystemExit(script.stderr.read())
    print(f"wrote {rows} updates in {rows // batch} transactions in {time.monotonic() - started:.1f} s")
    expected = 2 * rows
    t0 = time.monotonic()
    rest("PUT", "/connectors/bench/resume")
    t1 = wait(lambda: end_offset() >= expected, "the updates to drain")
    print(f"streaming: {rows} update events drained in {t1 - t0:.2f} s = {rows / (t1 - t0):,.0f} events/s "
          f"(from resume, including the task's restart)")

    # 3. Latency: pgbench single-row updates at a fixed rate, each event timed at a consumer.
    latencies: list[float] = []
    stop = threading.Event()

    def consume():
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-latency", "fetch.wait.max.ms": 100,
                      "fetch.min.bytes": 1})
        c.assign([TopicPartition(TOPIC, 0, expected)])
        while not stop.is_set():
            msg = c.poll(0.1)
            if msg is None or msg.error() or msg.value() is None:
                continue
            now_us = time.time_ns() // 1000
            source = json.loads(msg.value())["source"]
            latencies.append((now_us - source["ts_us"]) / 1000.0)
        c.close()

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(2)
    bench_sql = Path(pg.dir) / "update.sql"
    bench_sql.write_text(f"\\set id random(1, {rows})\nUPDATE bench SET v = v + 1 WHERE id = :id;\n")
    subprocess.run(["chmod", "644", str(bench_sql)], check=True)
    subprocess.run([str(pg.bindir / "pgbench"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres",
                    "-n", "-c", "2", "-j", "1", "-R", str(rate), "-T", str(seconds), "-f", str(bench_sql), db],
                   check=True, capture_output=True)
    time.sleep(2)
    stop.set()
    reader.join()
    if not latencies:
        raise SystemExit("no events arrived during the latency run")
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]  # noqa: E731
    print(f"latency at {rate}/s for {seconds} s: {len(latencies)} events, commit → consumer "
          f"p50 {statistics.median(latencies):.2f} ms, p99 {q(0.99):.2f} ms, max {latencies[-1]:.2f} ms")
finally:
    watermarks.close()
    pg.stop()
