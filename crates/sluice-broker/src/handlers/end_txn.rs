//! EndTxn: commits or aborts a producer's transaction (two phases, see [`crate::txn`]).

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::{transactions, RequestContext};

/// Answers EndTxn (v0-4).
pub async fn handle(ctx: &RequestContext, req: EndTxnRequest) -> EndTxnResponse {
    let id = req.transactional_id.as_str();
    let outcome = match transactions::authorize_writer(ctx, id) {
        Err(e) => Err(e),
        Ok(()) => {
            ctx.broker
                .txns
                .end_txn(
                    id,
                    req.producer_id.0,
                    req.producer_epoch,
                    req.committed,
                    ctx.broker.as_ref(),
                )
                .await
        }
    };
    let code = outcome
        .err()
        .map_or(0, |e| transactions::for_version(e, ctx.version(), 2).code());
    EndTxnResponse::default().with_error_code(code)
}
