//! Client quota administration (KIP-546): DescribeClientQuotas and AlterClientQuotas.

use kafka_protocol::messages::alter_client_quotas_request::{
    EntityData as AlterEntity, EntryData as AlterEntry, OpData,
};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;

use crate::connection::AdminConnection;
use crate::error::check;
use crate::AdminError;

const DESCRIBE_VERSION: i16 = 1;
const ALTER_VERSION: i16 = 1;

/// One part of a quota entity: an entity type (`user`, `client-id`) and a name, `None` for the
/// type's default.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QuotaEntityPart {
    /// `user` or `client-id`.
    pub entity_type: String,
    /// The name; `None` is the default entity.
    pub name: Option<String>,
}

/// A quota entity and its values, as described by the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaEntry {
    /// The entity's parts.
    pub entity: Vec<QuotaEntityPart>,
    /// `(key, value)` pairs, e.g. `("producer_byte_rate", 1048576.0)`.
    pub values: Vec<(String, f64)>,
}

/// Quotas of the entities that have every part of `filter` (all entities when it is empty);
/// with `strict`, only entities with no other parts.
pub async fn describe_client_quotas(
    conn: &mut AdminConnection,
    filter: &[QuotaEntityPart],
    strict: bool,
) -> Result<Vec<QuotaEntry>, AdminError> {
    let components = filter
        .iter()
        .map(|p| {
            let component = ComponentData::default()
                .with_entity_type(StrBytes::from_string(p.entity_type.clone()));
            match &p.name {
                Some(name) => component
                    .with_match_type(0)
                    .with_match(Some(StrBytes::from_string(name.clone()))),
                None => component.with_match_type(1),
            }
        })
        .collect();
    let request = DescribeClientQuotasRequest::default()
        .with_components(components)
        .with_strict(strict);
    let response = conn.request(&request, DESCRIBE_VERSION).await?;
    check(response.error_code, response.error_message.as_ref(), || {
        "describing client quotas".to_owned()
    })?;
    Ok(response
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| QuotaEntry {
            entity: e
                .entity
                .into_iter()
                .map(|p| QuotaEntityPart {
                    entity_type: p.entity_type.to_string(),
                    name: p.entity_name.map(|n| n.to_string()),
                })
                .collect(),
            values: e
                .values
                .into_iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect(),
        })
        .collect())
}

/// Sets (`Some`) or removes (`None`) quota values of one entity.
pub async fn alter_client_quotas(
    conn: &mut AdminConnection,
    entity: &[QuotaEntityPart],
    ops: &[(String, Option<f64>)],
) -> Result<(), AdminError> {
    let entry = AlterEntry::default()
        .with_entity(
            entity
                .iter()
                .map(|p| {
                    AlterEntity::default()
                        .with_entity_type(StrBytes::from_string(p.entity_type.clone()))
                        .with_entity_name(p.name.clone().map(StrBytes::from_string))
                })
                .collect(),
        )
        .with_ops(
            ops.iter()
                .map(|(key, value)| {
                    OpData::default()
                        .with_key(StrBytes::from_string(key.clone()))
                        .with_value(value.unwrap_or(0.0))
                        .with_remove(value.is_none())
                })
                .collect(),
        );
    let request = AlterClientQuotasRequest::default().with_entries(vec![entry]);
    let response = conn.request(&request, ALTER_VERSION).await?;
    for result in response.entries {
        check(result.error_code, result.error_message.as_ref(), || {
            "altering client quotas".to_owned()
        })?;
    }
    Ok(())
}
