//! `sluice up` as a supervisor: every component runs in a process of its own, so that an abort,
//! a stack overflow or the OOM killer in one (say, the schema registry fed a hostile schema)
//! cannot take the broker or the others down with it.
//!
//! Each child is this same binary, re-run with the same arguments and [`COMPONENT_ENV`] naming
//! the one component it runs. Children start in order, each once the previous one printed its
//! ready line, and stop in reverse order on SIGINT/SIGTERM. A child that exits on its own is
//! reported and restarted with exponential backoff; its siblings keep running. Children live in
//! their own process group (a Ctrl-C reaches only the supervisor, which then stops them in
//! order) and get SIGTERM if the supervisor dies.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::signal::Signals;

/// Environment variable that tells a child which component to run.
pub(crate) const COMPONENT_ENV: &str = "SLUICE_UP_COMPONENT";

/// How long a child may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// First and largest pause before restarting a child that exited.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A child that ran this long is considered healthy again: the backoff starts over.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// One component to run in a child process.
#[derive(Debug, Clone)]
pub(crate) struct ChildSpec {
    /// Component name, as the child's [`COMPONENT_ENV`] value and in logs.
    pub name: &'static str,
    /// Extra environment for the child (settings the supervisor resolved once for all).
    pub env: Vec<(String, String)>,
}

/// A running, supervised child.
struct Supervised {
    name: &'static str,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Starts `children` in order, prints their ready lines, restarts any that exits, and stops all
/// in reverse order on SIGINT/SIGTERM.
pub(crate) async fn run(children: Vec<ChildSpec>) -> anyhow::Result<()> {
    let mut signals = Signals::new()?;
    let exe = std::env::current_exe().context("cannot find the sluice executable to re-run")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut running: Vec<Supervised> = Vec::with_capacity(children.len());
    let mut ready_lines = String::new();
    for spec in children {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stop_rx) = watch::channel(false);
        let name = spec.name;
        let launcher = Launcher {
            exe: exe.clone(),
            args: args.clone(),
            spec,
        };
        let task = tokio::spawn(launcher.supervise(ready_tx, stop_rx));
        running.push(Supervised { name, stop, task });
        let started = tokio::select! {
            ready = ready_rx => ready.unwrap_or_else(|_| Err(anyhow::anyhow!("{name} exited during start-up"))),
            signal = signals.recv() => Err(anyhow::anyhow!("received {signal} during start-up")),
        };
        match started {
            Ok(line) => {
                ready_lines.push_str(&line);
                ready_lines.push('\n');
            }
            Err(e) => {
                if let Err(stop_err) = stop_all(running).await {
                    error!("while stopping after a failed start: {stop_err:#}");
                }
                return Err(e.context(format!("could not start {name}")));
            }
        }
    }
    super::announce_ready(&ready_lines);
    super::serve_until_stopped(&mut signals, stop_all(running)).await
}

/// Stops children in reverse start order, each after the one started after it; every one is
/// asked even if an earlier one fails.
async fn stop_all(running: Vec<Supervised>) -> anyhow::Result<()> {
    let mut first_error = None;
    for child in running.into_iter().rev() {
        let _ = child.stop.send(true);
        let result = match child.task.await {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("its supervisor task failed: {e}")),
        };
        match result {
            Ok(()) => info!(component = child.name, "stopped"),
            Err(e) => {
                error!(component = child.name, "shutdown failed: {e:#}");
                first_error
                    .get_or_insert(e.context(format!("{} did not shut down cleanly", child.name)));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// How to (re)start one child.
struct Launcher {
    exe: std::path::PathBuf,
    args: Vec<OsString>,
    spec: ChildSpec,
}

impl Launcher {
    /// Runs the child until asked to stop, restarting it whenever it exits on its own. The
    /// first ready line (or the first start failure) goes to `ready`.
    async fn supervise(
        self,
        ready: oneshot::Sender<anyhow::Result<String>>,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let name = self.spec.name;
        let mut ready = Some(ready);
        let mut backoff = BACKOFF_MIN;
        loop {
            let started_at = Instant::now();
            let (mut child, line) = match self.start().await {
                Ok(started) => started,
                Err(e) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(e));
                        return Ok(());
                    }
                    error!(component = name, "restart failed: {e:#}");
                    if !pause(&mut stop, &mut backoff).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            match ready.take() {
                Some(ready) => {
                    let _ = ready.send(Ok(line));
                }
                None => warn!(component = name, "restarted: {line}"),
            }
            let exited = tokio::select! {
                status = child.wait() => Some(status),
                _ = stop.wait_for(|stop| *stop) => None,
            };
            let Some(status) = exited else {
                return terminate(name, &mut child).await;
            };
            let status = describe_exit(status);
            if started_at.elapsed() >= HEALTHY_AFTER {
                backoff = BACKOFF_MIN;
            }
            error!(
                component = name,
                "exited unexpectedly ({status}); the other components keep running, restarting it in {backoff:?}"
            );
            if !pause(&mut stop, &mut backoff).await {
                return Ok(());
            }
        }
    }

    /// Spawns the child and waits for its ready line.
    async fn start(&self) -> anyhow::Result<(Child, String)> {
        let name = self.spec.name;
        let mut command = Command::new(&self.exe);
        command
            .args(&self.args)
            .env(COMPONENT_ENV, name)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and calls only prctl, which
        // is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                // The child must not outlive a supervisor that was killed.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("the child's standard output is not a pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::select! {
            line = tokio::time::timeout(READY_TIMEOUT, lines.next_line()) => line,
            status = child.wait() => bail!("{name} exited during start-up ({})", describe_exit(status)),
        };
        match line {
            Ok(Ok(Some(line))) => {
                tokio::spawn(forward(lines));
                Ok((child, line))
            }
            Ok(Ok(None)) | Ok(Err(_)) => {
                let status = child.wait().await;
                bail!("{name} exited during start-up ({})", describe_exit(status))
            }
            Err(_) => {
                let _ = terminate(name, &mut child).await;
                bail!("{name} printed no ready line within {READY_TIMEOUT:?}")
            }
        }
    }
}

/// Passes what a child prints after its ready line on to our standard output. Write errors
/// are ignored (`println!` would panic on a reader that closed the pipe).
async fn forward(mut lines: tokio::io::Lines<BufReader<ChildStdout>>) {
    use std::io::Write;
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// Waits `backoff` (doubling it for next time) unless asked to stop; false when stopping.
async fn pause(stop: &mut watch::Receiver<bool>, backoff: &mut Duration) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        _ = stop.wait_for(|stop| *stop) => false,
    }
}

/// SIGTERM, then SIGKILL if the child has not stopped within [`STOP_TIMEOUT`]; an error
/// unless it exited cleanly.
async fn terminate(name: &str, child: &mut Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(status) => bail!("{name} stopped with {}", describe_exit(status)),
        Err(_) => {
            let _ = child.kill().await;
            bail!("{name} did not stop within {STOP_TIMEOUT:?} and was killed")
        }
    }
}

/// `exit code 1`, `killed by signal 6`, ...
fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => s.to_string(),
        },
        Err(e) => format!("unknown status: {e}"),
    }
}
