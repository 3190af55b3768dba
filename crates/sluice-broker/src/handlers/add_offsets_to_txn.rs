//! AddOffsetsToTxn: puts the group's `__consumer_offsets` partition into the producer's
//! transaction, so TxnOffsetCommit may follow and the commit marker settles the offsets.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_protocol::ResponseError;

use super::{transactions, RequestContext};
use crate::auth::Operation;
use crate::group::OFFSETS_TOPIC;

/// Answers AddOffsetsToTxn (v0-4).
pub async fn handle(ctx: &RequestContext, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let id = req.transactional_id.as_str();
    let added = transactions::authorize_writer(ctx, id)
        .and_then(|()| ctx.authorize_group(Operation::Read, &req.group_id))
        .and_then(|()| {
            if req.group_id.is_empty() {
                return Err(ResponseError::InvalidGroupId);
            }
            let partition = ctx.broker.groups.partition_for(&req.group_id);
            ctx.broker.txns.add_partitions(
                id,
                req.producer_id.0,
                req.producer_epoch,
                &[(OFFSETS_TOPIC.to_owned(), partition)],
            )
        });
    let outcome = match added {
        Ok(durable) => durable.wait().await.map_err(|e| {
            tracing::error!(transactional_id = id, error = %e, "transaction state not durable");
            ResponseError::CoordinatorNotAvailable
        }),
        Err(e) => Err(e),
    };
    let code = outcome
        .err()
        .map_or(0, |e| transactions::for_version(e, ctx.version(), 2).code());
    AddOffsetsToTxnResponse::default().with_error_code(code)
}
