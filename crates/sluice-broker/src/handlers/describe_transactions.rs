//! DescribeTransactions (API key 65, v0): the coordinator's state of each transactional id, as
//! `kafka-transactions.sh describe` shows it.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::group::wire::str_bytes;
use crate::txn::{TxnMetadata, TxnState};

/// Handles a DescribeTransactions request.
pub async fn handle(
    ctx: &RequestContext,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let state = TransactionState::default().with_transactional_id(id.clone());
            if !ctx.authorize(Operation::Describe, ResourceType::TransactionalId, &id) {
                return state
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            match ctx.broker.txns.describe(&id) {
                // A Dead id is being expired: Kafka no longer reports it.
                Some(meta) if meta.state != TxnState::Dead => describe(ctx, state, &meta),
                _ => state.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// Fills `state` from `meta`. Like Kafka, only an open (or deciding) transaction lists its
/// partitions, and only those of topics the caller may describe.
fn describe(ctx: &RequestContext, state: TransactionState, meta: &TxnMetadata) -> TransactionState {
    let open = meta.state == TxnState::Ongoing || meta.state.is_prepare();
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in meta.partitions.iter().filter(|_| open) {
        topics.entry(topic).or_default().push(*partition);
    }
    let topics = topics
        .into_iter()
        .filter(|(topic, _)| ctx.authorize(Operation::Describe, ResourceType::Topic, topic))
        .map(|(topic, partitions)| {
            TopicData::default()
                .with_topic(TopicName(str_bytes(topic)))
                .with_partitions(partitions)
        })
        .collect();
    state
        .with_transaction_state(str_bytes(meta.state.name()))
        .with_transaction_timeout_ms(meta.timeout_ms)
        .with_transaction_start_time_ms(meta.start_ms)
        .with_producer_id(meta.producer_id.into())
        .with_producer_epoch(meta.producer_epoch)
        .with_topics(topics)
}
