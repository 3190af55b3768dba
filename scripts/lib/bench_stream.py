"""Driver of scripts/bench-stream.sh: `sluice stream run` between a Sluice broker and the moto
AWS server.

    bench_stream.py SLUICE BOOTSTRAP EVENTS OUTAGE_S OUT REPEAT

1. Throughput: EVENTS × 1 KB pre-produced on 3 partitions, drained by a pipeline to Kafka alone
   (rate from the destination's `sent` counter, sampled every 50 ms), then AWS_EVENTS of them by
   one to Kafka + SQS + Kinesis (policy all). moto is a Python server far slower than AWS, so
   its own rate is measured in the same run (boto3 sending the same batches one request at a
   time, on a fresh queue and stream) and the pipeline's rate is quoted against it. Each
   destination's request time comes from the pipeline's own histogram (p50 interpolated in its
   buckets, and the mean).
2. Latency: events at a steady rate, the produce time in a header; the Kafka copy's consumer
   measures now − that time; Kafka alone (200/s), then with SQS + Kinesis beside it (50/s,
   what moto's SQS keeps up with).
3. Outage: a pipeline to Kinesis with an 8 MiB buffer; moto stops answering (SIGSTOP: requests
   hang until they time out, the worst kind of outage), 1 KB events keep coming
   at 1,000/s for OUTAGE_S seconds, the pipeline's RSS is sampled each second; then moto comes
   back and the time to drain, and that nothing was lost, are reported.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "compat"))
from confluent_kafka import Consumer, Producer  # noqa: E402

from stream_fixture import Moto, Pipeline, committed, create_topic, drain_queue, source  # noqa: E402
from conftest import free_port  # noqa: E402

sluice, bootstrap, events, outage_s, out, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]), sys.argv[6]
PAYLOAD = "x" * 1000


def produce(topic: str, n: int, start: int = 0, rate: float | None = None) -> None:
    # Paced runs send each event at once; bulk loads batch.
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0 if rate else 5, "acks": "all"})
    t0 = time.monotonic()
    for i in range(start, start + n):
        while True:
            try:
                p.produce(topic, key=f"k{i % 64}", value=json.dumps({"n": i, "pad": PAYLOAD}),
                          headers={"event_type": "Bench", "sent_ns": str(time.time_ns())})
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
        if rate:
            wait = t0 + (i - start + 1) / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    assert p.flush(60) == 0


def histogram(scrape: str, name: str, destination: str) -> tuple[float, float]:
    """(p50, mean) in ms of a histogram series."""
    buckets, total, count = [], 0.0, 0
    for line in scrape.splitlines():
        if f'destination="{destination}"' not in line:
            continue
        if line.startswith(f"{name}_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
        elif line.startswith(f"{name}_sum"):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{name}_count"):
            count = int(float(line.rsplit(" ", 1)[1]))
    if not count:
        return float("nan"), float("nan")
    half, prev_le, prev_c = count / 2, 0.0, 0.0
    for le, c in sorted(buckets):
        if c >= half:
            p50 = prev_le + (le - prev_le) * (half - prev_c) / max(c - prev_c, 1e-9) if le != float("inf") else prev_le
            return p50 * 1000, total / count * 1000
        prev_le, prev_c = le, c
    return float("nan"), total / count * 1000


def sent(port: int, destination: str) -> int:
    scrape = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    prefix = f'sluice_stream_sent_total{{destination="{destination}"}} '
    return next((int(float(line[len(prefix):])) for line in scrape.splitlines() if line.startswith(prefix)), 0)


def rates_until(pipe: Pipeline, port: int, destinations: list[str], n: int, timeout: float = 900) -> dict[str, float]:
    """Events/s each destination acknowledged: n over the time from the first acknowledgement
    by any destination to its own n-th."""
    start, done = None, {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(done) < len(destinations):
        try:
            counts = {d: sent(port, d) for d in destinations}
        except OSError:
            counts = {}
        now = time.monotonic()
        if start is None and any(c > 0 for c in counts.values()):
            start = now
        for d, c in counts.items():
            if c >= n and d not in done and start is not None:
                done[d] = n / max(now - start, 0.05)
        time.sleep(0.05)
    if len(done) < len(destinations):
        raise SystemExit(f"not all acknowledged: {done}\n{pipe.text()[-3000:]}")
    return done


moto = Moto(out / f"moto-sqs-{repeat}.log")
moto.start()
moto_kinesis = Moto(out / f"moto-kinesis-{repeat}.log")
moto_kinesis.start()
sqs, kinesis = moto.client("sqs"), moto_kinesis.client("kinesis")
tag = f"r{repeat}-{int(time.time())}"
queue = sqs.create_queue(QueueName=f"bench-{tag}")["QueueUrl"]
kinesis.create_stream(StreamName=f"bench-{tag}", ShardCount=4)
src = f"bench-src-{tag}"
create_topic(bootstrap, src, 3)
produce(src, events)
tmp = out / f"tmp-{repeat}"
tmp.mkdir(exist_ok=True)
kafka_props = {"bootstrap.servers": bootstrap}


def destinations(with_aws: bool, copy: str, preset: str = "high-throughput") -> list[dict]:
    d = [{"name": "kafka", "preset": preset, "kafka": {"topic": copy, "properties": kafka_props}}]
    if with_aws:
        d += [{"name": "sqs", "preset": preset, "sqs": {"queue_url": queue, "aws": moto.aws()}},
              {"name": "kinesis", "preset": preset, "kinesis": {"stream_name": f"bench-{tag}", "aws": moto_kinesis.aws()}}]
    return d


outage_only = os.environ.get("OUTAGE_ONLY") == "1"
aws_events = min(events, int(os.environ.get("AWS_EVENTS", "2000")))
aws_src = f"bench-aws-src-{tag}"
create_topic(bootstrap, aws_src, 3)
produce(aws_src, aws_events)
for label, with_aws, n, topic in () if outage_only else (("kafka", False, events, src), ("kafka+sqs+kinesis", True, aws_events, aws_src)):
    group = f"tp-{label}-{tag}"
    port = free_port()
    names = ["kafka", "sqs", "kinesis"] if with_aws else ["kafka"]
    config = {"source": source(bootstrap, topic, group),
              "destinations": destinations(with_aws, f"copy-{label}-{tag}".replace("+", "-")),
              "delivery": {"max_in_flight": n}}
    pipe = Pipeline(sluice, tmp, config, metrics_port=port).start()
    rates = rates_until(pipe, port, names, n)
    scrape = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    pipe.stop(timeout=900)
    req = {d: histogram(scrape, "sluice_stream_request_seconds", d) for d in names}
    print(f"throughput {label} ({n} events): " + ", ".join(f"{d} {r:,.0f} events/s" for d, r in rates.items())
          + "; request p50/mean ms: " + ", ".join(f"{d} {p:.2f}/{m:.2f}" for d, (p, m) in req.items()))

# moto's own rate, the floor under the AWS destinations: the same 1 KB bodies in full batches.
if outage_only:
    aws_events = 0
fq = sqs.create_queue(QueueName=f"floor-{tag}")["QueueUrl"]
kinesis.create_stream(StreamName=f"floor-{tag}", ShardCount=4)
body = json.dumps({"n": 0, "pad": PAYLOAD})
t = time.monotonic()
for i in range(0, aws_events, 10):
    sqs.send_message_batch(QueueUrl=fq, Entries=[{"Id": str(j), "MessageBody": body} for j in range(10)])
sqs_floor = aws_events / max(time.monotonic() - t, 1e-9)
t = time.monotonic()
for i in range(0, aws_events, 500):
    kinesis.put_records(StreamName=f"floor-{tag}", Records=[{"Data": body.encode(), "PartitionKey": f"k{j}"} for j in range(500)])
kinesis_floor = aws_events / max(time.monotonic() - t, 1e-9)
if not outage_only:
    print(f"moto alone (boto3, one request at a time, {aws_events} events): sqs {sqs_floor:,.0f} events/s, kinesis {kinesis_floor:,.0f} events/s")
    drain_queue(sqs, queue, aws_events, timeout=900)


def latency(with_aws: bool, rate: float) -> tuple[float, float]:
    label = "aws" if with_aws else "alone"
    lat_src, copy, group = f"lat-src-{label}-{tag}", f"lat-copy-{label}-{tag}", f"lat-{label}-{tag}"
    create_topic(bootstrap, lat_src, 3)
    pipe = Pipeline(sluice, tmp, {"source": source(bootstrap, lat_src, group),
                                  "destinations": destinations(with_aws, copy, "low-latency")}).start()
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{copy}", "auto.offset.reset": "earliest",
                  "fetch.wait.max.ms": 5})
    c.subscribe([copy])
    produce(lat_src, 20)  # warm-up: group joined, topics created
    seen = 0
    while seen < 20:
        m = c.poll(1.0)
        seen += m is not None and not m.error()
    samples: list[float] = []
    n = int(rate * 10)
    t = threading.Thread(target=produce, args=(lat_src, n, 20, rate))
    t.start()
    deadline = time.monotonic() + 60
    while len(samples) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        sent = int(dict(m.headers())["sent_ns"])
        samples.append((time.time_ns() - sent) / 1e6)
    t.join()
    c.close()
    pipe.stop(timeout=900)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


for with_aws, rate in () if outage_only else ((False, 200.0), (True, 50.0)):
    p50, p99 = latency(with_aws, rate)
    print(f"latency producer → pipeline → Kafka copy, {rate:.0f}/s, {'with SQS + Kinesis beside it' if with_aws else 'Kafka alone'}: "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")

# Outage: Kinesis down for outage_s seconds while events keep coming.
out_src, group, stream = f"outage-src-{tag}", f"outage-{tag}", f"outage-{tag}"
create_topic(bootstrap, out_src, 3)
kinesis.create_stream(StreamName=stream, ShardCount=4)
buffer = 8 << 20
pipe = Pipeline(sluice, tmp, {"source": source(bootstrap, out_src, group),
                              "destinations": [{"name": "kinesis", "preset": "durable", "batch": {"buffer_bytes": buffer, "max_in_flight": 1},
                                                # moto loses records under concurrent PutRecords
                                                # into one stream (boto3 with 4 threads does too):
                                                # one request at a time, so loss would be ours.
                                                "kinesis": {"stream_name": stream, "aws": moto_kinesis.aws()}}]}).start()


def rss_mb() -> float:
    for line in Path(f"/proc/{pipe.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


produce(out_src, 1000)
while committed(bootstrap, group, out_src, 3) < 1000:
    time.sleep(0.1)
base = rss_mb()
moto_kinesis.pause()
total = 1000 + outage_s * 1000
feeder = threading.Thread(target=produce, args=(out_src, outage_s * 1000, 1000, 1000.0))
feeder.start()
peak = base
t0 = time.monotonic()
while time.monotonic() - t0 < outage_s:
    peak = max(peak, rss_mb())
    time.sleep(1)
feeder.join()
peak = max(peak, rss_mb())
stuck = committed(bootstrap, group, out_src, 3)
moto_kinesis.resume()
t1 = time.monotonic()
while committed(bootstrap, group, out_src, 3) < total:
    if time.monotonic() - t1 > 900:
        raise SystemExit(f"outage: not drained:\n{pipe.text()[-3000:]}")
    time.sleep(0.2)
drained = time.monotonic() - t1
pipe.stop()
from stream_fixture import kinesis_records  # noqa: E402
got = {json.loads(r["Data"])["n"] for r in kinesis_records(kinesis, stream)}
missing = set(range(1000, total)) - got
print(f"outage {outage_s} s of Kinesis at 1,000 events/s (1 KB): pipeline RSS {base:.1f} MB before, {peak:.1f} MB peak "
      f"(buffer {buffer >> 20} MiB); committed during the outage {stuck} of {total} (what was acknowledged before it); "
      f"drained {total - 1000} events in {drained:.1f} s after it came back; missing {len(missing)}")
moto.stop()
moto_kinesis.stop()
