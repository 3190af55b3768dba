//! The components `sluice up` runs together on one machine, started in order and stopped in
//! reverse order when the process is asked to stop.
//!
//! Each component (today the broker; later the registry, KSS, console) is a [`Component`];
//! `sluice up` hands [`run`] the list of components to start, a single-component command such as
//! `sluice broker` hands it a list of one.

pub(crate) mod broker;
pub(crate) mod kss;
pub(crate) mod metrics;
pub(crate) mod signal;
pub(crate) mod supervisor;

use std::future::Future;
use std::io::Write;
use std::pin::Pin;

use tracing::{error, info};

/// A boxed, sendable future, the return type of component lifecycle steps.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A not-yet-started component: awaiting it starts the component.
pub(crate) type Starter = BoxFuture<anyhow::Result<Box<dyn Component>>>;

/// A running part of the platform.
pub(crate) trait Component: Send {
    /// Short name used in logs, e.g. `broker`.
    fn name(&self) -> &'static str;

    /// What the component is doing, for the ready line, e.g.
    /// `broker listening on 127.0.0.1:9092 (data: ./sluice-data)`.
    fn describe(&self) -> String;

    /// Stops the component gracefully: in-flight work finished, data flushed.
    fn shutdown(self: Box<Self>) -> BoxFuture<anyhow::Result<()>>;
}

/// Starts `starters` in order, prints one ready line per component prefixed with `label`, waits
/// for SIGINT/SIGTERM and stops everything in reverse order. A second signal during shutdown
/// abandons it (exit code 130).
pub(crate) async fn run(label: &str, starters: Vec<Starter>) -> anyhow::Result<()> {
    // Installed before anything starts so a stop request during start-up is not lost (and does
    // not kill the process half-way through opening logs).
    let mut signals = signal::Signals::new()?;
    let mut running: Vec<Box<dyn Component>> = Vec::with_capacity(starters.len());
    for starter in starters {
        match starter.await {
            Ok(component) => {
                info!(component = component.name(), "started");
                running.push(component);
            }
            Err(e) => {
                // Whatever already runs must not outlive the failed start.
                if let Err(stop_err) = stop_all(running).await {
                    error!("while stopping after a failed start: {stop_err:#}");
                }
                return Err(e);
            }
        }
    }
    let ready: String = running
        .iter()
        .map(|c| format!("{label}: {}\n", c.describe()))
        .collect();
    announce_ready(&ready);
    serve_until_stopped(&mut signals, stop_all(running)).await
}

/// Prints the ready lines in one write, errors ignored: a reader that takes the first line and
/// closes the pipe must neither miss the others mid-line nor take the platform down with EPIPE.
pub(crate) fn announce_ready(lines: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(lines.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Waits for SIGINT/SIGTERM, then runs `stop`; a second signal during it abandons the
/// shutdown (exit code 130).
pub(crate) async fn serve_until_stopped(
    signals: &mut signal::Signals,
    stop: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let first = signals.recv().await;
    info!("received {first}, shutting down");
    tokio::select! {
        result = stop => result,
        second = signals.recv() => {
            error!("received {second} during shutdown; exiting without waiting for it to finish");
            std::process::exit(130);
        }
    }
}

/// Stops components in reverse start order; every one is asked even if an earlier one fails.
async fn stop_all(running: Vec<Box<dyn Component>>) -> anyhow::Result<()> {
    let mut first_error = None;
    for component in running.into_iter().rev() {
        let name = component.name();
        match component.shutdown().await {
            Ok(()) => info!(component = name, "stopped"),
            Err(e) => {
                error!(component = name, "shutdown failed: {e:#}");
                first_error.get_or_insert(e.context(format!("{name} did not shut down cleanly")));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
