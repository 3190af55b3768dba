//! Fetch: serve whole stored batches as byte ranges, long-polling until `min_bytes` arrive.
//!
//! A fetch that finds too little data parks on the partitions' append notifications (not a
//! timer loop) and plans again when an append (or the fsync that makes it visible) wakes it,
//! until `min_bytes` are available or `max_wait_ms` passes. Planning ([`plan`]) only looks at
//! the logs' indexes; no record byte is read or copied here: the reply carries file ranges
//! ([`encode`]) that the connection sends from the page cache (`sendfile` on plaintext
//! listeners).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use sluice_log::Isolation;

use super::RequestContext;
use crate::auth::Operation;

mod encode;
mod plan;
#[cfg(test)]
mod tests;

pub use encode::FetchReply;
use plan::{plan_all, PartitionPlan, Wanted};

/// `isolation_level` value of READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// Answers Fetch (v4-12).
pub async fn handle(ctx: &RequestContext, req: FetchRequest) -> FetchReply {
    // v7+ sessions: this broker is sessionless (session id 0), which clients accept; an
    // incremental fetch against a session we never created is refused so the client resets.
    if req.session_id != 0 {
        return FetchReply {
            response: FetchResponse::default()
                .with_error_code(ResponseError::FetchSessionIdNotFound.code())
                .with_session_id(0),
            files: Vec::new(),
        };
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

    // Nothing is read here: the ranges go to the connection, which sends them from the files.
    let mut files = Vec::new();
    for (w, planned) in wanted.iter().zip(plan.partitions) {
        let Some(topic) = topics.get_mut(w.topic) else {
            continue;
        };
        let PartitionPlan { data, read } = planned;
        match read {
            _ if data.error_code != 0 => topic.partitions.push(data),
            Some(read) => {
                files.push((w.topic, topic.partitions.len(), read));
                topic.partitions.push(data);
            }
            None => topic.partitions.push(data.with_records(Some(Bytes::new()))),
        }
    }
    FetchReply {
        response: FetchResponse::default()
            .with_session_id(0)
            .with_responses(topics),
        files,
    }
}
