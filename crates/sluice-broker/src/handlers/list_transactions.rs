//! ListTransactions (API key 66, v0-2): the transactional ids this coordinator knows, filtered
//! by state, producer id, duration (v1) and an id pattern (v2), as
//! `kafka-transactions.sh list` shows them.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, TransactionalId,
};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::{Operation, ResourceType};
use crate::group::wire::str_bytes;
use crate::txn::{TxnMetadata, TxnState};

/// Every state a filter may name.
const STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

/// Handles a ListTransactions request.
pub async fn handle(
    ctx: &RequestContext,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let response = ListTransactionsResponse::default();
    // Kafka matches the whole id (RE2/J `matches()`); an empty pattern filters nothing.
    let pattern = match req
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(re) => Some(re),
            Err(_) => {
                return response.with_error_code(ResponseError::InvalidRegularExpression.code())
            }
        },
    };
    let mut unknown = Vec::new();
    let mut states = Vec::new();
    for name in &req.state_filters {
        match STATES.iter().find(|s| s.name() == name.as_str()) {
            Some(s) => states.push(*s),
            None => unknown.push(name.clone()),
        }
    }
    let now = crate::now_ms();
    // Kafka's filter, in its order; a Dead id is being expired and never listed.
    let include = |m: &TxnMetadata| {
        m.state != TxnState::Dead
            && (req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id))
            && (req.state_filters.is_empty() || states.contains(&m.state))
            && (req.duration_filter < 0 || now.saturating_sub(m.start_ms) > req.duration_filter)
            && pattern
                .as_ref()
                .is_none_or(|re| re.is_match(&m.transactional_id))
    };
    let listed = ctx
        .broker
        .txns
        .list()
        .into_iter()
        .filter(|m| include(m))
        .filter(|m| {
            ctx.authorize(
                Operation::Describe,
                ResourceType::TransactionalId,
                &m.transactional_id,
            )
        })
        .map(|m| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(m.transactional_id)))
                .with_producer_id(m.producer_id.into())
                .with_transaction_state(str_bytes(m.state.name()))
        })
        .collect();
    response
        .with_unknown_state_filters(unknown)
        .with_transaction_states(listed)
}
