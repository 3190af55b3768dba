//! AddPartitionsToTxn: adds partitions to a producer's transaction before it writes to them.
//! v0-3 carry one transaction from a client; v4 is the batched form brokers use (KIP-890),
//! needing CLUSTER_ACTION, whose `verify_only` entries check membership without adding.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::ResponseError;

use super::{transactions, RequestContext};
use crate::auth::{Operation, ResourceType};

/// Answers AddPartitionsToTxn (v0-4).
pub async fn handle(
    ctx: &RequestContext,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.version() <= 3 {
        let results = add(
            ctx,
            &req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            &req.v3_and_below_topics,
            false,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    if !ctx.authorize_cluster(Operation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let topics = add(
            ctx,
            &t.transactional_id,
            t.producer_id.0,
            t.producer_epoch,
            &t.topics,
            t.verify_only,
        )
        .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(topics),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// A partition and why it cannot be added, if it cannot.
type PartitionCheck = (i32, Option<ResponseError>);

/// One transaction's partitions: each is checked (authorization, existence); if all pass
/// they are added (or, with `verify_only`, checked to be in the open transaction), otherwise
/// the failing ones carry their error and the rest OPERATION_NOT_ATTEMPTED, as in Kafka.
async fn add(
    ctx: &RequestContext,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let authorized = transactions::authorize_writer(ctx, transactional_id);
    let mut checked: Vec<(&AddPartitionsToTxnTopic, Vec<PartitionCheck>)> =
        Vec::with_capacity(topics.len());
    for topic in topics {
        let name = topic.name.as_str();
        let topic_error = if let Err(e) = authorized {
            Some(e)
        } else if !ctx.authorize(Operation::Write, ResourceType::Topic, name) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else {
            None
        };
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let error = topic_error.or_else(|| {
                    ctx.broker
                        .metadata
                        .partition(name, *p)
                        .is_none()
                        .then_some(ResponseError::UnknownTopicOrPartition)
                });
                (*p, error)
            })
            .collect();
        checked.push((topic, partitions));
    }
    let any_failed = checked
        .iter()
        .any(|(_, parts)| parts.iter().any(|(_, e)| e.is_some()));
    let txns = &ctx.broker.txns;
    let outcome: Result<(), ResponseError> = if any_failed || verify_only {
        Ok(())
    } else {
        let all: Vec<(String, i32)> = checked
            .iter()
            .flat_map(|(t, parts)| parts.iter().map(|(p, _)| (t.name.to_string(), *p)))
            .collect();
        match txns.add_partitions(transactional_id, producer_id, epoch, &all) {
            Ok(durable) => durable.wait().await.map_err(|e| {
                tracing::error!(transactional_id, error = %e, "transaction state not durable");
                ResponseError::CoordinatorNotAvailable
            }),
            Err(e) => Err(e),
        }
    };
    let version = ctx.version();
    checked
        .into_iter()
        .map(|(topic, parts)| {
            let results = parts
                .into_iter()
                .map(|(p, error)| {
                    let error = match error {
                        Some(e) => Some(e),
                        None if any_failed => Some(ResponseError::OperationNotAttempted),
                        None if verify_only => txns
                            .verify(transactional_id, producer_id, epoch, &topic.name, p)
                            .err(),
                        None => outcome.err(),
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(
                            error.map_or(0, |e| transactions::for_version(e, version, 2).code()),
                        )
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(results)
        })
        .collect()
}
