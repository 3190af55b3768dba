//! DescribeConfigs (API key 32, v1-4): the effective configs of topics and of this broker
//! (with their dynamic layers), and the levels of the broker's loggers (BROKER_LOGGER).

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::admin::{self, ConfigResource, ErrorReply};
use super::RequestContext;
use crate::auth::Operation;
use crate::meta::configs::{self, ConfigSource, ConfigType, DescribedConfig};

/// Handles a DescribeConfigs request.
pub async fn handle(ctx: &RequestContext, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let documentation = req.include_documentation && ctx.version() >= 3;
    let results = req
        .resources
        .iter()
        .map(|resource| {
            let described = describe(ctx, resource, req.include_synonyms, documentation);
            let (error_code, error_message) = admin::outcome(&described);
            DescribeConfigsResult::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_configs(described.unwrap_or_default())
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The requested configs of one resource (all of them when `configuration_keys` is null).
fn describe(
    ctx: &RequestContext,
    resource: &DescribeConfigsResource,
    include_synonyms: bool,
    documentation: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, ErrorReply> {
    let config = &ctx.broker.config;
    let resource_name = resource.resource_name.as_str();
    let resolved = ConfigResource::resolve(config.node_id, resource.resource_type, resource_name)?;
    resolved.authorize(ctx, Operation::DescribeConfigs)?;
    let mut entries = match resolved {
        ConfigResource::Topic(name) => {
            let topic = admin::existing_topic(ctx, &name)?;
            configs::describe_topic(
                &ctx.broker.metadata.log_defaults(),
                &topic.configs,
                include_synonyms,
            )
        }
        ConfigResource::Broker(scope) => configs::describe_broker(
            config,
            &ctx.broker.metadata.log_defaults(),
            scope,
            include_synonyms,
        ),
        ConfigResource::BrokerLogger => return Ok(describe_loggers(ctx, resource)),
    };
    if let Some(keys) = &resource.configuration_keys {
        entries.retain(|entry| keys.iter().any(|key| key.as_str() == entry.name));
    }
    Ok(entries
        .iter()
        .map(|c| to_result(c, ctx.version(), documentation))
        .collect())
}

/// The loggers and their levels (all when `configuration_keys` is null).
fn describe_loggers(
    ctx: &RequestContext,
    resource: &DescribeConfigsResource,
) -> Vec<DescribeConfigsResourceResult> {
    let levels = ctx
        .broker
        .config
        .log_levels
        .as_ref()
        .map(|l| l.levels())
        .unwrap_or_default();
    levels
        .into_iter()
        .filter(|(logger, _)| {
            resource
                .configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == logger))
        })
        .map(|(logger, level)| {
            let mut result = DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_string(logger))
                .with_value(Some(StrBytes::from_string(level)))
                .with_config_source(ConfigSource::DynamicBrokerLoggerConfig.code());
            if ctx.version() >= 3 {
                result = result.with_config_type(ConfigType::String.code());
            }
            result
        })
        .collect()
}

/// Encodes one entry for the request's version; fields newer than the version stay at their
/// defaults because the encoder refuses them otherwise.
fn to_result(
    config: &DescribedConfig,
    version: i16,
    documentation: bool,
) -> DescribeConfigsResourceResult {
    let text = |s: &str| StrBytes::from_string(s.to_owned());
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(config.name))
        .with_value(Some(text(&config.value)))
        .with_read_only(config.read_only)
        .with_config_source(config.source.code())
        .with_is_sensitive(config.sensitive)
        .with_synonyms(
            config
                .synonyms
                .iter()
                .map(|s| {
                    DescribeConfigsSynonym::default()
                        .with_name(StrBytes::from_static_str(s.name))
                        .with_value(Some(text(&s.value)))
                        .with_source(s.source.code())
                })
                .collect(),
        )
        .with_documentation(None);
    if version >= 3 {
        result = result.with_config_type(config.config_type.code());
        if documentation {
            result =
                result.with_documentation(Some(StrBytes::from_static_str(config.documentation)));
        }
    }
    result
}
