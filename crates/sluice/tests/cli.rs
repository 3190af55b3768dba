//! End-to-end tests of the `sluice` binary: each test starts its own platform on a free
//! loopback port with a temporary data directory and drives it through the CLI (and rdkafka).

// Test code: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// How long a broker may take to print its ready line or to exit after a signal.
const PATIENCE: Duration = Duration::from_secs(60);

/// A `sluice` command with no SLUICE_* settings inherited from the environment, run in `dir`
/// so no stray `./sluice.toml` is picked up.
fn sluice(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SLUICE_") {
            cmd.env_remove(key);
        }
    }
    // `sluice up` also starts KSS, the registry, the REST proxy and the Connect worker: fixed ports would collide
    // between parallel tests.
    cmd.env("SLUICE_KSS_LISTEN", "127.0.0.1:0");
    cmd.env("SLUICE_REGISTRY_LISTEN", "127.0.0.1:0");
    cmd.env("SLUICE_HTTP_LISTEN", "127.0.0.1:0");
    cmd.env("SLUICE_CONNECT_LISTEN", "127.0.0.1:0");
    cmd.env_remove("RUST_LOG").current_dir(dir);
    cmd
}

/// A running `sluice up` (or `sluice broker`), killed on drop if a test fails half-way.
struct Running {
    child: Child,
    /// The ready line printed on stdout.
    ready: String,
    /// `HOST:PORT` the broker listens on.
    bootstrap: String,
}

impl Running {
    /// Starts `sluice <args>` in `dir` and waits for its ready line.
    fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut command = sluice(dir);
        command
            .args(args)
            .env("SLUICE_LOG_LEVEL", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // If the test harness itself is killed (Drop never runs), the platform must not
        // outlive it: SIGTERM on the death of the spawning (test) thread.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().expect("the sluice binary should start");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let ready = match rx.recv_timeout(PATIENCE) {
            Ok(line) if !line.is_empty() => line.trim_end().to_string(),
            other => {
                let _ = child.kill();
                panic!("no ready line from sluice {args:?}: {other:?}");
            }
        };
        let bootstrap = ready
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("ready line without address: {ready}"))
            .to_string();
        Running {
            child,
            ready,
            bootstrap,
        }
    }

    /// Runs a client subcommand against this broker, feeding `stdin`.
    fn client(&self, dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = sluice(dir)
            .args(args)
            .env("SLUICE_BOOTSTRAP", &self.bootstrap)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sluice binary should start");
        let mut input = child.stdin.take().expect("stdin is piped");
        input.write_all(stdin).expect("writing stdin");
        drop(input);
        child.wait_with_output().expect("sluice should finish")
    }

    /// Like [`Running::client`] but the command must succeed; returns its stdout.
    fn ok(&self, dir: &Path, args: &[&str], stdin: &[u8]) -> String {
        let out = self.client(dir, args, stdin);
        assert!(
            out.status.success(),
            "sluice {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Sends `signal` (e.g. "TERM") and waits for the process to exit.
    fn stop_with(mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill should run");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for sluice") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "sluice did not exit after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    /// SIGTERM first, SIGKILL only if that does not end it in time: `sluice up` supervises
    /// its components as child processes, and a SIGKILLed supervisor leaves them shutting
    /// down on their own after the test has removed their data directory.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the pid of a child we have not reaped yet.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fresh temporary directory; the platform's data goes in `<dir>/data`.
fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Arguments that start the platform on a free port with data under `dir`.
fn up_args(dir: &Path) -> Vec<String> {
    let data = dir.join("data");
    vec![
        "up".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        data.to_string_lossy().into_owned(),
    ]
}

fn start_up(dir: &Path) -> Running {
    let args = up_args(dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Running::start(dir, &args, &[])
}

#[test]
fn up_answers_kafka_metadata_and_sigterm_exits_zero() {
    let dir = temp_dir();
    let running = start_up(dir.path());
    assert!(
        running
            .ready
            .starts_with("sluice up: broker listening on 127.0.0.1:"),
        "{}",
        running.ready
    );
    TcpStream::connect(&running.bootstrap).expect("the broker accepts connections");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &running.bootstrap)
        .create()
        .expect("an rdkafka client");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .expect("metadata from the broker");
    let port: i32 = running
        .bootstrap
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    assert_eq!(metadata.brokers().len(), 1);
    assert_eq!(
        metadata.brokers()[0].port(),
        port,
        "advertises the bound port"
    );
    drop(consumer);

    let status = running.stop_with("TERM");
    assert!(status.success(), "SIGTERM should exit 0, got {status}");
}

#[test]
fn sigint_shuts_down_cleanly_and_data_survives_restart() {
    let dir = temp_dir();
    let running = start_up(dir.path());
    running.ok(dir.path(), &["topic", "create", "kept", "-p", "2"], b"");
    running.ok(
        dir.path(),
        &["produce", "kept", "-K", ":"],
        b"a:1\nb:2\nc:3\n",
    );
    let status = running.stop_with("INT");
    assert!(status.success(), "SIGINT should exit 0, got {status}");

    let running = start_up(dir.path());
    let out = running.ok(
        dir.path(),
        &[
            "consume",
            "kept",
            "--from-beginning",
            "--count",
            "3",
            "--timeout-ms",
            "20000",
            "-f",
            "%k:%v",
        ],
        b"",
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["a:1", "b:2", "c:3"]);
    assert!(running.stop_with("TERM").success());
}

#[test]
fn topic_create_list_describe_delete() {
    let dir = temp_dir();
    let running = start_up(dir.path());
    let p = dir.path();

    let out = running.ok(
        p,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "3",
            "-c",
            "retention.ms=3600000",
        ],
        b"",
    );
    assert!(out.contains("created topic orders"), "{out}");
    let again = running.client(p, &["topic", "create", "orders"], b"");
    assert!(
        !again.status.success(),
        "creating an existing topic must fail"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("orders"),
        "the error names the topic"
    );

    let list = running.ok(p, &["topic", "list"], b"");
    assert!(list.lines().any(|l| l == "orders"), "{list}");

    let describe = running.ok(p, &["topic", "describe", "orders"], b"");
    assert!(describe.contains("PartitionCount: 3"), "{describe}");
    assert_eq!(describe.matches("\tPartition: ").count(), 3, "{describe}");
    assert!(
        describe.contains("retention.ms=3600000\n"),
        "topic override shown: {describe}"
    );

    let out = running.ok(p, &["topic", "delete", "orders"], b"");
    assert!(out.contains("deleted topic orders"), "{out}");
    let list = running.ok(p, &["topic", "list"], b"");
    assert!(!list.lines().any(|l| l == "orders"), "{list}");
    let missing = running.client(p, &["topic", "describe", "orders"], b"");
    assert!(
        !missing.status.success(),
        "describing a deleted topic must fail"
    );
}

/// Lines with keys, a tab and a separator inside the value, unicode and an empty value.
fn sample_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 4 {
            0 => format!("key-{}|value {i} with | inside", i % 7),
            1 => format!("key-{}|tab\there ünïcödé {i}", i % 7),
            2 => format!("key-{}|", i % 7),
            _ => format!("key-{}|{}", i % 7, "x".repeat(i % 300)),
        })
        .collect()
}

#[test]
fn produce_lines_then_consume_them_back_identical() {
    let dir = temp_dir();
    let running = start_up(dir.path());
    let p = dir.path();
    let lines = sample_lines(600);
    let mut input = lines.join("\n").into_bytes();
    input.push(b'\n');

    for (topic, compression) in [
        ("plain", "none"),
        ("gz", "gzip"),
        ("lz", "lz4"),
        ("sn", "snappy"),
    ] {
        running.ok(p, &["topic", "create", topic, "-p", "3"], b"");
        running.ok(
            p,
            &[
                "produce",
                topic,
                "-K",
                "|",
                "-H",
                "origin=test",
                "-H",
                "n=1",
                "--compression",
                compression,
            ],
            &input,
        );
        let out = running.ok(
            p,
            &[
                "consume",
                topic,
                "--from-beginning",
                "--count",
                "600",
                "--timeout-ms",
                "20000",
                "-f",
                "%p %o %h %k|%v",
            ],
            b"",
        );
        let mut got: Vec<String> = Vec::new();
        let mut last_offset: std::collections::HashMap<String, i64> = Default::default();
        let mut key_partition: std::collections::HashMap<String, String> = Default::default();
        for line in out.lines() {
            let mut fields = line.splitn(4, ' ');
            let (Some(partition), Some(offset), Some(headers), Some(record)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                panic!("unexpected output line {line:?}");
            };
            assert_eq!(
                headers, "origin=test,n=1",
                "{compression}: headers pass through"
            );
            let offset: i64 = offset.parse().expect("numeric offset");
            let previous = last_offset.insert(partition.to_string(), offset);
            assert!(
                previous.is_none_or(|o| o < offset),
                "{compression}: in order per partition"
            );
            let key = record.split('|').next().unwrap_or_default().to_string();
            let first = key_partition
                .entry(key)
                .or_insert_with(|| partition.to_string());
            assert_eq!(
                first, partition,
                "{compression}: a key stays in one partition"
            );
            got.push(record.to_string());
        }
        let mut want = lines.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(
            got, want,
            "{compression}: consumed records equal produced lines"
        );
    }
}

#[test]
fn consume_count_not_reached_before_idle_timeout_fails() {
    let dir = temp_dir();
    let running = start_up(dir.path());
    running.ok(dir.path(), &["topic", "create", "quiet"], b"");
    let out = running.client(
        dir.path(),
        &[
            "consume",
            "quiet",
            "--from-beginning",
            "--count",
            "1",
            "--timeout-ms",
            "1500",
        ],
        b"",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("only 0 of 1"), "{stderr}");
}

/// Writes `text` to `<dir>/<name>` and returns the path.
fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a config file");
    path
}

#[test]
fn bad_config_file_fails_naming_the_key_and_file() {
    let dir = temp_dir();
    let cases = [
        (
            "unknown.toml",
            "[broker]\nlisten = \"127.0.0.1:0\"\nretention_hours = 5\n",
            "retention_hours",
        ),
        (
            "badvalue.toml",
            "[broker]\nlisten = \"127.0.0.1:0\"\nfsync = \"never\"\n",
            "fsync",
        ),
        (
            "range.toml",
            "[broker]\nlisten = \"127.0.0.1:0\"\ndefault_partitions = 0\n",
            "default_partitions",
        ),
    ];
    for (name, text, key) in cases {
        let path = write_file(dir.path(), name, text);
        let out = sluice(dir.path())
            .args(["up", "--config"])
            .arg(&path)
            .output()
            .expect("sluice should run");
        assert!(!out.status.success(), "{name} must be rejected");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(key),
            "{name}: error should name {key}: {stderr}"
        );
        assert!(
            stderr.contains(name),
            "{name}: error should name the file: {stderr}"
        );
    }
    let out = sluice(dir.path())
        .args(["up", "--config", "does-not-exist.toml"])
        .output()
        .expect("sluice should run");
    assert!(!out.status.success(), "a missing --config file is an error");
}

#[test]
fn flag_beats_env_beats_config_file() {
    let dir = temp_dir();
    let p = dir.path();
    // ./sluice.toml is read without --config.
    write_file(
        p,
        "sluice.toml",
        "[broker]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"file-data\"\n",
    );

    let running = Running::start(p, &["broker"], &[]);
    assert!(
        running.ready.ends_with("(data: file-data)"),
        "{}",
        running.ready
    );
    assert!(
        running.ready.starts_with("sluice broker: "),
        "{}",
        running.ready
    );
    assert!(running.stop_with("TERM").success());

    let running = Running::start(p, &["up"], &[("SLUICE_DATA_DIR", "env-data")]);
    assert!(
        running.ready.ends_with("(data: env-data)"),
        "{}",
        running.ready
    );
    assert!(running.stop_with("TERM").success());

    let running = Running::start(
        p,
        &["up", "--data-dir", "flag-data"],
        &[("SLUICE_DATA_DIR", "env-data")],
    );
    assert!(
        running.ready.ends_with("(data: flag-data)"),
        "{}",
        running.ready
    );
    assert!(running.stop_with("TERM").success());
    assert!(
        p.join("file-data").is_dir() && p.join("env-data").is_dir() && p.join("flag-data").is_dir()
    );
}
