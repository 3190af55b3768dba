//! Fetch: serve whole stored batches as byte ranges, long-polling until `min_bytes` arrive.
//!
//! A fetch that finds too little data parks on the partitions' append notifications (not a
//! timer loop) and re-reads when an append wakes it, until `min_bytes` are available or
//! `max_wait_ms` passes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use sluice_log::{Isolation, LogError, ReadResult};
use tracing::debug;

use super::RequestContext;
use crate::auth::Operation;
use crate::partition::{log_error_code, Partition};

/// `isolation_level` value of READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved once per request.
struct Wanted {
    topic: usize,
    /// The partition, or the error to report for it.
    partition: Result<Arc<Partition>, ResponseError>,
    index: i32,
    offset: i64,
    max_bytes: usize,
    isolation: Isolation,
}

/// Answers Fetch (v4-12).
pub async fn handle(ctx: &RequestContext, req: FetchRequest) -> FetchResponse {
    // v7+ sessions: this broker is sessionless (session id 0), which clients accept; an
    // incremental fetch against a session we never created is refused so the client resets.
    if req.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
    }
    let isolation = if req.isolation_level == READ_COMMITTED {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let mut wanted = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for (ti, topic) in req.topics.iter().enumerate() {
        let access = ctx.topic_access(Operation::Read, topic.topic.0.as_str());
        for p in &topic.partitions {
            wanted.push(Wanted {
                topic: ti,
                partition: access.partition(p.partition).cloned(),
                index: p.partition,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                isolation,
            });
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id),
        );
    }
    // Like Kafka's fetch.max.bytes: a client asking for 2 GiB gets the broker's cap.
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .min(ctx.broker.config.fetch_max_bytes);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut shutdown = ctx.broker.shutdown.clone();

    // Plan (sizes only, nothing read) until enough data is there, then read once.
    let mut plan = plan_all(&wanted, max_bytes);
    loop {
        if plan.bytes >= min_bytes
            || plan.error
            || tokio::time::Instant::now() >= deadline
            || *shutdown.borrow()
        {
            break;
        }
        // Register for wake-ups *before* re-planning, so an append in between is not missed.
        let mut notified: Vec<_> = wanted
            .iter()
            .filter_map(|w| w.partition.as_ref().ok())
            .map(|p| Box::pin(p.hw_advanced()))
            .collect();
        if notified.is_empty() {
            break;
        }
        for n in &mut notified {
            n.as_mut().enable();
        }
        plan = plan_all(&wanted, max_bytes);
        if plan.bytes >= min_bytes {
            break;
        }
        tokio::select! {
            _ = futures::future::select_all(notified) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
        plan = plan_all(&wanted, max_bytes);
    }

    // The broker-wide fetch memory budget: wait for room before reading what was planned.
    let _memory = ctx.broker.fetch_memory.reserve(plan.bytes).await;
    for (w, planned) in wanted.iter().zip(plan.partitions) {
        if let Some(topic) = topics.get_mut(w.topic) {
            topic.partitions.push(execute(w, planned));
        }
    }
    FetchResponse::default()
        .with_session_id(0)
        .with_responses(topics)
}

/// One partition's part of a fetch: the response without its records, and what to read.
struct PartitionPlan {
    data: PartitionData,
    read: Option<ReadResult>,
}

/// The outcome of one planning pass over the requested partitions.
struct Plan {
    partitions: Vec<PartitionPlan>,
    bytes: usize,
    /// Some partition has an error: answer at once, as Kafka does.
    error: bool,
}

/// Plans every wanted partition within the response budget, without reading data.
fn plan_all(wanted: &[Wanted], max_bytes: usize) -> Plan {
    let mut plan = Plan {
        partitions: Vec::with_capacity(wanted.len()),
        bytes: 0,
        error: false,
    };
    for w in wanted {
        let planned = plan_one(w, max_bytes.saturating_sub(plan.bytes), plan.bytes == 0);
        if planned.data.error_code != 0 {
            plan.error = true;
        }
        plan.bytes += planned.read.as_ref().map_or(0, ReadResult::len);
        plan.partitions.push(planned);
    }
    plan
}

/// Plans one partition. `budget` is what is left of the response's `max_bytes`; `first` says
/// no data precedes this partition, in which case one batch is returned even if larger than the
/// limits (so consumers always make progress, as in Kafka).
fn plan_one(w: &Wanted, budget: usize, first: bool) -> PartitionPlan {
    let data = PartitionData::default().with_partition_index(w.index);
    let partition = match &w.partition {
        Ok(partition) => partition,
        Err(error) => {
            return PartitionPlan {
                data: data.with_error_code(error.code()),
                read: None,
            }
        }
    };
    let limit = w.max_bytes.min(budget);
    let plan = match partition.plan_read(w.offset, limit, w.isolation) {
        Ok(plan) => plan,
        Err(e) => {
            let (hw, lso, start) = {
                let log = partition.log.lock();
                (
                    log.high_watermark(),
                    log.last_stable_offset(),
                    log.log_start_offset(),
                )
            };
            if !matches!(e, LogError::OffsetOutOfRange { .. }) {
                debug!(topic = %partition.topic, partition = w.index, error = %e, "fetch read failed");
            }
            return PartitionPlan {
                data: data
                    .with_error_code(log_error_code(&e).code())
                    .with_high_watermark(hw)
                    .with_last_stable_offset(lso)
                    .with_log_start_offset(start),
                read: None,
            };
        }
    };
    // read_committed consumers drop the batches of these producers' aborted transactions.
    let aborted = plan.aborted_transactions.as_ref().map(|list| {
        list.iter()
            .map(|a| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(a.producer_id))
                    .with_first_offset(a.first_offset)
            })
            .collect()
    });
    let data = data
        .with_high_watermark(plan.high_watermark)
        .with_last_stable_offset(plan.last_stable_offset)
        .with_log_start_offset(plan.log_start_offset)
        .with_aborted_transactions(aborted);
    let skip = plan.is_empty() || (!first && plan.len() > limit) || limit == 0 && !first;
    PartitionPlan {
        data,
        read: (!skip).then_some(plan),
    }
}

/// Reads what `planned` planned and completes the partition's response.
fn execute(w: &Wanted, planned: PartitionPlan) -> PartitionData {
    let PartitionPlan { data, read } = planned;
    if data.error_code != 0 {
        return data;
    }
    let Some(read) = read else {
        return data.with_records(Some(Bytes::new()));
    };
    match read.read() {
        Ok(bytes) => data.with_records(Some(bytes)),
        Err(e) => {
            debug!(partition = w.index, error = %e, "fetch read failed");
            data.with_error_code(log_error_code(&e).code())
        }
    }
}
