//! IncrementalAlterConfigs (API key 44, v0-1): applies SET / DELETE / APPEND / SUBTRACT
//! operations to a topic's config overrides or to the dynamic broker configs, leaving the
//! others alone.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::admin::{self, ErrorReply};
use super::RequestContext;
use crate::meta::configs::{self, AlterOp, AlterTarget};

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
    let mut responses = Vec::with_capacity(req.resources.len());
    for (resource, key) in req.resources.iter().zip(&keys) {
        let result = if dupes.contains(key.as_str()) {
            Err(admin::duplicate_reply("resource", key))
        } else if resource.resource_type == admin::RESOURCE_BROKER_LOGGER {
            logger_changes(&resource.configs).and_then(|changes| {
                admin::alter_loggers(
                    ctx,
                    resource.resource_name.as_str(),
                    &changes,
                    req.validate_only,
                )
            })
        } else {
            match operations(&resource.configs) {
                Err(refused) => Err(refused),
                Ok(ops) => {
                    admin::alter_resource(
                        ctx,
                        resource.resource_type,
                        resource.resource_name.as_str(),
                        req.validate_only,
                        move |current, target| apply_all(current.clone(), target, ops),
                    )
                    .await
                }
            }
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

/// The operations of one resource, decoded, in order; a config named twice is refused.
fn operations(entries: &[AlterableConfig]) -> Result<Vec<(String, AlterOp)>, ErrorReply> {
    let dupes = admin::duplicates(entries.iter().map(|e| e.name.as_str()));
    if let Some(key) = dupes.iter().next() {
        return Err(admin::duplicate_reply("config", key));
    }
    entries
        .iter()
        .map(|entry| Ok((entry.name.to_string(), operation(entry)?)))
        .collect()
}

/// Applies every operation, in order, to a copy of the current overrides.
fn apply_all(
    mut overrides: BTreeMap<String, String>,
    target: AlterTarget<'_>,
    ops: Vec<(String, AlterOp)>,
) -> Result<BTreeMap<String, String>, ErrorReply> {
    for (name, op) in ops {
        configs::apply_op(&mut overrides, target, &name, op)?;
    }
    Ok(overrides)
}

/// The level changes of a BROKER_LOGGER resource: SET a level or DELETE it (lists do not apply).
fn logger_changes(
    entries: &[AlterableConfig],
) -> Result<Vec<(String, Option<String>)>, ErrorReply> {
    entries
        .iter()
        .map(|entry| match operation(entry)? {
            AlterOp::Set(level) => Ok((entry.name.to_string(), Some(level))),
            AlterOp::Delete => Ok((entry.name.to_string(), None)),
            AlterOp::Append(_) | AlterOp::Subtract(_) => Err(ErrorReply::new(
                ResponseError::InvalidRequest,
                format!("logger {} takes SET or DELETE only", entry.name.as_str()),
            )),
        })
        .collect()
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
    use crate::meta::broker_defaults::BrokerDefaults;
    use kafka_protocol::protocol::StrBytes;
    use sluice_log::LogConfig;

    fn op(name: &'static str, code: i8, value: Option<&'static str>) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(StrBytes::from_static_str(name))
            .with_config_operation(code)
            .with_value(value.map(StrBytes::from_static_str))
    }

    use crate::test_support::string_map as map;

    /// Decodes and applies `entries` as the handler does.
    fn run(
        current: BTreeMap<String, String>,
        target: AlterTarget<'_>,
        entries: &[AlterableConfig],
    ) -> Result<BTreeMap<String, String>, ErrorReply> {
        apply_all(current, target, operations(entries)?)
    }

    #[test]
    fn operations_apply_in_order_and_keep_other_overrides() {
        let current = map(&[("retention.ms", "100"), ("segment.ms", "5")]);
        let defaults = BrokerDefaults::startup(LogConfig::default());
        let result = run(
            current,
            AlterTarget::Topic(&defaults),
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
        let defaults = BrokerDefaults::startup(LogConfig::default());
        let defaults = AlterTarget::Topic(&defaults);
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
            let err = run(BTreeMap::new(), defaults, std::slice::from_ref(&entry)).unwrap_err();
            assert_eq!(err.error, expected, "{entry:?}");
        }
        let dup = [op("a", 1, None), op("a", 1, None)];
        assert_eq!(
            run(BTreeMap::new(), defaults, &dup).unwrap_err().error,
            ResponseError::InvalidRequest
        );
    }
}
