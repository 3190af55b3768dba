//! A worker: follows the config and status topics, runs the tasks of started connectors,
//! records their states, and serves the REST API.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use sluice_admin::NewTopic;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::kafka::KafkaSettings;
use super::membership::{self, Assignment};
use super::metrics::ConnectMetrics;
use super::offsets::OffsetStore;
use super::state::{self, ConfigState, Status, TargetState};
use super::topic_log::{LogRecord, TopicTail};
use super::TaskContext;
use crate::error::ConnectError;
use crate::plugin::{self, Plugin, TaskError};

/// How a worker is set up (Kafka Connect's distributed worker settings).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The Kafka cluster.
    pub kafka: KafkaSettings,
    /// The Connect cluster's name (`group.id`).
    pub group_id: String,
    /// `config.storage.topic`.
    pub config_topic: String,
    /// `offset.storage.topic`.
    pub offset_topic: String,
    /// `status.storage.topic`.
    pub status_topic: String,
    /// Replication factor of the three topics (`None`: the broker's default).
    pub replication_factor: Option<i16>,
    /// Where the REST API listens.
    pub listen: SocketAddr,
    /// The URL other workers and tools reach this one at (default: `http://` and the listen address).
    pub advertised_url: Option<String>,
}

impl WorkerConfig {
    /// The defaults Kafka Connect uses, for a cluster at `bootstrap`.
    pub fn new(bootstrap: &str, listen: SocketAddr) -> Self {
        Self {
            kafka: KafkaSettings {
                bootstrap: bootstrap.to_owned(),
                properties: Vec::new(),
            },
            group_id: "connect-cluster".into(),
            config_topic: "connect-configs".into(),
            offset_topic: "connect-offsets".into(),
            status_topic: "connect-status".into(),
            replication_factor: None,
            listen,
            advertised_url: None,
        }
    }
}

/// A running task.
struct Running {
    config: BTreeMap<String, String>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// The worker's shared state.
pub(crate) struct Inner {
    pub(crate) config: WorkerConfig,
    pub(crate) worker_id: String,
    pub(crate) plugins: Vec<Arc<dyn Plugin>>,
    pub(crate) configs: Arc<RwLock<ConfigState>>,
    pub(crate) statuses: Arc<RwLock<HashMap<String, Status>>>,
    pub(crate) offsets: OffsetStore,
    config_tail: TopicTail,
    status_tail: TopicTail,
    producer: FutureProducer,
    tasks: Mutex<HashMap<(String, u32), Running>>,
    changed: Arc<Notify>,
    /// This worker's place among the cluster's workers (`None`: not a member right now).
    assignment: watch::Receiver<Option<Assignment>>,
    pub(crate) metrics: Arc<ConnectMetrics>,
}

/// A running worker.
pub struct Worker {
    inner: Arc<Inner>,
    local_addr: SocketAddr,
    server: JoinHandle<()>,
    reconciler: JoinHandle<()>,
    membership: JoinHandle<()>,
    leave: watch::Sender<bool>,
}

impl Worker {
    /// Creates the worker's topics if missing, reads them, and starts serving.
    pub async fn start(config: WorkerConfig) -> Result<Self, ConnectError> {
        let kafka = config.kafka.clone();
        let compacted = |name: &str, partitions| NewTopic {
            name: name.to_owned(),
            partitions: Some(partitions),
            replication_factor: config.replication_factor,
            configs: vec![("cleanup.policy".into(), "compact".into())],
        };
        kafka
            .ensure_topic(&compacted(&config.config_topic, 1))
            .await?;
        kafka
            .ensure_topic(&compacted(&config.offset_topic, 25))
            .await?;
        kafka
            .ensure_topic(&compacted(&config.status_topic, 5))
            .await?;
        let producer: FutureProducer = kafka
            .durable_producer_config(&format!("{}-worker", config.group_id))
            .set("linger.ms", "0")
            .create()
            .map_err(|e| {
                ConnectError::Kafka(format!("cannot create the worker's producer: {e}"))
            })?;
        let changed = Arc::new(Notify::new());
        let configs: Arc<RwLock<ConfigState>> = Arc::default();
        let config_tail = {
            let (configs, changed) = (configs.clone(), changed.clone());
            TopicTail::start(
                &kafka,
                &config.config_topic,
                Box::new(move |r: LogRecord<'_>| {
                    let Some(key) = r.key.and_then(|k| std::str::from_utf8(k).ok()) else {
                        return;
                    };
                    let value = r
                        .value
                        .and_then(|v| serde_json::from_slice::<Value>(v).ok());
                    configs.write().apply(key, value.as_ref());
                    changed.notify_one();
                }),
            )?
        };
        let statuses: Arc<RwLock<HashMap<String, Status>>> = Arc::default();
        let status_tail = {
            let statuses = statuses.clone();
            TopicTail::start(
                &kafka,
                &config.status_topic,
                Box::new(move |r: LogRecord<'_>| {
                    let Some(key) = r.key.and_then(|k| std::str::from_utf8(k).ok()) else {
                        return;
                    };
                    match r
                        .value
                        .and_then(|v| serde_json::from_slice::<Value>(v).ok())
                    {
                        Some(v) => {
                            if let Some(s) = Status::from_value(&v) {
                                statuses.write().insert(key.to_owned(), s);
                            }
                        }
                        None => {
                            statuses.write().remove(key);
                        }
                    }
                }),
            )?
        };
        let offsets = OffsetStore::start(&kafka, &config.offset_topic, producer.clone())?;
        config_tail.catch_up(Duration::from_secs(60)).await?;
        status_tail.catch_up(Duration::from_secs(60)).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                ConnectError::Config(format!("cannot listen on {}: {e}", config.listen))
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| ConnectError::Config(e.to_string()))?;
        let worker_id = config
            .advertised_url
            .clone()
            .map(|u| {
                u.trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .to_owned()
            })
            .unwrap_or_else(|| local_addr.to_string());
        let (assignment_tx, assignment) = watch::channel(None);
        let (leave, leave_rx) = watch::channel(false);
        let advertised = config
            .advertised_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let membership = tokio::spawn(membership::run(
            kafka.clone(),
            config.group_id.clone(),
            advertised,
            assignment_tx,
            leave_rx,
        ));
        {
            // A new assignment is a reason to look again.
            let (mut assignment, changed) = (assignment.clone(), changed.clone());
            tokio::spawn(async move {
                while assignment.changed().await.is_ok() {
                    changed.notify_one();
                }
            });
        }
        let metrics = Arc::new(ConnectMetrics::new(statuses.clone(), worker_id.clone()));
        let inner = Arc::new(Inner {
            config,
            worker_id,
            plugins: plugin::all(),
            configs,
            statuses,
            offsets,
            config_tail,
            status_tail,
            producer,
            tasks: Mutex::new(HashMap::new()),
            changed,
            assignment,
            metrics,
        });
        let reconciler = {
            let inner = inner.clone();
            tokio::spawn(async move {
                loop {
                    inner.reconcile().await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), inner.changed.notified())
                        .await;
                }
            })
        };
        let server = {
            let app = super::rest::router(inner.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!("the Connect REST server stopped: {e}");
                }
            })
        };
        tracing::info!(addr = %local_addr, "Connect worker ready");
        Ok(Self {
            inner,
            local_addr,
            server,
            reconciler,
            membership,
            leave,
        })
    }

    /// Where the REST API listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The worker's metrics (for a Prometheus endpoint).
    pub fn metrics(&self) -> Arc<ConnectMetrics> {
        self.inner.metrics.clone()
    }

    /// Stops every task (letting each store its last position), leaves the group so the
    /// other workers take the tasks over at once, and stops the server.
    pub async fn shutdown(self) {
        self.reconciler.abort();
        self.server.abort();
        let running: Vec<_> = self.inner.tasks.lock().drain().collect();
        for ((name, n), r) in running {
            let _ = r.stop.send(true);
            if tokio::time::timeout(Duration::from_secs(10), r.handle)
                .await
                .is_err()
            {
                tracing::warn!(connector = %name, task = n, "task did not stop within 10 s");
            }
        }
        let _ = self.leave.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.membership).await;
    }
}

impl Inner {
    /// Writes records to the config topic in order and waits until this worker has read them.
    pub(crate) async fn write_config(
        &self,
        records: Vec<(String, Option<Value>)>,
    ) -> Result<(), ConnectError> {
        for (key, value) in records {
            self.send(&self.config.config_topic, &key, value.as_ref())
                .await?;
        }
        self.config_tail.catch_up(Duration::from_secs(30)).await?;
        self.changed.notify_one();
        Ok(())
    }

    async fn send(
        &self,
        topic: &str,
        key: &str,
        value: Option<&Value>,
    ) -> Result<(), ConnectError> {
        let payload = value.map(|v| serde_json::to_vec(v).unwrap_or_default());
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key);
        if let Some(p) = payload.as_deref() {
            record = record.payload(p);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(drop)
            .map_err(|(e, _)| ConnectError::Kafka(format!("cannot write to {topic}: {e}")))
    }

    /// Records a status (`None` removes it).
    async fn write_status(&self, key: String, status: Option<Status>) {
        let value = status.map(|s| s.to_value(1));
        if let Err(e) = self
            .send(&self.config.status_topic, &key, value.as_ref())
            .await
        {
            tracing::warn!("cannot record status {key}: {e}");
        }
    }

    /// Waits until statuses written so far are visible.
    pub(crate) async fn statuses_caught_up(&self) {
        let _ = self.status_tail.catch_up(Duration::from_secs(10)).await;
    }

    fn status(&self, state: &str, trace: Option<String>) -> Status {
        Status {
            state: state.to_owned(),
            trace,
            worker_id: self.worker_id.clone(),
        }
    }

    /// Asks the reconciler to look again.
    pub(crate) fn poke(&self) {
        self.changed.notify_one();
    }

    /// Stops tasks of `name` (all, or those listed) so the reconciler starts them afresh.
    pub(crate) async fn restart_tasks(&self, name: &str, only: Option<&[u32]>) {
        let stopped: Vec<_> = {
            let mut tasks = self.tasks.lock();
            let keys: Vec<_> = tasks
                .keys()
                .filter(|(c, n)| c == name && only.is_none_or(|o| o.contains(n)))
                .cloned()
                .collect();
            keys.into_iter().filter_map(|k| tasks.remove(&k)).collect()
        };
        for r in stopped {
            let _ = r.stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(10), r.handle).await;
        }
        self.poke();
    }

    /// Brings running tasks in line with the configured connectors: this worker runs the
    /// tasks its assignment gives it (every `workers`-th of the sorted task list) and
    /// records the state of the connectors it owns (likewise, of the sorted connector list).
    async fn reconcile(self: &Arc<Self>) {
        let assignment = self.assignment.borrow().clone();
        let owns = |position: usize| assignment.as_ref().is_some_and(|a| a.owns(position));
        let wanted: BTreeMap<(String, u32), (BTreeMap<String, String>, TargetState)> = {
            let configs = self.configs.read();
            configs
                .connectors
                .iter()
                .flat_map(|(name, c)| {
                    c.tasks
                        .iter()
                        .enumerate()
                        .map(move |(i, t)| ((name.clone(), i as u32), (t.clone(), c.target)))
                })
                .enumerate()
                .filter(|(position, _)| owns(*position))
                .map(|(_, entry)| entry)
                .collect()
        };
        let all_connectors: Vec<String> = self.configs.read().connectors.keys().cloned().collect();
        let connectors: BTreeMap<String, TargetState> = self
            .configs
            .read()
            .connectors
            .iter()
            .enumerate()
            .filter(|(position, _)| owns(*position))
            .map(|(_, (n, c))| (n.clone(), c.target))
            .collect();
        // Stop what is no longer wanted, or wanted differently.
        let to_stop: Vec<((String, u32), Running, Option<TargetState>)> = {
            let mut tasks = self.tasks.lock();
            let keys: Vec<_> = tasks
                .iter()
                .filter(|(k, r)| match wanted.get(*k) {
                    Some((config, TargetState::Started)) => *config != r.config,
                    _ => true,
                })
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| {
                    let target = wanted.get(&k).map(|(_, t)| *t);
                    tasks.remove(&k).map(|r| (k, r, target))
                })
                .collect()
        };
        for ((name, n), r, target) in to_stop {
            let _ = r.stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(10), r.handle).await;
            let key = state::task_status_key(&name, n);
            match target {
                Some(TargetState::Paused) => {
                    self.write_status(key, Some(self.status("PAUSED", None)))
                        .await
                }
                Some(TargetState::Stopped) => self.write_status(key, None).await,
                // Moved to another worker (which records its state) or deleted (whose
                // statuses the first worker removes).
                Some(TargetState::Started) => {}
                None => {
                    if !all_connectors.contains(&name) {
                        self.metrics.forget(&name);
                    }
                }
            }
        }
        // Connector states.
        for (name, target) in &connectors {
            let state = match target {
                TargetState::Started => "RUNNING",
                TargetState::Paused => "PAUSED",
                TargetState::Stopped => "STOPPED",
            };
            let key = state::connector_status_key(name);
            let current = self.statuses.read().get(&key).cloned();
            let desired = self.status(state, None);
            if current.as_ref() != Some(&desired) {
                self.write_status(key, Some(desired)).await;
            }
        }
        // Paused tasks this worker holds.
        for ((name, n), (_, target)) in &wanted {
            if *target == TargetState::Paused {
                let key = state::task_status_key(name, *n);
                let desired = self.status("PAUSED", None);
                if self.statuses.read().get(&key) != Some(&desired) {
                    self.write_status(key, Some(desired)).await;
                }
            }
        }
        // The first worker forgets statuses of deleted connectors.
        let first = assignment.as_ref().is_some_and(|a| a.index == 0);
        let stale: Vec<String> = self
            .statuses
            .read()
            .keys()
            .filter(|k| {
                let name = k.strip_prefix("status-connector-").or_else(|| {
                    k.strip_prefix("status-task-")
                        .and_then(|r| r.rsplit_once('-').map(|(n, _)| n))
                });
                first && name.is_some_and(|n| !all_connectors.iter().any(|c| c == n))
            })
            .cloned()
            .collect();
        for key in stale {
            self.write_status(key, None).await;
        }
        // Start what is wanted and not running.
        for ((name, n), (config, target)) in wanted {
            if target != TargetState::Started || self.tasks.lock().contains_key(&(name.clone(), n))
            {
                continue;
            }
            self.start_task(name, n, config).await;
        }
    }

    async fn start_task(self: &Arc<Self>, name: String, n: u32, config: BTreeMap<String, String>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let class = config.get("connector.class").cloned().unwrap_or_default();
        let key = state::task_status_key(&name, n);
        let Some(plugin) = plugin::find(&self.plugins, &class) else {
            self.write_status(
                key,
                Some(self.status("FAILED", Some(format!("no connector plugin {class}")))),
            )
            .await;
            let handle = tokio::spawn(async {});
            self.tasks.lock().insert(
                (name, n),
                Running {
                    config,
                    stop: stop_tx,
                    handle,
                },
            );
            return;
        };
        self.write_status(key.clone(), Some(self.status("RUNNING", None)))
            .await;
        let inner = self.clone();
        let task_config = config.clone();
        let task_name = name.clone();
        let handle = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                let ctx = TaskContext {
                    connector: task_name.clone(),
                    task: n,
                    kafka: inner.config.kafka.clone(),
                    offsets: inner.offsets.clone(),
                    stop: stop_rx.clone(),
                    metrics: inner.metrics.clone(),
                };
                let result = plugin.run_task(ctx, task_config.clone()).await;
                if *stop_rx.borrow() {
                    return;
                }
                match result {
                    Ok(()) => {
                        tracing::info!(connector = %task_name, task = n, "task finished");
                        return;
                    }
                    Err(TaskError::Retriable(e)) => {
                        inner.metrics.restarted(&task_name);
                        tracing::warn!(connector = %task_name, task = n, "task failed, retrying in {backoff:?}: {e}");
                        let mut stop = stop_rx.clone();
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.changed() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                    Err(TaskError::Fatal(e)) => {
                        tracing::error!(connector = %task_name, task = n, "task failed: {e}");
                        inner
                            .write_status(key, Some(inner.status("FAILED", Some(e))))
                            .await;
                        return;
                    }
                }
            }
        });
        self.tasks.lock().insert(
            (name, n),
            Running {
                config,
                stop: stop_tx,
                handle,
            },
        );
    }
}
