"""Fixtures that run the real `sluice broker` binary for the client compatibility suite."""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 30.0
LOG_TAIL_BYTES = 20_000


def find_sluice_bin() -> str:
    """The broker binary: $SLUICE_BIN, else the newest cargo build under the target dir."""
    explicit = os.environ.get("SLUICE_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            pytest.exit(f"SLUICE_BIN={explicit} is not an executable file; build it with cargo build -p sluice", 2)
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    candidates = [p for p in (target / "release" / "sluice", target / "debug" / "sluice") if p.exists()]
    if not candidates:
        pytest.exit(f"no sluice binary under {target}; run cargo build -p sluice or set SLUICE_BIN", 2)
    return str(max(candidates, key=lambda p: p.stat().st_mtime))


def _die_with_parent() -> None:
    """Runs in the forked broker: it gets SIGKILL if pytest itself dies (e.g. a hard timeout)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _prepare_child(file_size_limit: int | None) -> None:
    """Runs in the forked broker before exec: parent-death signal, and the file-size limit."""
    _die_with_parent()
    if file_size_limit is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Broker:
    """One `sluice broker` process on a loopback port; survives restarts on the same port and data dir."""

    def __init__(self, binary: str, data_dir: Path, log_path: Path, extra_args: list[str] | None = None):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = list(extra_args or [])
        # Environment for the next start, e.g. SLUICE_FAILPOINT for crash-point tests.
        self.extra_env: dict[str, str] = {}
        # RLIMIT_FSIZE for the next start, in bytes: files cannot grow past it, like a full disk.
        self.file_size_limit: int | None = None
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.unexpected_exit: str | None = None

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("broker already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [self.binary, "broker", "--listen", self.bootstrap, "--data-dir", str(self.data_dir), *self.extra_args]
        # Hermetic: no SLUICE_* settings or ./sluice.toml from the developer's shell leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start: {' '.join(cmd)} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=self.data_dir.parent,
                preexec_fn=functools.partial(_prepare_child, self.file_size_limit),
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"broker exited with code {self.proc.returncode} during start-up:\n{self.log_tail()}"
                )
            if port_accepts(self.port):
                return
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"broker did not accept connections on {self.bootstrap} within {STARTUP_TIMEOUT_S}s")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Fails loudly if the broker died on its own (a crash the test didn't ask for)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"broker died unexpectedly with exit code {self.proc.returncode}:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Graceful shutdown (SIGTERM or SIGINT); returns the exit code. A broker that hangs is a failure."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"broker ignored SIGTERM for {SHUTDOWN_TIMEOUT_S}s and was killed")
        else:
            self.unexpected_exit = f"broker had already exited with code {self.proc.returncode} before stop()"
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        """Simulates a crash: SIGKILL, no chance to flush or clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Graceful stop then start on the same port and data directory."""
        code = self.stop()
        if code != 0:
            raise AssertionError(f"broker exited with code {code} on SIGTERM:\n{self.log_tail()}")
        self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self) -> str:
        return self.log_text()[-LOG_TAIL_BYTES:]



@pytest.fixture(scope="session")
def sluice_bin() -> str:
    """Path of the `sluice` binary under test (see find_sluice_bin)."""
    return find_sluice_bin()


@pytest.fixture
def broker(sluice_bin, tmp_path, request):
    """A fresh broker with an empty data dir; stopped (SIGTERM) at teardown, which must succeed.

    Extra flags come from `@pytest.mark.broker_args(...)`. The broker's log is attached to the
    report of a failing test; set SLUICE_KEEP_DATA=1 to keep its data directory for inspection.
    """
    marker = request.node.get_closest_marker("broker_args")
    b = Broker(sluice_bin, tmp_path / "data", tmp_path / "broker.log", list(marker.args) if marker else [])
    request.node.sluice_broker = b
    b.start()
    try:
        yield b
    finally:
        # Destroy the test's leftover clients while the broker is still up, so librdkafka doesn't
        # log connection-refused noise into later tests' output.
        gc.collect()
        died = b.proc is not None and b.proc.poll() is not None
        code = b.stop()
        if not os.environ.get("SLUICE_KEEP_DATA"):
            shutil.rmtree(b.data_dir, ignore_errors=True)
    # The broker log itself is attached to the failure report by pytest_runtest_makereport.
    if died:
        pytest.fail(f"broker died during the test with exit code {code}")
    if "panicked at" in b.log_text():
        pytest.fail("broker panicked during the test")
    if code != 0:
        pytest.fail(f"broker exited with code {code} on SIGTERM (expected a clean shutdown)")


@pytest.fixture
def topic_name(request) -> str:
    """A unique, valid topic name derived from the test name."""
    base = "".join(c if c.isalnum() or c in "._-" else "-" for c in request.node.name)[:150]
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    broker = getattr(item, "sluice_broker", None)
    if broker is not None and report.failed:
        report.sections.append((f"sluice broker log ({broker.log_path})", broker.log_tail()))
