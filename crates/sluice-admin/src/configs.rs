//! Reading and changing the configs of topics and brokers: DescribeConfigs and
//! IncrementalAlterConfigs (the rebalancer's throttles, which it sets for an execution and
//! puts back as they were afterwards).

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::connection::AdminConnection;
use crate::error::check;
use crate::AdminError;

/// Kafka's config resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigResourceKind {
    /// A topic.
    Topic,
    /// A broker (by node id; `""` for the cluster-wide default).
    Broker,
}

impl ConfigResourceKind {
    /// The protocol's resource type.
    fn code(self) -> i8 {
        match self {
            ConfigResourceKind::Topic => 2,
            ConfigResourceKind::Broker => 4,
        }
    }
}

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValue {
    /// Its name.
    pub name: String,
    /// Its value (`None` when unset or sensitive).
    pub value: Option<String>,
    /// True if set on this very resource (a topic override or a per-broker dynamic config),
    /// not inherited from a default, `server.properties` or the cluster-wide dynamic default.
    pub set_here: bool,
}

/// Topic override (`TOPIC_CONFIG`, 1) and per-broker dynamic config (`DYNAMIC_BROKER_CONFIG`,
/// 2): the sources of a value set on the resource itself.
const SOURCES_SET_HERE: [i8; 2] = [1, 2];

/// The configs `keys` of one resource (all of them when `keys` is empty), with DescribeConfigs.
pub async fn describe_configs(
    conn: &mut AdminConnection,
    kind: ConfigResourceKind,
    name: &str,
    keys: &[&str],
) -> Result<Vec<ConfigValue>, AdminError> {
    let mut described = describe_configs_of(conn, kind, &[name], keys).await?;
    Ok(described
        .pop()
        .map(|(_, configs)| configs)
        .unwrap_or_default())
}

/// Resources per DescribeConfigs request in [`describe_configs_of`]: one round trip for many
/// topics, yet a bounded answer.
const DESCRIBE_BATCH: usize = 500;

/// The configs `keys` (all when empty) of each resource in `names`, in that order, with one
/// DescribeConfigs request per 500 resources.
pub async fn describe_configs_of(
    conn: &mut AdminConnection,
    kind: ConfigResourceKind,
    names: &[&str],
    keys: &[&str],
) -> Result<Vec<(String, Vec<ConfigValue>)>, AdminError> {
    let keys: Option<Vec<StrBytes>> = (!keys.is_empty()).then(|| {
        keys.iter()
            .map(|k| StrBytes::from_string((*k).to_owned()))
            .collect()
    });
    let mut out = Vec::with_capacity(names.len());
    for batch in names.chunks(DESCRIBE_BATCH) {
        let resources = batch
            .iter()
            .map(|name| {
                DescribeConfigsResource::default()
                    .with_resource_type(kind.code())
                    .with_resource_name(StrBytes::from_string((*name).to_owned()))
                    .with_configuration_keys(keys.clone())
            })
            .collect();
        let request = DescribeConfigsRequest::default().with_resources(resources);
        let response = conn.request(&request, 1).await?;
        for r in response.results {
            let name = r.resource_name.to_string();
            check(r.error_code, r.error_message.as_ref(), || {
                format!("DescribeConfigs of {name}")
            })?;
            let configs = r
                .configs
                .into_iter()
                .map(|c| ConfigValue {
                    name: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                    set_here: SOURCES_SET_HERE.contains(&c.config_source),
                })
                .collect();
            out.push((name, configs));
        }
    }
    Ok(out)
}

/// Sets (`Some`) or deletes (`None`) configs of one resource with IncrementalAlterConfigs.
pub async fn alter_configs(
    conn: &mut AdminConnection,
    kind: ConfigResourceKind,
    name: &str,
    configs: &[(String, Option<String>)],
) -> Result<(), AdminError> {
    let resource_type = kind.code();
    let configs = configs
        .iter()
        .map(|(key, value)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_config_operation(if value.is_some() { 0 } else { 1 })
                .with_value(value.clone().map(StrBytes::from_string))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_owned()))
            .with_configs(configs),
    ]);
    let response = conn.request(&request, 1).await?;
    for r in &response.responses {
        check(r.error_code, r.error_message.as_ref(), || {
            format!("IncrementalAlterConfigs of {name}")
        })?;
    }
    Ok(())
}
