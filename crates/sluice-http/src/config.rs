//! How to run the proxy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::KeysFile;

/// Settings of one proxy instance.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// HTTP listen address (Confluent's default port is 8082).
    pub listen: SocketAddr,
    /// librdkafka settings of the proxy's own Kafka connections (`bootstrap.servers`,
    /// security); each API key's settings go over these.
    pub kafka: BTreeMap<String, String>,
    /// Schema registry base URL, for the avro, jsonschema and protobuf formats.
    pub registry_url: String,
    /// API keys; none means every caller uses the proxy's own Kafka identity.
    pub keys: KeysFile,
    /// `service_id` stamped on records of callers without a key of their own.
    pub service_id: String,
    /// Origins browsers may call from (`*` for any); none turns CORS off.
    pub cors_origins: Vec<String>,
    /// Largest request body, compressed and again once decompressed.
    pub max_body_bytes: usize,
    /// Most records in one v3 `records:batch` request.
    pub max_batch_entries: usize,
    /// How long a record may take to be acknowledged by Kafka (librdkafka's
    /// `message.timeout.ms`, unless the Kafka settings give one).
    pub delivery_timeout: Duration,
    /// Consumer instances idle this long are closed (Confluent: `consumer.instance.timeout.ms`).
    pub consumer_idle_timeout: Duration,
    /// Most consumer instances at once.
    pub max_consumers: usize,
    /// Default wait of a records request (Confluent: `consumer.request.timeout.ms`).
    pub consumer_request_timeout: Duration,
    /// Largest records response (Confluent: `consumer.request.max.bytes`).
    pub consumer_max_bytes: usize,
    /// Base URL consumer instances are announced under (default: `http://` and the listen
    /// address).
    pub advertised_url: Option<String>,
}

impl HttpConfig {
    /// Defaults for a cluster at `bootstrap` and a registry at `registry_url`.
    pub fn new(listen: SocketAddr, bootstrap: &str, registry_url: &str) -> Self {
        let mut kafka = BTreeMap::new();
        kafka.insert("bootstrap.servers".to_owned(), bootstrap.to_owned());
        HttpConfig {
            listen,
            kafka,
            registry_url: registry_url.to_owned(),
            keys: KeysFile::default(),
            service_id: "sluice-http".to_owned(),
            cors_origins: Vec::new(),
            max_body_bytes: 8 << 20,
            max_batch_entries: 1_000,
            delivery_timeout: Duration::from_secs(30),
            consumer_idle_timeout: Duration::from_secs(300),
            max_consumers: 1_000,
            consumer_request_timeout: Duration::from_secs(1),
            consumer_max_bytes: 64 << 20,
            advertised_url: None,
        }
    }
}
