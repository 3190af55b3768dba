//! DescribeClientQuotas (API key 48, v0-1; KIP-546): the quotas whose entity matches a filter.
//! Each component names an entity type and matches one name, the default (`null`), or any
//! specified name; `strict` asks for entities with no other types. Needs DescribeConfigs on
//! the cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;

use super::alter_client_quotas::{CLIENT_ID, USER};
use super::RequestContext;
use crate::auth::Operation;
use crate::quota::{EntityName, EntityPart, QuotaEntity};

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// Handles a DescribeClientQuotas request.
pub async fn handle(
    ctx: &RequestContext,
    req: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let fail = |error: ResponseError, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if !ctx.authorize_cluster(Operation::DescribeConfigs) {
        return fail(
            ResponseError::ClusterAuthorizationFailed,
            "describing client quotas needs DESCRIBE_CONFIGS on the cluster".into(),
        );
    }
    if let Err(message) = validate(&req.components) {
        return fail(ResponseError::InvalidRequest, message);
    }
    let entries = ctx
        .broker
        .quotas
        .store
        .entries()
        .into_iter()
        .filter(|(entity, _)| matches(entity, &req.components, req.strict))
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(describe_entity(&entity))
                .with_values(
                    values
                        .into_iter()
                        .map(|(key, value)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(key))
                                .with_value(value)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

fn validate(components: &[ComponentData]) -> Result<(), String> {
    let mut types = Vec::new();
    for c in components {
        let entity_type = c.entity_type.as_str();
        if types.contains(&entity_type) {
            return Err(format!(
                "entity type {entity_type} appears twice in the filter"
            ));
        }
        types.push(entity_type);
        if !(MATCH_EXACT..=MATCH_SPECIFIED).contains(&c.match_type) {
            return Err(format!("unknown match type {}", c.match_type));
        }
    }
    Ok(())
}

/// The entity's part of `entity_type` (`None` when it has none; ip entities are never stored).
fn part<'a>(entity: &'a QuotaEntity, entity_type: &str) -> Option<&'a EntityPart> {
    match entity_type {
        USER => Some(&entity.user),
        CLIENT_ID => Some(&entity.client_id),
        _ => None,
    }
}

fn matches(entity: &QuotaEntity, components: &[ComponentData], strict: bool) -> bool {
    let each = components.iter().all(|c| {
        let Some(Some(name)) = part(entity, c.entity_type.as_str()) else {
            return false;
        };
        match (c.match_type, name, &c._match) {
            (MATCH_EXACT, EntityName::Named(n), Some(wanted)) => n == wanted.as_str(),
            (MATCH_EXACT, EntityName::Default, None) | (MATCH_DEFAULT, EntityName::Default, _) => {
                true
            }
            (MATCH_SPECIFIED, EntityName::Named(_), _) => true,
            _ => false,
        }
    });
    let types = usize::from(entity.user.is_some()) + usize::from(entity.client_id.is_some());
    each && (!strict || types == components.len())
}

fn describe_entity(entity: &QuotaEntity) -> Vec<EntityData> {
    [(USER, &entity.user), (CLIENT_ID, &entity.client_id)]
        .into_iter()
        .filter_map(|(entity_type, part)| {
            let name = part.as_ref()?;
            Some(
                EntityData::default()
                    .with_entity_type(StrBytes::from_static_str(entity_type))
                    .with_entity_name(match name {
                        EntityName::Default => None,
                        EntityName::Named(n) => Some(StrBytes::from_string(n.clone())),
                    }),
            )
        })
        .collect()
}
