//! Moving partitions between log directories while producers and consumers use them
//! (AlterReplicaLogDirs). One background thread, `sluice-log-mover`, copies every requested
//! partition a slice at a time — so many moves progress together and none waits behind a large
//! one — and, once a copy has caught up, switches the partition to it under the partition's
//! lock ([`sluice_log::LogCopy`], [`PartitionLog::relocate`](sluice_log::PartitionLog::relocate)).
//!
//! A move is Kafka's "future replica": DescribeLogDirs lists it in its destination with
//! `is_future_key` until the switch. Asking again for the same destination changes nothing;
//! asking for another one (or for the current directory) abandons the copy first. A move
//! stopped by shutdown or a crash leaves a `-future` directory that start-up removes; the
//! partition stays where it was and the move has to be asked for again.
//!
//! Copying competes with producers and consumers for the disks; Kafka's
//! `replica.alter.log.dirs.io.max.bytes.per.second` caps the rate of all moves together
//! ([`Relocations::set_throttle`]). A move whose partition is written faster than that never
//! catches up, as in Kafka.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use sluice_log::{LogCopy, LogError, PartitionLog};
use tracing::{info, warn};

use super::log_dirs::{self, remove_now};
use crate::partition::Partition;
use crate::rate::TokenBucket;

/// Most bytes one step copies for one move before the next move gets a turn.
const STEP_BYTES: u64 = 16 << 20;
/// Least bytes one throttled step copies (a tenth of a second's worth otherwise).
const MIN_THROTTLED_STEP: u64 = 64 << 10;
/// Most bytes left to copy when the switch begins: what the switch copies and fsyncs while it
/// holds the partition's lock.
const SWITCH_MAX_BYTES: u64 = 4 << 20;

/// Why a move was not started.
#[derive(Debug, thiserror::Error)]
pub enum MoveRefused {
    /// INVALID_TOPIC_EXCEPTION: the copy's directory name would be too long.
    #[error("the topic name is too long for a partition copy's directory name")]
    NameTooLong,
    /// KAFKA_STORAGE_ERROR: the mover is stopping.
    #[error("the broker is shutting down")]
    Stopping,
}

/// One partition on its way to another log directory.
#[derive(Debug)]
struct Move {
    partition: Arc<Partition>,
    /// The destination log directory.
    log_dir: PathBuf,
    /// The copy's directory, `<log_dir>/<topic>-<partition>.<id>-future`.
    future: PathBuf,
    /// `None` until the first step starts the copy, and again once it is switched or dropped.
    copy: Mutex<Option<LogCopy>>,
    cancelled: AtomicBool,
    copied_bytes: AtomicU64,
    /// The log end offset the copy has caught up with.
    caught_up_to: AtomicI64,
}

/// A move in progress as DescribeLogDirs reports it.
#[derive(Debug, Clone)]
pub struct MoveStatus {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Destination log directory.
    pub log_dir: PathBuf,
    /// Bytes copied so far.
    pub copied_bytes: u64,
    /// How many offsets the copy is behind the log end.
    pub offset_lag: i64,
}

/// What a step did.
enum Step {
    /// More to copy.
    Copying,
    /// Switched, or abandoned.
    Done,
}

#[derive(Debug, Default)]
struct Queue {
    active: HashMap<(String, i32), Arc<Move>>,
    /// Replaced or cancelled moves whose copies are still to be removed.
    cancelled: Vec<Arc<Move>>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Bytes per second all moves together may copy; 0 is unlimited.
    throttle: AtomicU64,
}

/// The moves in progress and the thread that performs them.
#[derive(Debug)]
pub struct Relocations {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Relocations {
    /// Starts the mover thread (idle until a move is requested).
    pub fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sluice-log-mover".to_owned())
            .spawn(move || run(&worker))?;
        Ok(Relocations {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Moves `partition` to `log_dir`: keeps a running move to the same place, or abandons one
    /// going elsewhere and starts anew. Whether the partition is there already is decided by the
    /// mover under the partition's lock, so a switch completing meanwhile cannot mislead it.
    pub fn request(&self, partition: &Arc<Partition>, log_dir: &Path) -> Result<(), MoveRefused> {
        let future = log_dirs::future_dir(log_dir, &partition.topic, partition.index)
            .ok_or(MoveRefused::NameTooLong)?;
        let key = (partition.topic.clone(), partition.index);
        let mut queue = self.shared.queue.lock();
        if queue.stop {
            return Err(MoveRefused::Stopping);
        }
        if let Some(running) = queue.active.get(&key) {
            if running.log_dir == log_dir {
                return Ok(());
            }
            if let Some(old) = queue.active.remove(&key) {
                old.cancelled.store(true, Ordering::Relaxed);
                queue.cancelled.push(old);
            }
        }
        info!(topic = %partition.topic, partition = partition.index, to = %log_dir.display(), "partition move requested");
        queue.active.insert(
            key,
            Arc::new(Move {
                partition: Arc::clone(partition),
                log_dir: log_dir.to_owned(),
                future,
                copy: Mutex::new(None),
                cancelled: AtomicBool::new(false),
                copied_bytes: AtomicU64::new(0),
                caught_up_to: AtomicI64::new(0),
            }),
        );
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Caps the copying rate of all moves together (`None`: unlimited).
    pub fn set_throttle(&self, bytes_per_second: Option<u64>) {
        self.shared
            .throttle
            .store(bytes_per_second.unwrap_or(0), Ordering::Relaxed);
    }

    /// Abandons the moves of a topic being deleted.
    pub fn cancel_topic(&self, topic: &str) {
        let mut queue = self.shared.queue.lock();
        let keys: Vec<_> = queue
            .active
            .keys()
            .filter(|(t, _)| t == topic)
            .cloned()
            .collect();
        for key in keys {
            if let Some(old) = queue.active.remove(&key) {
                old.cancelled.store(true, Ordering::Relaxed);
                queue.cancelled.push(old);
            }
        }
        self.shared.wake.notify_one();
    }

    /// The moves in progress (not those whose partition turns out to be there already).
    pub fn status(&self) -> Vec<MoveStatus> {
        let moves: Vec<Arc<Move>> = self.shared.queue.lock().active.values().cloned().collect();
        moves
            .iter()
            .filter_map(|m| {
                let (arrived, end) = m
                    .partition
                    .with_log(|l| (m.is_in_place(l), l.log_end_offset()));
                (!arrived).then(|| MoveStatus {
                    topic: m.partition.topic.clone(),
                    partition: m.partition.index,
                    log_dir: m.log_dir.clone(),
                    copied_bytes: m.copied_bytes.load(Ordering::Relaxed),
                    offset_lag: (end - m.caught_up_to.load(Ordering::Relaxed)).max(0),
                })
            })
            .collect()
    }

    /// Stops the mover after its current step. Copies in progress are left for start-up to
    /// remove; their partitions stay where they are.
    pub fn stop(&self) {
        self.shared.queue.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            if thread.join().is_err() {
                warn!("the log mover thread panicked");
            }
        }
    }
}

impl Drop for Relocations {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The mover thread: cleans up abandoned moves, then gives every active move one step.
fn run(shared: &Shared) {
    let mut bucket = TokenBucket::default();
    loop {
        let (cancelled, active) = {
            let mut queue = shared.queue.lock();
            while queue.active.is_empty() && queue.cancelled.is_empty() && !queue.stop {
                shared.wake.wait(&mut queue);
            }
            if queue.stop {
                return;
            }
            let active: Vec<Arc<Move>> = queue.active.values().cloned().collect();
            (std::mem::take(&mut queue.cancelled), active)
        };
        for m in cancelled {
            m.abandon();
        }
        for m in active {
            let rate = shared.throttle.load(Ordering::Relaxed);
            let budget = match rate {
                0 => STEP_BYTES,
                rate => (rate / 10).clamp(MIN_THROTTLED_STEP, STEP_BYTES),
            };
            let finished = match m.step(budget) {
                Ok((copied, step)) => {
                    if rate > 0 {
                        let wait = bucket.record(copied as f64, rate as f64, Instant::now());
                        if !wait.is_zero() && shared.pause(wait) {
                            return;
                        }
                    }
                    matches!(step, Step::Done)
                }
                Err(e) => {
                    warn!(topic = %m.partition.topic, partition = m.partition.index, to = %m.log_dir.display(), error = %e, "partition move failed; the partition stays where it was");
                    m.abandon();
                    true
                }
            };
            if finished {
                let mut queue = shared.queue.lock();
                let key = (m.partition.topic.clone(), m.partition.index);
                if queue.active.get(&key).is_some_and(|a| Arc::ptr_eq(a, &m)) {
                    queue.active.remove(&key);
                }
            }
        }
    }
}

impl Shared {
    /// Waits `wait` (the throttle); true if the mover was stopped meanwhile.
    fn pause(&self, wait: std::time::Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut queue = self.queue.lock();
        while !queue.stop && !self.wake.wait_until(&mut queue, deadline).timed_out() {}
        queue.stop
    }
}

impl Move {
    fn abandoned(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.partition.is_retired()
    }

    /// True when the log already lives in the destination (checked under the log's lock).
    fn is_in_place(&self, log: &PartitionLog) -> bool {
        log.dir().parent() == Some(self.log_dir.as_path())
    }

    /// Drops an unfinished copy, if one was started.
    fn abandon(&self) {
        if self.copy.lock().take().is_some() {
            self.discard_copy();
        }
    }

    /// Removes the copy's directory and lets compaction run on the partition again.
    fn discard_copy(&self) {
        remove_now(&self.future);
        self.partition.with_log(|log| log.set_relocating(false));
    }

    /// Copies up to `budget` bytes; switches the partition once the copy has caught up.
    /// Returns the bytes copied.
    fn step(&self, budget: u64) -> Result<(u64, Step), LogError> {
        if self.abandoned() {
            self.abandon();
            return Ok((0, Step::Done));
        }
        let mut slot = self.copy.lock();
        let copy = match &mut *slot {
            Some(copy) => copy,
            empty => {
                let source = self.partition.with_log(|log| {
                    if self.is_in_place(log) {
                        return None;
                    }
                    log.set_relocating(true);
                    Some(log.dir().to_owned())
                });
                let Some(source) = source else {
                    return Ok((0, Step::Done));
                };
                match LogCopy::start(&source, &self.future) {
                    Ok(copy) => empty.insert(copy),
                    Err(e) => {
                        self.partition.with_log(|log| log.set_relocating(false));
                        return Err(e);
                    }
                }
            }
        };
        let files = self.partition.with_log(|log| log.files());
        let copied = copy.copy_some(&files, budget)?;
        self.copied_bytes
            .store(copy.copied_bytes(&files), Ordering::Relaxed);
        // Synced slice by slice, so that what the switch syncs under the lock stays small.
        copy.sync()?;
        if copied >= budget {
            return Ok((copied, Step::Copying));
        }
        self.caught_up_to
            .store(files.log_end_offset(), Ordering::Relaxed);
        let now = self.partition.with_log(|log| log.files());
        if copy.remaining(&now) > SWITCH_MAX_BYTES {
            return Ok((copied, Step::Copying));
        }
        let Some(copy) = slot.take() else {
            return Ok((copied, Step::Copying));
        };
        drop(slot);
        self.switch(copy).map(|step| (copied, step))
    }

    /// Switches the partition to its completed copy.
    fn switch(&self, copy: LogCopy) -> Result<Step, LogError> {
        let mut old = None;
        let started = Instant::now();
        let switched = self.partition.with_log(|log| {
            if self.abandoned() {
                return Ok(false);
            }
            log.relocate(copy, |copy_dir, current| {
                let (live, aside) = log_dirs::switch_dirs(copy_dir, current)?;
                old = Some(aside);
                Ok(live)
            })
            .map(|()| true)
        });
        // How long appends and reads of the partition waited for the switch.
        let held = started.elapsed();
        match switched {
            Ok(true) => {
                if let Some(old) = old {
                    remove_now(&old);
                }
                info!(topic = %self.partition.topic, partition = self.partition.index, to = %self.log_dir.display(), lock_held_us = held.as_micros() as u64, "partition moved");
                Ok(Step::Done)
            }
            Ok(false) => {
                self.discard_copy();
                Ok(Step::Done)
            }
            Err(e) => {
                self.discard_copy();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests;
