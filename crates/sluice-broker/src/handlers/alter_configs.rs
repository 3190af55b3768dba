//! AlterConfigs (API key 33, v0-2): replaces a topic's whole set of config overrides, or the
//! whole set of dynamic configs of the broker or of the cluster-wide defaults; configs left out
//! of the request revert to their defaults.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_request::AlterableConfig;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::admin::{self, ErrorReply};
use super::RequestContext;

/// Handles an AlterConfigs request.
pub async fn handle(ctx: &RequestContext, req: AlterConfigsRequest) -> AlterConfigsResponse {
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
        } else {
            let overrides = new_overrides(&resource.configs);
            admin::alter_resource(
                ctx,
                resource.resource_type,
                resource.resource_name.as_str(),
                req.validate_only,
                |_, _| overrides,
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
    AlterConfigsResponse::default().with_responses(responses)
}

/// The complete new set of overrides: every entry with a value; a null value means "not set".
fn new_overrides(entries: &[AlterableConfig]) -> Result<BTreeMap<String, String>, ErrorReply> {
    let dupes = admin::duplicates(entries.iter().map(|e| e.name.as_str()));
    if let Some(key) = dupes.iter().next() {
        return Err(admin::duplicate_reply("config", key));
    }
    Ok(entries
        .iter()
        .filter_map(|e| Some((e.name.to_string(), e.value.as_ref()?.to_string())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::protocol::StrBytes;

    fn entry(name: &'static str, value: Option<&'static str>) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(StrBytes::from_static_str(name))
            .with_value(value.map(StrBytes::from_static_str))
    }

    #[test]
    fn null_values_are_dropped_and_duplicates_refused() {
        let map = new_overrides(&[entry("retention.ms", Some("5")), entry("segment.ms", None)]);
        assert_eq!(
            map,
            Ok(BTreeMap::from([(
                "retention.ms".to_owned(),
                "5".to_owned()
            )]))
        );
        let err = new_overrides(&[entry("a", Some("1")), entry("a", Some("2"))]).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidRequest);
    }
}
