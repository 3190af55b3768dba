//! Produce: append record batches, then acknowledge according to `acks`.
//!
//! Two stages, as types: [`handle`] (not `async`) appends everything when it is called, so
//! pipelined requests of one connection append in arrival order (the connection starts each
//! request as it arrives, see [`crate::net::connection`]); the future it returns is the durable
//! stage, where an `acks=-1` request waits for the group-commit fsync.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_log::{AppendOutcome, LogError};
use tracing::{debug, warn};

use super::{transactions, RequestContext};
use crate::auth::{Operation, ResourceType};
use crate::config::FsyncPolicy;
use crate::durability::DurabilityError;
use crate::partition::{log_error_code, Partition};
use crate::quota::QuotaKind;

/// An appended partition whose acknowledgement waits for durability.
struct PendingSync {
    topic: usize,
    partition: usize,
    log: Arc<Partition>,
    end_offset: i64,
}

/// A partition response carrying only an error.
fn failed(index: i32, error: ResponseError, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_error_message(message.map(StrBytes::from_string))
}

/// Answers Produce (v3-11) in two stages, as types: this function is the *append* stage and is
/// deliberately not `async`, so every append has happened when it returns (no `.await` can
/// slip in before one and let a later pipelined request of the connection append first, which
/// would break idempotent ordering). It returns the *durable* stage, `Appended::acknowledge`,
/// which waits for the fsync as `acks` asks.
pub fn handle(
    ctx: &RequestContext,
    req: ProduceRequest,
) -> impl Future<Output = ProduceResponse> + Send + '_ {
    let broker = &ctx.broker;
    let acks = req.acks;
    let transactional_id = req.transactional_id.as_ref().map(|id| id.as_str());
    let refuse_all =
        if let Some(Err(e)) = transactional_id.map(|id| transactions::authorize_writer(ctx, id)) {
            Some(e)
        } else if !matches!(acks, -1..=1) {
            Some(ResponseError::InvalidRequiredAcks)
        } else {
            None
        };
    // Counted against the producer's byte-rate quota like Kafka counts the request: whether
    // or not it is accepted.
    let bytes: usize = req
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let throttle_ms = ctx.record_quota(QuotaKind::Produce, bytes as f64);
    let now = crate::now_ms();
    let mut pending = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (ti, topic_data) in req.topic_data.into_iter().enumerate() {
        let name = topic_data.name.0.as_str();
        let topic = match refuse_all {
            Some(e) => Err(e),
            None if !ctx.authorize(Operation::Write, ResourceType::Topic, name) => {
                Err(ResponseError::TopicAuthorizationFailed)
            }
            None => broker.topic_or_auto_create(name, ctx.may_create_topic(name)),
        };
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for (pi, data) in topic_data.partition_data.into_iter().enumerate() {
            let topic = match &topic {
                Ok(t) => t,
                Err(e) => {
                    partitions.push(failed(data.index, *e, None));
                    continue;
                }
            };
            let Some(partition) = usize::try_from(data.index)
                .ok()
                .and_then(|i| topic.partitions.get(i))
            else {
                partitions.push(failed(
                    data.index,
                    ResponseError::UnknownTopicOrPartition,
                    None,
                ));
                continue;
            };
            let Some(records) = data.records else {
                partitions.push(failed(
                    data.index,
                    ResponseError::CorruptMessage,
                    Some("the partition's record set is null".to_owned()),
                ));
                continue;
            };
            let guard = match verify_transactional(ctx, transactional_id, partition, &records) {
                Ok(guard) => guard,
                Err(e) => {
                    partitions.push(failed(data.index, e, None));
                    continue;
                }
            };
            // Not copied: the log writes the records from the request buffer.
            let size = records.len();
            match partition.append_guarded(records, now, guard) {
                Ok(outcome) => {
                    let (base, last, append_time, start) = match outcome {
                        AppendOutcome::Appended {
                            base_offset,
                            last_offset,
                            log_append_time,
                            log_start_offset,
                        } => {
                            let records = u64::try_from(last_offset - base_offset + 1).unwrap_or(0);
                            broker.metrics.appended(name, size, records);
                            (base_offset, last_offset, log_append_time, log_start_offset)
                        }
                        AppendOutcome::Duplicate {
                            base_offset,
                            last_offset,
                            log_start_offset,
                        } => (base_offset, last_offset, -1, log_start_offset),
                    };
                    pending.push(PendingSync {
                        topic: ti,
                        partition: pi,
                        log: partition.clone(),
                        end_offset: last + 1,
                    });
                    partitions.push(
                        PartitionProduceResponse::default()
                            .with_index(data.index)
                            .with_base_offset(base)
                            .with_log_append_time_ms(append_time)
                            .with_log_start_offset(start),
                    );
                }
                Err(e) => {
                    if let LogError::Io { .. } = e {
                        // A full or failing disk: the operator must hear of it, not just the client.
                        warn!(topic = name, partition = data.index, error = %e, "append failed: storage error");
                    } else {
                        debug!(topic = name, partition = data.index, error = %e, "append refused");
                    }
                    let mut response = failed(data.index, log_error_code(&e), Some(e.to_string()));
                    if let LogError::InvalidRecord { record_errors, .. } = e {
                        // KIP-467: name each refused record (Produce v8+; older versions omit it).
                        response.record_errors = record_errors
                            .into_iter()
                            .map(|(index, message)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(index)
                                    .with_batch_index_error_message(Some(StrBytes::from_string(
                                        message,
                                    )))
                            })
                            .collect();
                    }
                    partitions.push(response);
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_partition_responses(partitions),
        );
    }

    Appended {
        acks,
        timeout_ms: req.timeout_ms,
        throttle_ms,
        pending,
        responses,
    }
    .acknowledge(ctx)
}

/// A produce request whose appends are done: what [`handle`] hands to the durable stage.
struct Appended {
    acks: i16,
    timeout_ms: i32,
    throttle_ms: i32,
    pending: Vec<PendingSync>,
    responses: Vec<TopicProduceResponse>,
}

impl Appended {
    /// The durable stage: with `acks=-1` and `fsync=always`, waits (up to the request's timeout)
    /// until the appended data is fsynced; otherwise only tells the flusher about it.
    async fn acknowledge(self, ctx: &RequestContext) -> ProduceResponse {
        let Appended {
            acks,
            timeout_ms,
            throttle_ms,
            pending,
            mut responses,
        } = self;
        let broker = &ctx.broker;
        let flusher = &broker.flusher;
        if acks == -1 && broker.config.fsync_policy == FsyncPolicy::Always {
            let waits = futures::future::join_all(
                pending
                    .iter()
                    .map(|p| flusher.wait_durable(&p.log, p.end_offset)),
            );
            let results = match u64::try_from(timeout_ms) {
                Ok(ms) if ms > 0 => tokio::time::timeout(Duration::from_millis(ms), waits)
                    .await
                    .ok(),
                _ => Some(waits.await),
            };
            for (i, p) in pending.iter().enumerate() {
                let error = match results.as_ref().and_then(|r| r.get(i)) {
                    Some(Ok(())) => continue,
                    None => (
                        ResponseError::RequestTimedOut,
                        "fsync did not finish within the request timeout".to_owned(),
                    ),
                    Some(Err(e @ DurabilityError::SyncFailed { .. })) => {
                        (ResponseError::KafkaStorageError, e.to_string())
                    }
                    Some(Err(e @ DurabilityError::ShuttingDown)) => {
                        (ResponseError::NotLeaderOrFollower, e.to_string())
                    }
                };
                if let Some(resp) = responses
                    .get_mut(p.topic)
                    .and_then(|t| t.partition_responses.get_mut(p.partition))
                {
                    *resp = failed(resp.index, error.0, Some(error.1));
                }
            }
        } else {
            for p in &pending {
                flusher.mark_dirty(&p.log);
            }
        }
        ProduceResponse::default()
            .with_responses(responses)
            .with_throttle_time_ms(throttle_ms)
    }
}

/// A transactional batch needs a transactional id and, like Kafka's partition leaders verify
/// (KIP-890), a partition its producer added to its open transaction: a write outside a
/// transaction would never get a marker and would hold the last stable offset forever.
/// Returns the verification guard to append with: taken before asking the coordinator, so a
/// marker written in between voids it and the append is refused.
fn verify_transactional(
    ctx: &RequestContext,
    transactional_id: Option<&str>,
    partition: &Partition,
    records: &[u8],
) -> Result<Option<u64>, ResponseError> {
    let Ok(header) = sluice_log::BatchHeader::parse(records) else {
        // Malformed: the log's validation reports it.
        return Ok(None);
    };
    if !header.is_transactional() {
        return Ok(None);
    }
    let Some(id) = transactional_id else {
        return Err(ResponseError::TransactionalIdAuthorizationFailed);
    };
    let guard = partition.with_log(|log| log.begin_verification(header.producer_id));
    ctx.broker
        .txns
        .verify(
            id,
            header.producer_id,
            header.producer_epoch,
            &partition.topic,
            partition.index,
        )
        .map_err(|e| match e {
            // What a partition answers a producer whose epoch was bumped past it.
            ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
            other => other,
        })?;
    Ok(Some(guard))
}
