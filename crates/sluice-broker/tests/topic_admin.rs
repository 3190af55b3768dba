//! Topic administration over the wire: CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and DescribeCluster against a real
//! broker on a loopback port.

// Test code: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{alter_configs_request, incremental_alter_configs_request};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use sluice_broker::meta::Metadata;
use support::TestBroker;

mod support;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const UNKNOWN_TOPIC_ID: i16 = 100;
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

/// The broker's catalogue, for checking what a request changed.
fn metadata(broker: &TestBroker) -> &Metadata {
    &broker
        .handle
        .as_ref()
        .expect("broker running")
        .broker()
        .metadata
}

/// The cluster id the broker reports.
fn metadata_cluster_id(broker: &TestBroker) -> String {
    broker
        .handle
        .as_ref()
        .expect("broker running")
        .broker()
        .cluster_id
        .clone()
}

/// A broker whose `num.partitions` is 2, so defaults are distinguishable from 1.
async fn start_broker() -> TestBroker {
    TestBroker::start_with(|config| config.default_partitions = 2).await
}

/// A protocol client with one helper per admin request.
struct Client(support::Client);

async fn client(broker: &TestBroker) -> Client {
    Client(broker.client().await)
}

impl Client {
    async fn send<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.0.request(req, version).await
    }

    async fn create(
        &mut self,
        version: i16,
        topics: Vec<CreatableTopic>,
        validate_only: bool,
    ) -> CreateTopicsResponse {
        let req = CreateTopicsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(10_000)
            .with_validate_only(validate_only);
        self.send(version, &req).await
    }

    async fn describe(
        &mut self,
        version: i16,
        resources: Vec<DescribeConfigsResource>,
        synonyms: bool,
    ) -> Vec<DescribeConfigsResult> {
        let req = DescribeConfigsRequest::default()
            .with_resources(resources)
            .with_include_synonyms(synonyms)
            .with_include_documentation(version >= 3);
        let resp: DescribeConfigsResponse = self.send(version, &req).await;
        resp.results
    }

    /// The effective configs of a topic, by name.
    async fn topic_configs(&mut self, topic: &str) -> BTreeMap<String, (String, i8)> {
        let results = self
            .describe(4, vec![topic_resource(topic, None)], false)
            .await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].error_code, 0, "{:?}", results[0].error_message);
        results[0]
            .configs
            .iter()
            .map(|c| {
                let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                (c.name.to_string(), (value, c.config_source))
            })
            .collect()
    }

    async fn incremental(
        &mut self,
        resource_type: i8,
        name: &str,
        ops: &[(&'static str, i8, Option<&'static str>)],
        validate_only: bool,
    ) -> (i16, Option<String>) {
        let configs = ops
            .iter()
            .map(|(key, op, value)| {
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s(key))
                    .with_config_operation(*op)
                    .with_value(value.map(s))
            })
            .collect();
        let req = IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string(name.to_owned()))
                    .with_configs(configs),
            ]);
        let resp: IncrementalAlterConfigsResponse = self.send(1, &req).await;
        let r = &resp.responses[0];
        (
            r.error_code,
            r.error_message.as_ref().map(|m| m.to_string()),
        )
    }

    async fn alter(
        &mut self,
        resource_type: i8,
        name: &str,
        configs: &[(&'static str, &'static str)],
        validate_only: bool,
    ) -> (i16, Option<String>) {
        let configs = configs
            .iter()
            .map(|(key, value)| {
                alter_configs_request::AlterableConfig::default()
                    .with_name(s(key))
                    .with_value(Some(s(value)))
            })
            .collect();
        let req = AlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_owned()))
                .with_configs(configs)]);
        let resp: AlterConfigsResponse = self.send(2, &req).await;
        let r = &resp.responses[0];
        (
            r.error_code,
            r.error_message.as_ref().map(|m| m.to_string()),
        )
    }

    async fn grow(
        &mut self,
        topic: &str,
        count: i32,
        validate_only: bool,
    ) -> (i16, Option<String>) {
        let req = CreatePartitionsRequest::default()
            .with_validate_only(validate_only)
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(name(topic))
                .with_count(count)
                .with_assignments(None)]);
        let resp: CreatePartitionsResponse = self.send(3, &req).await;
        let r = &resp.results[0];
        (
            r.error_code,
            r.error_message.as_ref().map(|m| m.to_string()),
        )
    }
}

fn s(value: &'static str) -> StrBytes {
    StrBytes::from_static_str(value)
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

fn new_topic(
    topic: &str,
    partitions: i32,
    configs: &[(&'static str, &'static str)],
) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        )
}

fn topic_resource(topic: &str, keys: Option<&[&'static str]>) -> DescribeConfigsResource {
    DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(topic.to_owned()))
        .with_configuration_keys(keys.map(|k| k.iter().copied().map(s).collect()))
}

#[tokio::test]
async fn create_describe_alter_delete_round_trip() {
    let mut broker = start_broker().await;
    let mut client = client(&broker).await;

    let resp = client
        .create(
            7,
            vec![new_topic(
                "orders",
                3,
                &[("retention.ms", "3600000"), ("cleanup.policy", "compact")],
            )],
            false,
        )
        .await;
    let created = &resp.topics[0];
    assert_eq!(created.error_code, 0, "{:?}", created.error_message);
    assert_eq!((created.num_partitions, created.replication_factor), (3, 1));
    assert!(!created.topic_id.is_nil());
    let configs = created.configs.as_ref().expect("v5+ returns configs");
    let retention = configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .expect("retention.ms");
    assert_eq!(
        (retention.value.as_deref(), retention.config_source),
        (Some("3600000"), 1)
    );
    let segment = configs
        .iter()
        .find(|c| c.name.as_str() == "segment.bytes")
        .expect("segment.bytes");
    assert_eq!(segment.config_source, 5);
    let topic = metadata(&broker).topic("orders").expect("topic exists");
    assert_eq!(topic.partitions.len(), 3);
    assert_eq!(topic.id, created.topic_id);

    // DescribeConfigs v4 with synonyms and documentation.
    let results = client
        .describe(4, vec![topic_resource("orders", None)], true)
        .await;
    let retention = results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .expect("described");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.config_type, 5, "LONG");
    assert!(retention
        .documentation
        .as_ref()
        .is_some_and(|d| !d.is_empty()));
    let synonyms: Vec<(&str, i8)> = retention
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.source))
        .collect();
    assert_eq!(synonyms, vec![("retention.ms", 1), ("log.retention.ms", 5)]);

    // Only the requested keys, and v1 without documentation.
    let results = client
        .describe(
            1,
            vec![topic_resource(
                "orders",
                Some(&["cleanup.policy", "not.a.config"]),
            )],
            false,
        )
        .await;
    let names: Vec<&str> = results[0].configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["cleanup.policy"]);
    assert_eq!(results[0].configs[0].value.as_deref(), Some("compact"));

    // AlterConfigs replaces the whole set: retention.ms reverts to the default.
    assert_eq!(
        client
            .alter(2, "orders", &[("segment.ms", "60000")], false)
            .await,
        (0, None)
    );
    let configs = client.topic_configs("orders").await;
    assert_eq!(configs["segment.ms"], ("60000".to_owned(), 1));
    assert_eq!(configs["retention.ms"], ("604800000".to_owned(), 5));
    assert_eq!(configs["cleanup.policy"], ("delete".to_owned(), 5));
    let topic = metadata(&broker).topic("orders").expect("topic exists");
    assert_eq!(topic.log_config.segment_ms, 60_000);

    // IncrementalAlterConfigs: APPEND to a list, SET, DELETE, leaving the rest alone.
    let ops = [
        ("cleanup.policy", 2, Some("compact")),
        ("max.message.bytes", 0, Some("2048")),
        ("segment.ms", 1, None),
    ];
    assert_eq!(
        client.incremental(2, "orders", &ops, false).await,
        (0, None)
    );
    let configs = client.topic_configs("orders").await;
    assert_eq!(configs["cleanup.policy"], ("delete,compact".to_owned(), 1));
    assert_eq!(configs["max.message.bytes"], ("2048".to_owned(), 1));
    assert_eq!(configs["segment.ms"].1, 5);
    let topic = metadata(&broker).topic("orders").expect("topic exists");
    assert_eq!(topic.log_config.max_message_bytes, 2048);
    assert_eq!(
        client
            .incremental(2, "orders", &[("cleanup.policy", 3, Some("delete"))], false)
            .await,
        (0, None)
    );
    assert_eq!(
        client.topic_configs("orders").await["cleanup.policy"].0,
        "compact"
    );

    // Delete by topic id (v6), then the topic is gone for every API.
    let req = DeleteTopicsRequest::default()
        .with_topics(vec![
            DeleteTopicState::default().with_topic_id(created.topic_id)
        ])
        .with_timeout_ms(10_000);
    let resp: DeleteTopicsResponse = client.send(6, &req).await;
    assert_eq!(
        resp.responses[0].error_code, 0,
        "{:?}",
        resp.responses[0].error_message
    );
    assert_eq!(
        resp.responses[0].name.as_ref().map(|n| n.0.as_str()),
        Some("orders")
    );
    assert!(metadata(&broker).topic("orders").is_none());
    let results = client
        .describe(4, vec![topic_resource("orders", None)], false)
        .await;
    assert_eq!(results[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);

    broker.stop().await;
}

#[tokio::test]
async fn create_topics_reports_per_topic_errors() {
    let mut broker = start_broker().await;
    let mut client = client(&broker).await;
    assert_eq!(
        client
            .create(4, vec![new_topic("existing", 1, &[])], false)
            .await
            .topics[0]
            .error_code,
        0
    );

    let mut manual = new_topic("manual", -1, &[]);
    manual.assignments = vec![Default::default()];
    manual.assignments[0].broker_ids = vec![kafka_protocol::messages::BrokerId(9)];
    let mut both = new_topic("both", 2, &[]);
    both.assignments = vec![Default::default()];
    let topics = vec![
        new_topic("existing", 1, &[]),
        new_topic("bad/name", 1, &[]),
        new_topic("zero", 0, &[]),
        new_topic("rf", 1, &[]).with_replication_factor(3),
        new_topic("cfg", 1, &[("retention.ms", "soon")]),
        new_topic("unknown-cfg", 1, &[("no.such.config", "1")]),
        new_topic("twice", 1, &[]),
        new_topic("twice", 1, &[]),
        manual,
        both,
        new_topic("defaults", -1, &[]),
    ];
    let resp = client.create(7, topics, false).await;
    let codes: Vec<(&str, i16)> = resp
        .topics
        .iter()
        .map(|t| (t.name.0.as_str(), t.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("existing", TOPIC_ALREADY_EXISTS),
            ("bad/name", INVALID_TOPIC_EXCEPTION),
            ("zero", INVALID_PARTITIONS),
            ("rf", INVALID_REPLICATION_FACTOR),
            ("cfg", INVALID_CONFIG),
            ("unknown-cfg", INVALID_CONFIG),
            ("twice", INVALID_REQUEST),
            ("manual", INVALID_REPLICA_ASSIGNMENT),
            ("both", INVALID_REQUEST),
            ("defaults", 0),
        ]
    );
    for failed in resp.topics.iter().filter(|t| t.error_code != 0) {
        assert!(
            failed.error_message.as_ref().is_some_and(|m| !m.is_empty()),
            "{:?} has no message",
            failed.name
        );
        assert_eq!((failed.num_partitions, failed.configs.as_ref()), (-1, None));
    }
    let cfg_message = resp.topics[4]
        .error_message
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    assert!(cfg_message.contains("retention.ms"), "{cfg_message}");
    // -1 partitions means the broker's num.partitions (2 in this test).
    assert_eq!(resp.topics[9].num_partitions, 2);
    let metadata = metadata(&broker);
    assert_eq!(
        metadata.topic("defaults").map(|t| t.partitions.len()),
        Some(2)
    );
    assert!(metadata.topic("twice").is_none());

    // validate_only checks everything but creates nothing.
    let resp = client
        .create(
            5,
            vec![new_topic("dry", 4, &[("cleanup.policy", "compact")])],
            true,
        )
        .await;
    assert_eq!(
        (resp.topics[0].error_code, resp.topics[0].num_partitions),
        (0, 4)
    );
    assert!(metadata.topic("dry").is_none());
    let resp = client
        .create(
            5,
            vec![new_topic("dry", 4, &[("cleanup.policy", "shred")])],
            true,
        )
        .await;
    assert_eq!(resp.topics[0].error_code, INVALID_CONFIG);

    broker.stop().await;
}

#[tokio::test]
async fn create_partitions_only_grows() {
    let mut broker = start_broker().await;
    let mut client = client(&broker).await;
    assert_eq!(
        client
            .create(2, vec![new_topic("grow", 1, &[])], false)
            .await
            .topics[0]
            .error_code,
        0
    );
    let partitions = |b: &TestBroker| metadata(b).topic("grow").map(|t| t.partitions.len());

    assert_eq!(client.grow("grow", 3, true).await.0, 0);
    assert_eq!(
        partitions(&broker),
        Some(1),
        "validate_only must not add partitions"
    );
    assert_eq!(client.grow("grow", 3, false).await, (0, None));
    assert_eq!(partitions(&broker), Some(3));
    for count in [3, 2] {
        let (code, message) = client.grow("grow", count, false).await;
        assert_eq!(code, INVALID_PARTITIONS);
        assert!(message.is_some_and(|m| m.contains("3 partitions")));
    }
    assert_eq!(
        client.grow("missing", 2, false).await.0,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    broker.stop().await;
}

#[tokio::test]
async fn delete_topics_errors_by_name_and_id() {
    let mut broker = start_broker().await;
    let mut client = client(&broker).await;
    assert_eq!(
        client
            .create(2, vec![new_topic("doomed", 1, &[])], false)
            .await
            .topics[0]
            .error_code,
        0
    );

    // v1: names only; unknown and duplicated names are reported, the rest deleted.
    let req = DeleteTopicsRequest::default()
        .with_topic_names(vec![
            name("doomed"),
            name("ghost"),
            name("dup"),
            name("dup"),
        ])
        .with_timeout_ms(10_000);
    let resp: DeleteTopicsResponse = client.send(1, &req).await;
    let codes: Vec<(Option<&str>, i16)> = resp
        .responses
        .iter()
        .map(|r| (r.name.as_ref().map(|n| n.0.as_str()), r.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (Some("doomed"), 0),
            (Some("ghost"), UNKNOWN_TOPIC_OR_PARTITION),
            (Some("dup"), INVALID_REQUEST)
        ]
    );
    assert!(metadata(&broker).topic("doomed").is_none());

    // Internal topics hold broker state and are never deleted.
    let internal = "__consumer_offsets";
    assert!(metadata(&broker).topic(internal).is_some());
    let req = DeleteTopicsRequest::default().with_topic_names(vec![name(internal)]);
    let resp: DeleteTopicsResponse = client.send(5, &req).await;
    assert_eq!(resp.responses[0].error_code, INVALID_TOPIC_EXCEPTION);
    assert!(metadata(&broker).topic(internal).is_some());

    // v6: unknown id, and name plus id together.
    let id = uuid::Uuid::new_v4();
    let req = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_topic_id(id),
        DeleteTopicState::default()
            .with_name(Some(name("x")))
            .with_topic_id(id),
    ]);
    let resp: DeleteTopicsResponse = client.send(6, &req).await;
    assert_eq!(resp.responses[0].error_code, UNKNOWN_TOPIC_ID);
    assert_eq!(resp.responses[0].topic_id, id);
    assert_eq!(resp.responses[1].error_code, INVALID_REQUEST);
    assert!(resp.responses.iter().all(|r| r.error_message.is_some()));

    broker.stop().await;
}

#[tokio::test]
async fn config_errors_and_broker_resources() {
    let mut broker = start_broker().await;
    let mut client = client(&broker).await;
    assert_eq!(
        client
            .create(
                3,
                vec![new_topic("cfg", 1, &[("retention.ms", "1000")])],
                false
            )
            .await
            .topics[0]
            .error_code,
        0
    );

    // Bad values and unknown topics change nothing.
    let (code, message) = client
        .alter(2, "cfg", &[("segment.bytes", "tiny")], false)
        .await;
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.is_some_and(|m| m.contains("segment.bytes")));
    assert_eq!(
        client
            .alter(2, "nope", &[("retention.ms", "1")], false)
            .await
            .0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        client
            .incremental(2, "cfg", &[("retention.ms", 2, Some("5"))], false)
            .await
            .0,
        INVALID_CONFIG
    );
    assert_eq!(
        client
            .incremental(2, "cfg", &[("retention.ms", 0, None)], false)
            .await
            .0,
        INVALID_REQUEST
    );
    assert_eq!(
        client
            .incremental(2, "cfg", &[("retention.ms", 0, Some("5"))], true)
            .await
            .0,
        0
    );
    assert_eq!(client.alter(2, "cfg", &[], true).await.0, 0);
    assert_eq!(
        client.topic_configs("cfg").await["retention.ms"],
        ("1000".to_owned(), 1)
    );

    let results = client
        .describe(4, vec![topic_resource("bad/name", None)], false)
        .await;
    assert_eq!(results[0].error_code, INVALID_TOPIC_EXCEPTION);

    // Broker resources: this node's id or the empty name.
    let broker_resource = |name: &'static str| {
        DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s(name))
            .with_configuration_keys(None)
    };
    let results = client
        .describe(
            4,
            vec![
                broker_resource("1"),
                broker_resource(""),
                broker_resource("2"),
                broker_resource("x"),
            ],
            true,
        )
        .await;
    let codes: Vec<i16> = results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, 0, INVALID_REQUEST, INVALID_REQUEST]);
    let num_partitions = results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "num.partitions")
        .expect("num.partitions");
    assert_eq!(
        (num_partitions.value.as_deref(), num_partitions.read_only),
        (Some("2"), true)
    );
    assert!(results[0]
        .configs
        .iter()
        .any(|c| c.name.as_str() == "log.retention.ms"));
    // The broker-level defaults of topic configs are dynamic (validated here, not applied);
    // startup-only settings are not.
    assert_eq!(
        client
            .incremental(4, "1", &[("log.retention.ms", 0, Some("1"))], true)
            .await
            .0,
        0
    );
    assert_eq!(
        client
            .alter(4, "1", &[("num.partitions", "3")], false)
            .await
            .0,
        INVALID_CONFIG
    );
    // Broker loggers: described (none without a logger control when embedded); other resource
    // types are refused.
    let loggers = DescribeConfigsResource::default()
        .with_resource_type(8)
        .with_resource_name(s("1"))
        .with_configuration_keys(None);
    assert_eq!(
        client.describe(2, vec![loggers], false).await[0].error_code,
        0
    );
    let unsupported = DescribeConfigsResource::default()
        .with_resource_type(16)
        .with_resource_name(s("1"))
        .with_configuration_keys(None);
    assert_eq!(
        client.describe(2, vec![unsupported], false).await[0].error_code,
        INVALID_REQUEST
    );

    broker.stop().await;
}

#[tokio::test]
async fn describe_cluster_names_this_broker() {
    let mut broker = start_broker().await;
    let mut client = client(&broker).await;
    let port = i32::from(broker.addr.port());

    let resp: DescribeClusterResponse = client.send(0, &DescribeClusterRequest::default()).await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.cluster_id.as_str(), metadata_cluster_id(&broker));
    assert_eq!(resp.controller_id.0, 1);
    assert_eq!(resp.brokers.len(), 1);
    assert_eq!(
        (resp.brokers[0].broker_id.0, resp.brokers[0].port),
        (1, port)
    );
    assert_eq!(resp.cluster_authorized_operations, i32::MIN);

    let req = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let resp: DescribeClusterResponse = client.send(1, &req).await;
    assert!(resp.cluster_authorized_operations > 0);

    let req = DescribeClusterRequest::default().with_endpoint_type(2);
    let resp: DescribeClusterResponse = client.send(1, &req).await;
    assert_eq!(resp.error_code, UNSUPPORTED_ENDPOINT_TYPE);

    broker.stop().await;
}
