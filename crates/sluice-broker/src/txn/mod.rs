//! The transaction coordinator (KIP-98, KIP-447), with its state in `__transaction_state`.
//!
//! One mutex guards every transactional id; it is held for in-memory bookkeeping, the
//! synchronous `write` of a state record and the synchronous appends of markers, never across
//! an fsync. A commit or abort goes through Kafka's two phases:
//!
//! 1. `Prepare{Commit,Abort}` is written to `__transaction_state` and fsynced: the decision is
//!    durable from here on;
//! 2. a marker is appended to every partition of the transaction (and to the
//!    `__consumer_offsets` partitions its offsets went to) and, once every marker is fsynced,
//!    `Complete{Commit,Abort}` is written (not awaited). EndTxn answers then.
//!
//! AddPartitionsToTxn is fsynced before it answers, as in Kafka. The order gives recovery
//! ([`TxnCoordinator::recover`]) one reading of every crash: a durable `Complete*` means every
//! marker of that transaction is durable, and records of the *next* transaction exist only if
//! its AddPartitionsToTxn record — behind `Complete*` in the same log — is durable. So a
//! durable `Prepare*` is completed by writing its markers again (no later transaction can be
//! caught by them), and an open transaction in a partition that the durable state does not
//! hold open never reached a decision and is aborted. A commit costs three fsyncs in a row:
//! AddPartitionsToTxn, `Prepare*`, the markers.
//!
//! Layout: [`model`] (state and metadata), [`records`] (Kafka's record formats), [`markers`]
//! (the interface markers are written through), `tests`.

pub mod markers;
pub mod model;
pub mod records;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use kafka_protocol::ResponseError;
use sluice_log::{ControlType, TxnMarker};

pub use crate::config::TxnConfig;
use crate::durability::Flusher;
use crate::meta::{Metadata, ProducerIdAllocator};
use crate::state_log::{Durable, LogEntry, MemoryStateLog, StateLog, StateLogError, TopicStateLog};
pub use markers::{MarkerWaits, MarkerWriter};
pub use model::{TxnMetadata, TxnState};
use records::{decode_key, encode_key, TxnLogValue};

/// Name of Kafka's internal transaction state topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The coordinator epoch written into markers: one node is always the coordinator.
const COORDINATOR_EPOCH: i32 = 0;

/// Owns every transactional id's state.
#[derive(Debug, Clone)]
pub struct TxnCoordinator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: TxnConfig,
    /// `__transaction_state`, created on first use as Kafka does (see
    /// [`TxnCoordinator::ensure_log`]).
    log: std::sync::OnceLock<Box<dyn StateLog>>,
    /// Serializes the creation of `log`.
    creating: parking_lot::Mutex<()>,
    txns: parking_lot::Mutex<HashMap<String, TxnMetadata>>,
}

/// What InitProducerId must do after inspecting the state under the lock.
enum InitStep {
    /// Done: the producer id and epoch to return (after the write is durable).
    Ready(i64, i16, Durable),
    /// An open transaction must be aborted (fencing its producer) first.
    Fence(Durable, i16),
}

impl Default for TxnCoordinator {
    /// A coordinator keeping `__transaction_state` in memory (tests, ephemeral brokers).
    fn default() -> Self {
        let config = TxnConfig::default();
        let log = MemoryStateLog::new(config.state_log_partitions);
        TxnCoordinator::new(Some(Box::new(log)), config)
    }
}

impl TxnCoordinator {
    /// Reloads every transactional id from `__transaction_state` if the topic exists (it is
    /// created on first use, see [`Self::ensure_log`]). Call before the broker accepts
    /// connections, then [`Self::recover`].
    pub fn load(
        metadata: &Metadata,
        flusher: Flusher,
        config: &TxnConfig,
    ) -> Result<Self, StateLogError> {
        if metadata.topic(TRANSACTION_STATE_TOPIC).is_none() {
            return Ok(TxnCoordinator::new(None, config.clone()));
        }
        Self::with_log(Self::open_log(metadata, flusher, config)?, config.clone())
    }

    /// Opens `__transaction_state`, creating it (internal, compacted) if needed.
    pub fn open_log(
        metadata: &Metadata,
        flusher: Flusher,
        config: &TxnConfig,
    ) -> Result<Box<dyn StateLog>, StateLogError> {
        let log = TopicStateLog::open(
            metadata,
            flusher,
            TRANSACTION_STATE_TOPIC,
            config.state_log_partitions,
            config.state_log_segment_bytes,
        )?;
        Ok(Box::new(log))
    }

    /// A coordinator over `log`, reloading the state stored in it.
    pub fn with_log(log: Box<dyn StateLog>, config: TxnConfig) -> Result<Self, StateLogError> {
        let coordinator = TxnCoordinator::new(Some(log), config);
        coordinator.replay()?;
        Ok(coordinator)
    }

    fn new(log: Option<Box<dyn StateLog>>, config: TxnConfig) -> Self {
        let cell = std::sync::OnceLock::new();
        if let Some(log) = log {
            let _ = cell.set(log);
        }
        TxnCoordinator {
            inner: Arc::new(Inner {
                config,
                log: cell,
                creating: parking_lot::Mutex::new(()),
                txns: parking_lot::Mutex::new(HashMap::new()),
            }),
        }
    }

    /// True once `__transaction_state` exists.
    pub fn has_log(&self) -> bool {
        self.inner.log.get().is_some()
    }

    /// Creates the state log with `create` unless it exists: a broker that never sees a
    /// transactional producer never pays for the topic's partitions. Blocking I/O.
    pub fn ensure_log(
        &self,
        create: impl FnOnce() -> Result<Box<dyn StateLog>, StateLogError>,
    ) -> Result<(), StateLogError> {
        if self.has_log() {
            return Ok(());
        }
        let _creating = self.inner.creating.lock();
        if self.has_log() {
            return Ok(());
        }
        let _ = self.inner.log.set(create()?);
        Ok(())
    }

    /// The state log, once created.
    fn log(&self) -> Result<&dyn StateLog, ResponseError> {
        self.inner
            .log
            .get()
            .map(|log| log.as_ref())
            .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    /// The coordinator's settings.
    pub fn config(&self) -> &TxnConfig {
        &self.inner.config
    }

    /// The `__transaction_state` partition holding `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        let partitions = self
            .inner
            .log
            .get()
            .map_or(self.inner.config.state_log_partitions, |log| {
                log.partitions()
            });
        crate::state_log::format::partition_for(transactional_id, partitions)
    }

    fn replay(&self) -> Result<(), StateLogError> {
        let Some(log) = self.inner.log.get() else {
            return Ok(());
        };
        let mut txns = self.inner.txns.lock();
        let mut skipped = 0usize;
        for partition in 0..log.partitions() {
            log.replay(partition, &mut |entry| {
                let LogEntry::Record { key, value, .. } = entry else {
                    return;
                };
                let Ok(Some(id)) = decode_key(&key) else {
                    skipped += 1;
                    return;
                };
                match value.map(|v| TxnLogValue::decode(&v)) {
                    None => {
                        txns.remove(&id);
                    }
                    Some(Ok(v)) => {
                        txns.insert(id.clone(), TxnMetadata::from_value(&id, v));
                    }
                    Some(Err(_)) => skipped += 1,
                }
            })?;
        }
        if skipped > 0 {
            tracing::warn!(
                skipped,
                "ignored undecodable records in __transaction_state"
            );
        }
        tracing::info!(
            transactional_ids = txns.len(),
            "loaded transactions from __transaction_state"
        );
        Ok(())
    }

    /// Persists `meta` (no fsync; await the result to make it durable).
    fn write(&self, meta: &TxnMetadata, now_ms: i64) -> Result<Durable, ResponseError> {
        let record = (
            encode_key(&meta.transactional_id),
            Some(meta.to_value().encode()),
        );
        self.log()?
            .append(
                self.partition_for(&meta.transactional_id),
                &[record],
                None,
                now_ms,
            )
            .map_err(|e| {
                tracing::error!(transactional_id = %meta.transactional_id, error = %e, "cannot write transaction state");
                ResponseError::CoordinatorNotAvailable
            })
    }

    /// Applies `change` to `meta` and persists the result; if the write fails, `meta` is left
    /// as it was, so memory never runs ahead of the log.
    fn transition(
        &self,
        meta: &mut TxnMetadata,
        now_ms: i64,
        change: impl FnOnce(&mut TxnMetadata),
    ) -> Result<Durable, ResponseError> {
        let previous = meta.clone();
        change(meta);
        meta.last_update_ms = now_ms;
        self.write(meta, now_ms).inspect_err(|_| *meta = previous)
    }

    /// Bumps the epoch and moves an open transaction to PrepareAbort (a fence by a newer
    /// producer, or a timeout): the markers carry the new epoch, so the old producer's late
    /// writes are refused everywhere.
    fn fence_abort(&self, meta: &mut TxnMetadata, now_ms: i64) -> Result<Durable, ResponseError> {
        self.transition(meta, now_ms, |m| {
            m.last_producer_epoch = m.producer_epoch;
            m.producer_epoch = m.producer_epoch.saturating_add(1);
            m.state = TxnState::PrepareAbort;
            m.prepare_durable = false;
        })
    }

    /// InitProducerId with a `transactional.id`: returns the producer id and epoch to use.
    /// A first call allocates a producer id; later calls bump the epoch (fencing older
    /// producers), aborting a transaction the previous producer left open. `expected` is the
    /// id and epoch a producer that already has one sends to recover (KIP-360).
    pub async fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        ids: &ProducerIdAllocator,
        markers: &dyn MarkerWriter,
    ) -> Result<(i64, i16), ResponseError> {
        let max = i32::try_from(self.inner.config.max_timeout.as_millis()).unwrap_or(i32::MAX);
        if timeout_ms <= 0 || timeout_ms > max {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        // At most one fence: after it the state is CompleteAbort and the next pass bumps.
        for _ in 0..3 {
            let step = self.init_step(transactional_id, timeout_ms, expected, ids)?;
            match step {
                InitStep::Ready(pid, epoch, durable) => {
                    durable.wait().await.map_err(|e| {
                        tracing::error!(transactional_id, error = %e, "transaction state not durable");
                        ResponseError::CoordinatorNotAvailable
                    })?;
                    return Ok((pid, epoch));
                }
                InitStep::Fence(durable, epoch) => {
                    self.finish_prepared(transactional_id, epoch, durable, markers)
                        .await?;
                }
            }
        }
        Err(ResponseError::ConcurrentTransactions)
    }

    fn init_step(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        ids: &ProducerIdAllocator,
    ) -> Result<InitStep, ResponseError> {
        let now = crate::now_ms();
        let mut txns = self.inner.txns.lock();
        let allocate = || {
            ids.allocate().map_err(|e| {
                tracing::warn!(error = %e, "allocating a producer id failed");
                ResponseError::KafkaStorageError
            })
        };
        let Some(meta) = txns.get_mut(transactional_id) else {
            if expected.is_some() {
                return Err(ResponseError::InvalidProducerIdMapping);
            }
            let meta = TxnMetadata {
                transactional_id: transactional_id.to_owned(),
                producer_id: allocate()?,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now,
                prepare_durable: false,
                completing: false,
            };
            let durable = self.write(&meta, now)?;
            let ready = InitStep::Ready(meta.producer_id, meta.producer_epoch, durable);
            txns.insert(transactional_id.to_owned(), meta);
            return Ok(ready);
        };
        if let Some((pid, epoch)) = expected {
            if pid != meta.producer_id {
                return Err(ResponseError::ProducerFenced);
            }
            // A retry of a bump that already happened (or the coordinator bumped on a
            // timeout): answer with the current epoch.
            if epoch == meta.last_producer_epoch && !meta.state.is_prepare() {
                return Ok(InitStep::Ready(
                    meta.producer_id,
                    meta.producer_epoch,
                    Durable::done(),
                ));
            }
            if epoch != meta.producer_epoch {
                return Err(ResponseError::ProducerFenced);
            }
        }
        match meta.state {
            s if s.is_prepare() => Err(ResponseError::ConcurrentTransactions),
            // The previous producer's transaction is aborted first.
            TxnState::Ongoing => {
                let durable = self.fence_abort(meta, now)?;
                Ok(InitStep::Fence(durable, meta.producer_epoch))
            }
            _ => {
                // Epoch exhausted: a new producer id starts over at epoch 0.
                let new_id = if meta.producer_epoch >= i16::MAX - 1 {
                    Some(allocate()?)
                } else {
                    None
                };
                let durable = self.transition(meta, now, |m| {
                    match new_id {
                        Some(id) => {
                            m.producer_id = id;
                            m.producer_epoch = 0;
                            m.last_producer_epoch = -1;
                        }
                        None => {
                            m.last_producer_epoch = m.producer_epoch;
                            m.producer_epoch += 1;
                        }
                    }
                    m.timeout_ms = timeout_ms;
                    m.state = TxnState::Empty;
                    m.partitions.clear();
                    m.start_ms = -1;
                })?;
                Ok(InitStep::Ready(
                    meta.producer_id,
                    meta.producer_epoch,
                    durable,
                ))
            }
        }
    }

    /// Checks that `producer_id`/`epoch` is the current producer of `transactional_id`;
    /// returns its metadata.
    fn current<'a>(
        txns: &'a mut HashMap<String, TxnMetadata>,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&'a mut TxnMetadata, ResponseError> {
        let meta = txns
            .get_mut(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if meta.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if meta.producer_epoch != epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(meta)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds `partitions` to the producer's transaction,
    /// opening one if none is. Await the result before answering: a partition may only hold
    /// the transaction's records once the coordinator durably knows of it.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Durable, ResponseError> {
        let now = crate::now_ms();
        let mut txns = self.inner.txns.lock();
        let meta = Self::current(&mut txns, transactional_id, producer_id, epoch)?;
        if meta.state.is_prepare() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if meta.state == TxnState::Dead {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        let new = partitions.iter().any(|p| !meta.partitions.contains(p));
        if meta.state == TxnState::Ongoing && !new {
            return Ok(Durable::done());
        }
        self.transition(meta, now, |m| {
            if m.state != TxnState::Ongoing {
                m.partitions.clear();
                m.start_ms = now;
                m.state = TxnState::Ongoing;
            }
            m.partitions.extend(partitions.iter().cloned());
        })
    }

    /// Checks that a transactional produce (or offset commit) to `topic`/`partition` belongs
    /// to the producer's open transaction, as Kafka's partition leaders verify (KIP-890): a
    /// write outside a transaction would otherwise never get its marker.
    pub fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ResponseError> {
        let mut txns = self.inner.txns.lock();
        let meta = Self::current(&mut txns, transactional_id, producer_id, epoch)?;
        let key = (topic.to_owned(), partition);
        if meta.state != TxnState::Ongoing || !meta.partitions.contains(&key) {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(())
    }

    /// EndTxn: commits or aborts the producer's transaction. Returns once the decision is
    /// durable and every marker is appended.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        markers: &dyn MarkerWriter,
    ) -> Result<(), ResponseError> {
        let durable = {
            let now = crate::now_ms();
            let mut txns = self.inner.txns.lock();
            let meta = Self::current(&mut txns, transactional_id, producer_id, epoch)?;
            let target = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            match (meta.state, commit) {
                (TxnState::Ongoing, _) => {}
                // A retry of an EndTxn that completed (or is completing).
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                    return Ok(())
                }
                (s, _) if s == target => return Err(ResponseError::ConcurrentTransactions),
                _ => return Err(ResponseError::InvalidTxnState),
            }
            self.transition(meta, now, |m| {
                m.state = target;
                m.prepare_durable = false;
            })?
        };
        self.finish_prepared(transactional_id, epoch, durable, markers)
            .await
    }

    /// Second phase of a commit or abort: once `durable` (the `Prepare*` record) is on disk,
    /// completes it (see [`Self::complete_prepared`]). If the record cannot be made durable
    /// the transaction goes back to Ongoing so the producer can abort it.
    async fn finish_prepared(
        &self,
        transactional_id: &str,
        epoch: i16,
        durable: Durable,
        markers: &dyn MarkerWriter,
    ) -> Result<(), ResponseError> {
        let synced = durable.wait().await;
        {
            let mut txns = self.inner.txns.lock();
            let Some(meta) = txns
                .get_mut(transactional_id)
                .filter(|m| m.producer_epoch == epoch && m.state.is_prepare())
            else {
                return Ok(());
            };
            if let Err(e) = synced {
                tracing::error!(transactional_id, error = %e, "transaction decision not durable; back to Ongoing");
                meta.state = TxnState::Ongoing;
                return Err(ResponseError::CoordinatorNotAvailable);
            }
            meta.prepare_durable = true;
        }
        crate::failpoint::hit("txn-before-markers");
        self.complete_prepared(transactional_id, epoch, markers)
            .await;
        Ok(())
    }

    /// Writes the markers of a durable `Prepare*` transaction, waits until they are durable,
    /// then moves it to `Complete*`. The order is what makes recovery unambiguous: a durable
    /// `Complete*` means every marker is durable, and the next transaction cannot write before
    /// its AddPartitionsToTxn record (behind `Complete*` in the same log) is durable. A marker
    /// that cannot be written or synced leaves the transaction prepared; maintenance retries.
    async fn complete_prepared(
        &self,
        transactional_id: &str,
        epoch: i16,
        markers: &dyn MarkerWriter,
    ) {
        let Some((waits, done)) = self.write_markers(transactional_id, epoch, markers) else {
            return;
        };
        let synced = futures::future::join_all(waits).await;
        self.mark_complete(transactional_id, epoch, done, synced);
    }

    /// Appends the markers of a durable, not yet completing `Prepare*` transaction; returns
    /// the waits for their durability and the state to complete with.
    fn write_markers(
        &self,
        transactional_id: &str,
        epoch: i16,
        markers: &dyn MarkerWriter,
    ) -> Option<(MarkerWaits, TxnState)> {
        let mut txns = self.inner.txns.lock();
        let meta = txns.get_mut(transactional_id).filter(|m| {
            m.producer_epoch == epoch && m.state.is_prepare() && m.prepare_durable && !m.completing
        })?;
        let (control, done) = match meta.state {
            TxnState::PrepareCommit => (ControlType::Commit, TxnState::CompleteCommit),
            _ => (ControlType::Abort, TxnState::CompleteAbort),
        };
        let marker = TxnMarker {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            coordinator_epoch: COORDINATOR_EPOCH,
            control,
        };
        match markers.write_markers(&meta.partitions, &marker) {
            Ok(waits) => {
                meta.completing = true;
                Some((waits, done))
            }
            Err(e) => {
                tracing::error!(transactional_id, error = %e, "writing transaction markers failed; will retry");
                None
            }
        }
    }

    /// Completes a transaction whose markers were written, if they all became durable.
    fn mark_complete(
        &self,
        transactional_id: &str,
        epoch: i16,
        done: TxnState,
        synced: Vec<Result<(), String>>,
    ) {
        let mut txns = self.inner.txns.lock();
        let Some(meta) = txns
            .get_mut(transactional_id)
            .filter(|m| m.producer_epoch == epoch && m.state.is_prepare())
        else {
            return;
        };
        meta.completing = false;
        if let Some(Err(e)) = synced.into_iter().find(Result::is_err) {
            tracing::error!(transactional_id, error = %e, "transaction markers not durable; will retry");
            return;
        }
        // Not awaited: if it is lost, recovery finds `Prepare*` and writes the markers again,
        // which changes nothing since no later transaction can have started.
        let _ = self.transition(meta, crate::now_ms(), |m| m.state = done);
    }

    /// Start-up recovery, before the broker listens: completes every durable `Prepare*`
    /// transaction and settles the open transactions found in the partition logs (`open`:
    /// partition, producer id, epoch) against the durable coordinator state.
    /// Call from a blocking thread: completing waits for the markers to be synced.
    pub fn recover(&self, open: &[((String, i32), i64, i16)], markers: &dyn MarkerWriter) {
        let now = crate::now_ms();
        let mut txns = self.inner.txns.lock();
        for ((topic, partition), pid, epoch) in open {
            let owner = txns
                .values_mut()
                .find(|m| m.producer_id == *pid && m.producer_epoch >= *epoch);
            match owner {
                Some(meta) if meta.state == TxnState::Ongoing || meta.state.is_prepare() => {
                    // The transaction still owns the partition and its outcome will cover it.
                    // (AddPartitionsToTxn is durable before any record is written, so the
                    // partition is normally known already; this repairs older data dirs.)
                    if meta.partitions.insert((topic.clone(), *partition)) {
                        tracing::info!(transactional_id = %meta.transactional_id, topic, partition, "recovered a partition of an open transaction");
                        let _ = self.write(meta, now);
                    }
                }
                _ => {
                    // No coordinator state holds this transaction open: it never reached a
                    // durable commit decision, so it is aborted.
                    tracing::warn!(
                        topic,
                        partition,
                        producer_id = pid,
                        "aborting a transaction the coordinator has no record of"
                    );
                    let marker = TxnMarker {
                        producer_id: *pid,
                        producer_epoch: *epoch,
                        coordinator_epoch: COORDINATOR_EPOCH,
                        control: ControlType::Abort,
                    };
                    let one = BTreeSet::from([(topic.clone(), *partition)]);
                    // Not awaited: if this marker is lost the next start aborts it again.
                    if let Err(e) = markers.write_markers(&one, &marker) {
                        tracing::error!(topic, partition, error = %e, "cannot abort an orphaned transaction");
                    }
                }
            }
        }
        let prepared: Vec<(String, i16)> = txns
            .values()
            .filter(|m| m.state.is_prepare())
            .map(|m| (m.transactional_id.clone(), m.producer_epoch))
            .collect();
        drop(txns);
        if !prepared.is_empty() {
            tracing::info!(
                transactions = prepared.len(),
                "completing transactions decided before the restart"
            );
        }
        // Runs on a blocking thread at start-up; the flusher task syncs the markers meanwhile.
        futures::executor::block_on(async {
            for (id, epoch) in prepared {
                self.complete_prepared(&id, epoch, markers).await;
            }
        });
    }

    /// Periodic work: aborts transactions open longer than their timeout (bumping the epoch,
    /// as Kafka does, so the producer learns it was fenced), retries incomplete markers and
    /// expires idle transactional ids.
    pub async fn maintain(&self, markers: &dyn MarkerWriter) {
        let now = crate::now_ms();
        let expiration =
            i64::try_from(self.inner.config.id_expiration.as_millis()).unwrap_or(i64::MAX);
        let mut aborts = Vec::new();
        let mut retries = Vec::new();
        {
            let mut txns = self.inner.txns.lock();
            let mut expired = Vec::new();
            for meta in txns.values_mut() {
                match meta.state {
                    TxnState::Ongoing
                        if now.saturating_sub(meta.start_ms) > i64::from(meta.timeout_ms) =>
                    {
                        if let Ok(durable) = self.fence_abort(meta, now) {
                            tracing::info!(transactional_id = %meta.transactional_id, timeout_ms = meta.timeout_ms, "aborting a timed-out transaction");
                            aborts.push((
                                meta.transactional_id.clone(),
                                meta.producer_epoch,
                                durable,
                            ));
                        }
                    }
                    s if s.is_prepare() && meta.prepare_durable && !meta.completing => {
                        retries.push((meta.transactional_id.clone(), meta.producer_epoch));
                    }
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                        if now.saturating_sub(meta.last_update_ms) > expiration =>
                    {
                        expired.push(meta.transactional_id.clone());
                    }
                    _ => {}
                }
            }
            for id in expired {
                let partition = self.partition_for(&id);
                let removed = self
                    .log()
                    .ok()
                    .map(|log| log.append(partition, &[(encode_key(&id), None)], None, now));
                if matches!(removed, Some(Ok(_))) {
                    tracing::info!(transactional_id = %id, "expired an idle transactional id");
                    txns.remove(&id);
                }
            }
        }
        for (id, epoch, durable) in aborts {
            let _ = self.finish_prepared(&id, epoch, durable, markers).await;
        }
        for (id, epoch) in retries {
            self.complete_prepared(&id, epoch, markers).await;
        }
    }

    /// Spawns the task running [`Self::maintain`] every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` until `shutdown`.
    pub fn start_maintenance(
        &self,
        markers: Arc<dyn MarkerWriter>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let coordinator = self.clone();
        tokio::spawn(async move {
            let mut interval =
                tokio::time::interval(coordinator.inner.config.abort_timed_out_interval);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => coordinator.maintain(markers.as_ref()).await,
                    changed = shutdown.changed() => {
                        if changed.is_err() || *shutdown.borrow() {
                            break;
                        }
                    }
                }
            }
        })
    }

    /// A copy of one transactional id's state.
    pub fn describe(&self, transactional_id: &str) -> Option<TxnMetadata> {
        self.inner.txns.lock().get(transactional_id).cloned()
    }

    /// Copies of every transactional id's state, sorted by id.
    pub fn list(&self) -> Vec<TxnMetadata> {
        let mut all: Vec<TxnMetadata> = self.inner.txns.lock().values().cloned().collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        all
    }
}
