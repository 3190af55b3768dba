//! The process's logger: tracing to stderr with an `EnvFilter` that can be changed at run time,
//! which the broker offers as Kafka's BROKER_LOGGER resource (levels per logger through
//! DescribeConfigs / IncrementalAlterConfigs).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::telemetry;

/// The installed filter's reload handle and what it was built from.
static CONTROL: OnceLock<Arc<LogControl>> = OnceLock::new();

/// Installs the tracing subscriber (stderr, and OpenTelemetry when the environment asks for
/// it, see [`crate::telemetry`]); `log` records from librdkafka are bridged into it.
/// `flag` (`--log-level`) wins over RUST_LOG, which wins over `default`; it filters the log
/// lines only, so traces keep their spans whatever the log level. `service` names the process
/// in traces. The returned guard, when tracing is on, sends the last spans when dropped.
pub(crate) fn init(
    flag: Option<&str>,
    default: &str,
    service: &str,
) -> anyhow::Result<Option<telemetry::Traces>> {
    let base = match flag {
        Some(directives) => {
            EnvFilter::try_new(directives).map_err(|e| {
                anyhow::anyhow!(
                    "invalid --log-level {directives:?}: {e}; use e.g. `info` or `sluice_broker=debug`"
                )
            })?;
            directives.to_owned()
        }
        None => match std::env::var("RUST_LOG") {
            Ok(env) if EnvFilter::try_new(&env).is_ok() => env,
            _ => default.to_owned(),
        },
    };
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&base));
    let not_trace_spans = filter_fn(|meta| meta.target() != telemetry::TRACE_TARGET);
    let log_lines = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter.and(not_trace_spans));
    // Without tracing there is no second layer at all (not even an empty `Option`), so the
    // spans nobody records stay disabled callsites. A bad tracing setting costs the traces,
    // not the service.
    let traces_layer = telemetry::enabled()
        .then(|| telemetry::layer(service))
        .and_then(|made| {
            made.map_err(|e| eprintln!("sluice: traces are off: {e:#}"))
                .ok()
        });
    let installed = if let Some((layer, guard)) = traces_layer {
        tracing_subscriber::registry()
            .with(log_lines)
            .with(layer)
            .try_init()
            .map(|()| Some(guard))
    } else {
        tracing_subscriber::registry()
            .with(log_lines)
            .try_init()
            .map(|()| None)
    };
    let traces = installed.map_err(|e| anyhow::anyhow!("could not install the logger: {e}"))?;
    let _ = CONTROL.set(Arc::new(LogControl {
        handle,
        base,
        loggers: Mutex::new(BTreeMap::new()),
    }));
    Ok(traces)
}

/// The run-time log level control, once [`init`] has installed the logger.
pub(crate) fn control() -> Option<Arc<dyn sluice_broker::config::LogLevels>> {
    CONTROL
        .get()
        .map(|c| c.clone() as Arc<dyn sluice_broker::config::LogLevels>)
}

/// Levels set at run time on top of the start-up filter.
struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    /// The start-up directives, e.g. `info` or `info,sluice_broker::net=debug`.
    base: String,
    /// Loggers (tracing targets, e.g. `sluice_broker::net`) with a level set at run time.
    loggers: Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl sluice_broker::config::LogLevels for LogControl {
    fn levels(&self) -> Vec<(String, String)> {
        // The root level is the start-up filter's bare level (its first directive without `=`).
        let root = self
            .base
            .split(',')
            .map(str::trim)
            .find(|d| !d.contains('=') && !d.is_empty())
            .unwrap_or("error")
            .to_ascii_uppercase();
        let mut levels = vec![("root".to_owned(), root)];
        levels.extend(
            self.loggers
                .lock()
                .iter()
                .map(|(logger, level)| (logger.clone(), level.to_ascii_uppercase())),
        );
        levels
    }

    fn apply(
        &self,
        changes: &[(String, Option<String>)],
        validate_only: bool,
    ) -> Result<(), String> {
        let mut loggers = self.loggers.lock();
        let mut next = loggers.clone();
        for (logger, level) in changes {
            let valid_target = !logger.is_empty()
                && logger
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-');
            if !valid_target || logger == "root" {
                return Err(format!(
                    "logger {logger:?} is not a module path such as sluice_broker::net (the root level is set at start-up)"
                ));
            }
            match level {
                Some(level) => next.insert(logger.clone(), level.clone()),
                None => next.remove(logger),
            };
        }
        let directives = std::iter::once(self.base.clone())
            .chain(next.iter().map(|(l, v)| format!("{l}={v}")))
            .collect::<Vec<_>>()
            .join(",");
        let filter = EnvFilter::try_new(&directives).map_err(|e| e.to_string())?;
        if validate_only {
            return Ok(());
        }
        self.handle.reload(filter).map_err(|e| e.to_string())?;
        *loggers = next;
        Ok(())
    }
}
