"""The `sluice` command-line tools against the real broker, cross-checked with kcat."""

from __future__ import annotations

import json
import subprocess


def sluice(sluice_bin: str, broker, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sluice_bin, *args, "-b", broker.bootstrap], input=stdin, capture_output=True,
                            timeout=60)
    assert result.returncode == 0, f"sluice {' '.join(args)} failed: {result.stderr.decode()}"
    return result


def test_cli_topic_produce_consume(sluice_bin, broker, topic_name):
    sluice(sluice_bin, broker, "topic", "create", topic_name, "-p", "3", "-c", "retention.ms=86400000")
    assert topic_name in sluice(sluice_bin, broker, "topic", "list").stdout.decode().split()
    described = sluice(sluice_bin, broker, "topic", "describe", topic_name).stdout.decode()
    assert "86400000" in described

    lines = b"".join(b"k%d:value-%d\n" % (i, i) for i in range(100))
    sluice(sluice_bin, broker, "produce", topic_name, "-K", ":", "-H", "source=cli", "--compression", "gzip",
           stdin=lines)

    out = sluice(sluice_bin, broker, "consume", topic_name, "--from-beginning", "-f", "%k=%v", "-n", "100",
                 "--timeout-ms", "10000").stdout.decode().splitlines()
    assert sorted(out) == sorted(f"k{i}=value-{i}" for i in range(100))

    # kcat sees the same records, with the header the CLI attached.
    kcat = subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-t", topic_name, "-o", "beginning", "-e", "-q",
                           "-J"], capture_output=True, timeout=60)
    records = [json.loads(line) for line in kcat.stdout.decode().splitlines() if line.strip()]
    assert len(records) == 100
    assert all(r["headers"] == ["source", "cli"] for r in records)

    sluice(sluice_bin, broker, "topic", "delete", topic_name)
    assert topic_name not in sluice(sluice_bin, broker, "topic", "list").stdout.decode().split()
