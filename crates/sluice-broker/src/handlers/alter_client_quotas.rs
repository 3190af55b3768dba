//! AlterClientQuotas (API key 49, v0-1; KIP-546): sets and removes quota values of user,
//! client-id and user+client-id entities (`null` names the default). Each entry is validated
//! on its own; the valid ones are persisted together unless `validate_only`. Needs
//! AlterConfigs on the cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_client_quotas_request::EntityData as RequestEntity;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::Operation;
use crate::quota::{EntityName, QuotaEntity, QuotaOp, QuotaStore};

/// The user entity type.
pub const USER: &str = "user";
/// The client-id entity type.
pub const CLIENT_ID: &str = "client-id";

type Refusal = (ResponseError, String);

/// Handles an AlterClientQuotas request.
pub async fn handle(
    ctx: &RequestContext,
    req: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let authorized = ctx.authorize_cluster(Operation::AlterConfigs);
    let checked: Vec<Result<(QuotaEntity, Vec<QuotaOp>), Refusal>> = req
        .entries
        .iter()
        .map(|entry| {
            if !authorized {
                return Err((
                    ResponseError::ClusterAuthorizationFailed,
                    "altering client quotas needs ALTER_CONFIGS on the cluster".into(),
                ));
            }
            let entity = entity(&entry.entity).map_err(|m| (ResponseError::InvalidRequest, m))?;
            let ops: Vec<QuotaOp> = entry
                .ops
                .iter()
                .map(|op| QuotaOp {
                    key: op.key.to_string(),
                    value: (!op.remove).then_some(op.value),
                })
                .collect();
            QuotaStore::validate(&entity, &ops)
                .map_err(|e| (ResponseError::InvalidRequest, e.to_string()))?;
            Ok((entity, ops))
        })
        .collect();
    let valid: Vec<_> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    let stored = if req.validate_only || valid.is_empty() {
        Ok(())
    } else {
        let broker = ctx.broker.clone();
        tokio::task::spawn_blocking(move || broker.quotas.store.apply(valid))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
    };
    let entries = req
        .entries
        .iter()
        .zip(checked)
        .map(|(entry, outcome)| {
            let result = EntryData::default().with_entity(
                entry
                    .entity
                    .iter()
                    .map(|e| {
                        EntityData::default()
                            .with_entity_type(e.entity_type.clone())
                            .with_entity_name(e.entity_name.clone())
                    })
                    .collect(),
            );
            let refusal = match (outcome, &stored) {
                (Err(refusal), _) => Some(refusal),
                (Ok(_), Err(e)) => Some((ResponseError::UnknownServerError, e.clone())),
                (Ok(_), Ok(())) => None,
            };
            match refusal {
                None => result,
                Some((error, message)) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// The entity an entry names.
fn entity(parts: &[RequestEntity]) -> Result<QuotaEntity, String> {
    let mut entity = QuotaEntity {
        user: None,
        client_id: None,
    };
    for part in parts {
        let name = match &part.entity_name {
            None => EntityName::Default,
            Some(n) => EntityName::Named(n.to_string()),
        };
        let slot = match part.entity_type.as_str() {
            USER => &mut entity.user,
            CLIENT_ID => &mut entity.client_id,
            "ip" => {
                return Err(
                    "ip quotas (connection_creation_rate) are not supported by this broker".into(),
                )
            }
            other => {
                return Err(format!(
                    "unknown entity type {other:?}; use user or client-id"
                ))
            }
        };
        if slot.replace(name).is_some() {
            return Err(format!(
                "entity type {} appears twice in one entity",
                part.entity_type.as_str()
            ));
        }
    }
    Ok(entity)
}
