//! IncrementalAlterConfigs (API key 44, v0-1): applies SET / DELETE / APPEND / SUBTRACT
//! operations to a topic's config overrides, leaving other overrides alone.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use sluice_log::LogConfig;

use super::admin::{self, ErrorReply};
use super::RequestContext;
use crate::meta::configs::{self, AlterOp};

/// Handles an IncrementalAlterConfigs request.
pub async fn handle(
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let keys: Vec<String> = req
        .resources
        .iter()
        .map(|r| format!("{}/{}", r.resource_type, r.resource_name.as_str()))
        .collect();
    let dupes = admin::duplicates(keys.iter().map(String::as_str));
    let defaults = ctx.broker.metadata.log_defaults();
    let mut responses = Vec::with_capacity(req.resources.len());
    for (resource, key) in req.resources.iter().zip(&keys) {
        let result = if dupes.contains(key.as_str()) {
            Err(admin::duplicate_reply("resource", key))
        } else {
            admin::alter_resource(
                ctx,
                resource.resource_type,
                resource.resource_name.as_str(),
                resource.configs.len(),
                req.validate_only,
                |topic| apply_all(topic.configs.clone(), defaults, &resource.configs),
            )
            .await
        };
        let (error_code, error_message) = admin::outcome(&result);
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Applies every operation, in order, to a copy of the current overrides.
fn apply_all(
    mut overrides: BTreeMap<String, String>,
    defaults: &LogConfig,
    entries: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, ErrorReply> {
    let dupes = admin::duplicates(entries.iter().map(|e| e.name.as_str()));
    if let Some(key) = dupes.iter().next() {
        return Err(admin::duplicate_reply("config", key));
    }
    for entry in entries {
        let op = operation(entry)?;
        configs::apply_op(&mut overrides, defaults, entry.name.as_str(), op)?;
    }
    Ok(overrides)
}

/// Decodes one entry's operation: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
fn operation(entry: &AlterableConfig) -> Result<AlterOp, ErrorReply> {
    let name = entry.name.as_str();
    let value = || {
        entry.value.as_ref().map(|v| v.to_string()).ok_or_else(|| {
            ErrorReply::new(
                ResponseError::InvalidRequest,
                format!("null value is not supported for config '{name}'; use DELETE to remove it"),
            )
        })
    };
    match entry.config_operation {
        0 => value().map(AlterOp::Set),
        1 => Ok(AlterOp::Delete),
        2 => value().map(AlterOp::Append),
        3 => value().map(AlterOp::Subtract),
        other => Err(ErrorReply::new(
            ResponseError::InvalidRequest,
            format!("unknown config operation {other} for '{name}'; use 0 (SET), 1 (DELETE), 2 (APPEND) or 3 (SUBTRACT)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    fn op(name: &'static str, code: i8, value: Option<&'static str>) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(StrBytes::from_static_str(name))
            .with_config_operation(code)
            .with_value(value.map(StrBytes::from_static_str))
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operations_apply_in_order_and_keep_other_overrides() {
        let current = map(&[("retention.ms", "100"), ("segment.ms", "5")]);
        let result = apply_all(
            current,
            &LogConfig::default(),
            &[
                op("segment.ms", 1, None),
                op("cleanup.policy", 2, Some("compact")),
                op("max.message.bytes", 0, Some("2000")),
            ],
        );
        assert_eq!(
            result,
            Ok(map(&[
                ("cleanup.policy", "delete,compact"),
                ("max.message.bytes", "2000"),
                ("retention.ms", "100"),
            ]))
        );
    }

    #[test]
    fn bad_operations_are_refused() {
        let defaults = LogConfig::default();
        let cases = [
            (op("retention.ms", 0, None), ResponseError::InvalidRequest),
            (
                op("retention.ms", 9, Some("1")),
                ResponseError::InvalidRequest,
            ),
            (
                op("retention.ms", 2, Some("1")),
                ResponseError::InvalidConfig,
            ),
            (
                op("no.such.config", 2, Some("1")),
                ResponseError::InvalidConfig,
            ),
        ];
        for (entry, expected) in cases {
            let err =
                apply_all(BTreeMap::new(), &defaults, std::slice::from_ref(&entry)).unwrap_err();
            assert_eq!(err.error, expected, "{entry:?}");
        }
        let dup = [op("a", 1, None), op("a", 1, None)];
        assert_eq!(
            apply_all(BTreeMap::new(), &defaults, &dup)
                .unwrap_err()
                .error,
            ResponseError::InvalidRequest
        );
    }
}
