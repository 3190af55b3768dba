//! InitProducerId: producer ids for idempotent producers, and for transactional producers
//! through the transaction coordinator (epoch bumps fence older producers of the same id).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::warn;

use super::{transactions, RequestContext};
use crate::auth::{Operation, ResourceType};
use crate::txn::TxnCoordinator;

/// Answers InitProducerId (v0-5).
pub async fn handle(ctx: &RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let error = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    match &req.transactional_id {
        None => {}
        // Kafka refuses an empty transactional id as a malformed request.
        Some(id) if id.0.is_empty() => return error(ResponseError::InvalidRequest),
        Some(id) => {
            if let Err(e) = transactions::authorize_writer(ctx, id) {
                return error(e);
            }
            let expected = (req.producer_id.0 >= 0 && req.producer_epoch >= 0)
                .then_some((req.producer_id.0, req.producer_epoch));
            if let Err(e) = ensure_transaction_log(ctx).await {
                tracing::error!(error = %e, "cannot create __transaction_state");
                return error(ResponseError::CoordinatorNotAvailable);
            }
            let broker = &ctx.broker;
            return match broker
                .txns
                .init_producer_id(
                    id,
                    req.transaction_timeout_ms,
                    expected,
                    &broker.producer_ids,
                    broker.as_ref(),
                )
                .await
            {
                Ok((pid, epoch)) => InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch),
                Err(e) => error(transactions::for_version(e, ctx.version(), 4)),
            };
        }
    }
    if !ctx.authorize_cluster(Operation::IdempotentWrite)
        && !ctx.authorize_any(Operation::Write, ResourceType::Topic)
    {
        return error(ResponseError::ClusterAuthorizationFailed);
    }
    // KIP-360: a producer that knows its id asks for an epoch bump to reset its sequences.
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 {
        if let Some(epoch) = req.producer_epoch.checked_add(1).filter(|e| *e < i16::MAX) {
            return InitProducerIdResponse::default()
                .with_producer_id(req.producer_id)
                .with_producer_epoch(epoch);
        }
    }
    match ctx.broker.producer_ids.allocate() {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            warn!(error = %e, "allocating a producer id failed");
            error(ResponseError::KafkaStorageError)
        }
    }
}

/// Creates `__transaction_state` on the first transactional InitProducerId, as Kafka does
/// (creating its partitions is blocking I/O, kept off the async threads).
async fn ensure_transaction_log(ctx: &RequestContext) -> Result<(), String> {
    if ctx.broker.txns.has_log() {
        return Ok(());
    }
    let broker = ctx.broker.clone();
    tokio::task::spawn_blocking(move || {
        broker.txns.ensure_log(|| {
            TxnCoordinator::open_log(
                &broker.metadata,
                broker.flusher.clone(),
                broker.txns.config(),
            )
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}
