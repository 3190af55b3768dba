//! Fetch: serve whole stored batches as byte ranges, long-polling until `min_bytes` arrive.
//!
//! A fetch that finds too little data parks on the partitions' append notifications (not a
//! timer loop) and plans again when an append (or the fsync that makes it visible) wakes it,
//! until `min_bytes` are available or `max_wait_ms` passes. Planning (`plan.rs`) only looks at
//! the logs' indexes; no record byte is read or copied here: the reply carries file ranges
//! (`encode.rs`) that the connection sends from the page cache (`sendfile` on plaintext
//! listeners).

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use sluice_log::Isolation;

use super::access::TopicAccess;
use super::RequestContext;
use crate::auth::Operation;
use crate::fetch_sessions::{Reported, Requested};
use crate::quota::QuotaKind;

mod encode;
mod plan;
#[cfg(test)]
mod tests;

pub use encode::FetchReply;
use plan::{plan_all, PartitionPlan, Plan, Wanted};

/// `isolation_level` value of READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// Answers Fetch (v4-12).
pub async fn handle(ctx: &RequestContext, req: FetchRequest) -> FetchReply {
    let isolation = if req.isolation_level == READ_COMMITTED {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    let requested = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Requested {
                topic: t.topic.clone(),
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
            })
        })
        .collect();
    let forgotten: Vec<_> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
        .collect();
    // A client still in debt to its consumer byte-rate quota gets an empty response carrying the
    // throttle (KIP-219). A full fetch does not open a session then; an incremental one still
    // advances its session's epoch, as the client will.
    let debt_ms = ctx.quota_debt(QuotaKind::Fetch);
    let throttled = |session_id: i32| FetchReply {
        response: FetchResponse::default()
            .with_throttle_time_ms(debt_ms)
            .with_session_id(session_id),
        files: Vec::new(),
    };
    if debt_ms > 0 && req.session_epoch <= 0 {
        return throttled(0);
    }
    let sessions = &ctx.broker.fetch_sessions;
    let begun = match sessions.begin(
        req.session_id,
        req.session_epoch,
        &ctx.principal,
        requested,
        &forgotten,
    ) {
        Ok(begun) => begun,
        Err(error) => {
            return FetchReply {
                response: FetchResponse::default().with_error_code(error.code()),
                files: Vec::new(),
            }
        }
    };
    if debt_ms > 0 {
        return throttled(begun.kind.session_id());
    }
    // Authorized on every fetch, a session's partitions included; partitions of one topic are
    // usually adjacent, so the last topic's answer is reused.
    let mut access: Option<(&TopicName, TopicAccess)> = None;
    let wanted: Vec<_> = begun
        .partitions
        .iter()
        .map(|r| {
            if access.as_ref().is_none_or(|(name, _)| **name != r.topic) {
                access = Some((
                    &r.topic,
                    ctx.topic_access(Operation::Read, r.topic.0.as_str()),
                ));
            }
            let partition = match &access {
                Some((_, topic)) => topic.partition(r.partition).cloned(),
                None => Err(ResponseError::UnknownTopicOrPartition),
            };
            Wanted {
                partition,
                index: r.partition,
                offset: r.fetch_offset,
                max_bytes: r.max_bytes,
                isolation,
            }
        })
        .collect();
    // Like Kafka's fetch.max.bytes: a client asking for 2 GiB gets the broker's cap.
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .min(ctx.broker.config.fetch_max_bytes);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    let plan = plan_until_ready(ctx, &wanted, max_bytes, min_bytes, max_wait).await;
    // What is served counts against the quota even when it exceeds what is left: a fetch larger
    // than one second's worth must get through, and the client then waits off the debt.
    let throttle_ms = ctx.record_quota(QuotaKind::Fetch, plan.bytes as f64);

    // An incremental fetch lists only the partitions with news for the client.
    let fetched: Vec<_> = begun
        .partitions
        .iter()
        .zip(&plan.partitions)
        .map(|(r, p)| {
            let reported = Reported {
                high_watermark: p.data.high_watermark,
                last_stable_offset: p.data.last_stable_offset,
                log_start_offset: p.data.log_start_offset,
            };
            (r, reported, p.read.is_some() || p.data.error_code != 0)
        })
        .collect();
    let listed = sessions.finish(begun.kind, &fetched);
    // What the response carries: the listed partitions without an error (see `assemble`).
    for ((r, p), _) in begun
        .partitions
        .iter()
        .zip(&plan.partitions)
        .zip(&listed)
        .filter(|((_, p), &list)| list && p.data.error_code == 0)
    {
        if let Some(read) = &p.read {
            ctx.broker.metrics.served(r.topic.0.as_str(), read.len());
        }
    }
    let mut reply = assemble(
        &begun.partitions,
        plan.partitions,
        &listed,
        begun.kind.session_id(),
    );
    reply.response.throttle_time_ms = throttle_ms;
    reply
}

/// Plans (sizes only, nothing read) until `min_bytes` are available, an error is found or
/// `max_wait` passes, parking on the partitions' high-watermark notifications in between.
async fn plan_until_ready(
    ctx: &RequestContext,
    wanted: &[Wanted],
    max_bytes: usize,
    min_bytes: usize,
    max_wait: Duration,
) -> Plan {
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut shutdown = ctx.broker.shutdown.clone();
    let mut plan = plan_all(wanted, max_bytes);
    loop {
        if plan.bytes >= min_bytes
            || plan.error
            || tokio::time::Instant::now() >= deadline
            || *shutdown.borrow()
        {
            return plan;
        }
        // Register for wake-ups *before* re-planning, so an append in between is not missed.
        let mut notified: Vec<_> = wanted
            .iter()
            .filter_map(|w| w.partition.as_ref().ok())
            .map(|p| Box::pin(p.hw_advanced()))
            .collect();
        if notified.is_empty() {
            return plan;
        }
        for n in &mut notified {
            n.as_mut().enable();
        }
        plan = plan_all(wanted, max_bytes);
        if plan.bytes >= min_bytes {
            return plan;
        }
        tokio::select! {
            _ = futures::future::select_all(notified) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
        plan = plan_all(wanted, max_bytes);
    }
}

/// Builds the reply from the listed partitions, grouping adjacent partitions of one topic.
/// Nothing is read here: the planned ranges go to the connection, which sends them from the
/// segment files.
fn assemble(
    requested: &[Requested],
    plans: Vec<PartitionPlan>,
    listed: &[bool],
    session_id: i32,
) -> FetchReply {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut files = Vec::new();
    for ((r, planned), &list) in requested.iter().zip(plans).zip(listed) {
        if !list {
            continue;
        }
        if topics.last().is_none_or(|t| t.topic != r.topic) {
            topics.push(FetchableTopicResponse::default().with_topic(r.topic.clone()));
        }
        let ti = topics.len() - 1;
        let Some(topic) = topics.last_mut() else {
            continue;
        };
        let PartitionPlan { data, read } = planned;
        match read {
            _ if data.error_code != 0 => topic.partitions.push(data),
            Some(read) => {
                files.push((ti, topic.partitions.len(), read));
                topic.partitions.push(data);
            }
            None => topic.partitions.push(data.with_records(Some(Bytes::new()))),
        }
    }
    FetchReply {
        response: FetchResponse::default()
            .with_session_id(session_id)
            .with_responses(topics),
        files,
    }
}
