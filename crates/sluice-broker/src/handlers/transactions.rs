//! What the transactional APIs share: authorization of the transactional id and the error a
//! client of a given request version understands for a fenced producer.

use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::auth::{Operation, ResourceType};

/// WRITE on the transactional id, which every transactional request needs.
pub fn authorize_writer(ctx: &RequestContext, transactional_id: &str) -> Result<(), ResponseError> {
    if ctx.authorize(
        Operation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        Ok(())
    } else {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    }
}

/// `error` as a client speaking `version` expects it: PRODUCER_FENCED exists from the
/// version given (KIP-588); older clients get INVALID_PRODUCER_EPOCH, which they treat alike.
pub fn for_version(error: ResponseError, version: i16, fenced_since: i16) -> ResponseError {
    match error {
        ResponseError::ProducerFenced if version < fenced_since => {
            ResponseError::InvalidProducerEpoch
        }
        other => other,
    }
}
