//! Group commit: makes `acks=-1` produce durable while letting concurrent producers share fsyncs.
//!
//! Producers append under the partition lock (a plain `write`) and then call
//! [`Flusher::wait_durable`]. A single background task collects the partitions that became
//! dirty, takes a [`sluice_log::SyncHandle`] for each (cheap, under the lock), fsyncs them on
//! the blocking pool *without* the lock, records the result and wakes every waiter it covers.
//! Waiters that arrive while an fsync is running are served by the next round, so N concurrent
//! producers cost about two fsyncs, not N.
//!
//! The trade-off is chosen with [`FsyncPolicy`] (`sluice up --fsync always|interval`):
//! - `always` (default): an `acks=-1` produce is answered only after its data is fsynced, so an
//!   acknowledged message survives a power loss or kernel crash. Cost: the produce latency
//!   includes an fsync (shared by everything that arrived meanwhile). `acks=1` is answered
//!   after the `write` and synced within `flush_interval`.
//! - `interval`: nothing waits; the flusher syncs every `flush_interval`. An acknowledged
//!   message survives a crash of the broker process (the data is in the page cache) but up to
//!   `flush_interval` of acknowledged writes can be lost if the machine itself goes down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tracing::warn;

use crate::config::FsyncPolicy;
use crate::partition::Partition;

/// Why data could not be made durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DurabilityError {
    /// fsync of a partition's files failed; the data may not survive a crash.
    #[error(
        "fsync of {topic}-{partition} failed: {reason}; check the disk holding the data directory"
    )]
    SyncFailed {
        /// Topic of the partition.
        topic: String,
        /// Partition number.
        partition: i32,
        /// The storage error.
        reason: String,
    },
    /// The broker is shutting down and its flusher has stopped.
    #[error("the broker is shutting down; retry against the restarted broker")]
    ShuttingDown,
}

/// A producer waiting for `offset` (exclusive) to become durable.
#[derive(Debug)]
struct Waiter {
    offset: i64,
    done: oneshot::Sender<Result<(), DurabilityError>>,
}

/// A dirty partition and who waits on it.
#[derive(Debug)]
struct Dirty {
    partition: Arc<Partition>,
    waiters: Vec<Waiter>,
}

/// Shared between [`Flusher`] handles and the background task.
#[derive(Debug)]
struct Inner {
    policy: FsyncPolicy,
    interval: Duration,
    /// Keyed by the partition's address: the `Arc` keeps it alive, so the key is stable.
    dirty: parking_lot::Mutex<HashMap<usize, Dirty>>,
    /// Wakes the background task when a waiter arrives (stores a permit, so none is lost).
    wake: Notify,
    stopped: std::sync::atomic::AtomicBool,
    /// Number of fsync rounds that synced at least one partition (observability, tests).
    rounds: std::sync::atomic::AtomicU64,
}

/// The broker's group-commit fsync service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Flusher {
    inner: Arc<Inner>,
}

fn key(partition: &Arc<Partition>) -> usize {
    Arc::as_ptr(partition) as usize
}

impl Flusher {
    /// Creates a flusher; call [`Flusher::run`] on a task to make it work.
    pub fn new(policy: FsyncPolicy, interval: Duration) -> Self {
        Flusher {
            inner: Arc::new(Inner {
                policy,
                interval,
                dirty: parking_lot::Mutex::new(HashMap::new()),
                wake: Notify::new(),
                stopped: std::sync::atomic::AtomicBool::new(false),
                rounds: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// How many fsync rounds have run so far; with group commit this grows much slower than
    /// the number of `acks=-1` requests.
    pub fn sync_rounds(&self) -> u64 {
        self.inner.rounds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records that `partition` has unsynced writes nobody waits for (acks 0/1). With
    /// [`FsyncPolicy::Always`] they are synced right away all the same: consumers see records
    /// only once they are durable, so an idle flusher would delay them by `flush_interval`.
    pub fn mark_dirty(&self, partition: &Arc<Partition>) {
        self.inner
            .dirty
            .lock()
            .entry(key(partition))
            .or_insert_with(|| Dirty {
                partition: partition.clone(),
                waiters: Vec::new(),
            });
        if self.inner.policy == FsyncPolicy::Always {
            self.inner.wake.notify_one();
        }
    }

    /// Returns once everything in `partition` below `offset` is fsynced. With
    /// [`FsyncPolicy::Interval`] it returns at once (the periodic flush gives no guarantee).
    pub async fn wait_durable(
        &self,
        partition: &Arc<Partition>,
        offset: i64,
    ) -> Result<(), DurabilityError> {
        if self.inner.policy == FsyncPolicy::Interval {
            self.mark_dirty(partition);
            return Ok(());
        }
        if partition.log.lock().synced_offset() >= offset {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        {
            // Checked under the map lock so that no waiter slips in after the final round.
            let mut dirty = self.inner.dirty.lock();
            if self
                .inner
                .stopped
                .load(std::sync::atomic::Ordering::Acquire)
            {
                return Err(DurabilityError::ShuttingDown);
            }
            dirty
                .entry(key(partition))
                .or_insert_with(|| Dirty {
                    partition: partition.clone(),
                    waiters: Vec::new(),
                })
                .waiters
                .push(Waiter { offset, done: tx });
        }
        self.inner.wake.notify_one();
        rx.await.unwrap_or(Err(DurabilityError::ShuttingDown))
    }

    /// The background loop: syncs on demand (policy `always`) and every `flush_interval`;
    /// returns after a final flush once `shutdown` turns true.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.inner.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.inner.wake.notified(), if self.inner.policy == FsyncPolicy::Always => {}
                _ = tick.tick() => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
            self.flush_round().await;
        }
        {
            let _dirty = self.inner.dirty.lock();
            self.inner
                .stopped
                .store(true, std::sync::atomic::Ordering::Release);
        }
        self.flush_round().await;
    }

    /// Syncs every partition dirty right now and answers its waiters.
    pub async fn flush_round(&self) {
        let batch: Vec<Dirty> = {
            let mut dirty = self.inner.dirty.lock();
            if dirty.is_empty() {
                return;
            }
            dirty.drain().map(|(_, d)| d).collect()
        };
        // Handles are taken after draining, so they cover every append a drained waiter made.
        let handles: Vec<_> = batch
            .iter()
            .map(|d| d.partition.log.lock().sync_handle())
            .collect();
        let to_sync: Vec<_> = handles.iter().flatten().cloned().collect();
        if !to_sync.is_empty() {
            self.inner
                .rounds
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let results = tokio::task::spawn_blocking(move || {
            to_sync
                .iter()
                .map(|h| h.sync().map_err(|e| e.to_string()))
                .collect::<Vec<_>>()
        })
        .await;
        let mut results = match results {
            Ok(r) => r.into_iter(),
            Err(e) => {
                warn!(error = %e, "fsync task failed; failing waiters");
                Vec::new().into_iter()
            }
        };
        for (dirty, handle) in batch.into_iter().zip(handles) {
            // No handle means everything appended so far was already durable.
            let outcome = match handle {
                None => Ok(i64::MAX),
                Some(h) => match results.next() {
                    Some(Ok(())) => {
                        dirty.partition.mark_synced(&h);
                        Ok(h.end_offset)
                    }
                    Some(Err(reason)) => Err(reason),
                    None => Err("fsync task did not run".to_owned()),
                },
            };
            self.answer(dirty, outcome);
        }
    }

    /// Wakes the waiters covered by a finished sync (`Ok(end_offset)`) or fails them all.
    fn answer(&self, dirty: Dirty, outcome: Result<i64, String>) {
        let partition = dirty.partition;
        match outcome {
            Ok(end_offset) => {
                let mut pending = Vec::new();
                for w in dirty.waiters {
                    if w.offset <= end_offset {
                        let _ = w.done.send(Ok(()));
                    } else {
                        pending.push(w);
                    }
                }
                if !pending.is_empty() {
                    // Cannot happen with a correct log (waiters register after their append);
                    // left for the periodic round rather than spinning.
                    warn!(topic = %partition.topic, partition = partition.index, end_offset, "fsync did not cover all waiters");
                    self.inner
                        .dirty
                        .lock()
                        .entry(key(&partition))
                        .or_insert_with(|| Dirty {
                            partition: partition.clone(),
                            waiters: Vec::new(),
                        })
                        .waiters
                        .extend(pending);
                }
            }
            Err(reason) => {
                warn!(topic = %partition.topic, partition = partition.index, %reason, "fsync failed");
                for w in dirty.waiters {
                    let _ = w.done.send(Err(DurabilityError::SyncFailed {
                        topic: partition.topic.clone(),
                        partition: partition.index,
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn one_record_batch() -> BytesMut {
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1,
            key: None,
            value: Some(bytes::Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, [&record], &options).expect("encode");
        buf
    }

    fn partition(dir: &std::path::Path) -> Arc<Partition> {
        Arc::new(Partition::open("t", 0, dir, sluice_log::LogConfig::default()).expect("open"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_all_become_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = partition(dir.path());
        let flusher = Flusher::new(FsyncPolicy::Always, Duration::from_secs(3600));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(flusher.clone().run(stop_rx));
        let waits: Vec<_> = (0..50)
            .map(|_| {
                let (flusher, part) = (flusher.clone(), part.clone());
                tokio::spawn(async move {
                    let end = match part.append(one_record_batch(), 1).expect("append") {
                        sluice_log::AppendOutcome::Appended { last_offset, .. } => last_offset + 1,
                        other => panic!("unexpected {other:?}"),
                    };
                    flusher.wait_durable(&part, end).await.map(|()| end)
                })
            })
            .collect();
        for w in waits {
            let end = w.await.expect("join").expect("durable");
            assert!(part.log.lock().synced_offset() >= end);
        }
        let _ = stop.send(true);
        task.await.expect("flusher stops");
        // After the flusher stopped, new waiters are refused instead of hanging.
        part.append(one_record_batch(), 1).expect("append");
        let leo = part.high_watermark();
        assert!(matches!(
            flusher.wait_durable(&part, leo).await,
            Err(DurabilityError::ShuttingDown)
        ));
    }

    #[tokio::test]
    async fn interval_policy_does_not_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = partition(dir.path());
        let flusher = Flusher::new(FsyncPolicy::Interval, Duration::from_secs(3600));
        part.append(one_record_batch(), 1).expect("append");
        // No flusher task runs: waiting would hang, so returning proves it does not wait.
        flusher.wait_durable(&part, 1).await.expect("no wait");
        flusher.flush_round().await;
        assert_eq!(part.log.lock().synced_offset(), 1);
    }
}
