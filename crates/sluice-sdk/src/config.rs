//! SDK configuration: platform defaults, the sidecar's credentials directory, and the
//! SDK-only keys stripped before the rest goes to librdkafka.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::registry::RetryPolicy;
use crate::schema::SubjectStrategy;

/// SDK-only key: comma-separated topics whose writes must be durable (checked by the linter).
pub const CRITICAL_TOPICS: &str = "sluice.critical.topics";

/// Producer settings applied unless the application sets them.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "5"),
    ("compression.type", "lz4"),
];

/// Consumer settings applied unless the application sets them.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("auto.offset.reset", "earliest"),
    ("enable.auto.commit", "true"),
];

/// Everything a [`crate::Producer`] or [`crate::Consumer`] needs.
#[derive(Debug, Clone)]
pub struct SdkConfig {
    /// Id of this service, written in `service_id` and used as the principal in errors.
    pub service_id: String,
    /// Schema registry base URL.
    pub registry_url: String,
    /// librdkafka properties (plus SDK-only `sluice.*` keys).
    pub kafka: BTreeMap<String, String>,
    /// Subject naming strategy.
    pub subject_strategy: SubjectStrategy,
    /// Registry retry policy.
    pub retry: RetryPolicy,
    /// How many records may wait for the registry at once before `send` fails fast.
    pub buffer_capacity: usize,
    /// How long a send may wait for delivery.
    pub delivery_timeout: Duration,
}

impl SdkConfig {
    /// A config for `bootstrap` brokers and the registry at `registry_url`.
    pub fn new(bootstrap: &str, registry_url: &str, service_id: &str) -> Self {
        let mut kafka = BTreeMap::new();
        kafka.insert("bootstrap.servers".to_owned(), bootstrap.to_owned());
        SdkConfig {
            service_id: service_id.to_owned(),
            registry_url: registry_url.to_owned(),
            kafka,
            subject_strategy: SubjectStrategy::default(),
            retry: RetryPolicy::default(),
            buffer_capacity: 10_000,
            delivery_timeout: Duration::from_secs(30),
        }
    }

    /// Sets one librdkafka (or `sluice.*`) property.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.kafka.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Merges the sidecar's `client.properties` from `dir` (mTLS paths, security protocol and
    /// bootstrap servers); its keys override what was set before.
    pub fn with_credentials_dir(mut self, dir: &Path) -> Result<Self> {
        let path = dir.join("client.properties");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Config(format!(
                "cannot read {}: {e}; is the sidecar writing credentials there?",
                path.display()
            ))
        })?;
        self.kafka.extend(parse_properties(&text));
        for key in [
            "ssl.ca.location",
            "ssl.certificate.location",
            "ssl.key.location",
        ] {
            if let Some(p) = self.kafka.get(key) {
                if !Path::new(p).exists() {
                    return Err(Error::Config(format!(
                        "{key}={p} from {} does not exist; wait for the sidecar to write it",
                        path.display()
                    )));
                }
            }
        }
        Ok(self)
    }

    /// Critical topics named by `sluice.critical.topics`.
    pub fn critical_topics(&self) -> Vec<String> {
        critical_topics(&self.kafka)
    }

    /// librdkafka properties for a producer: defaults, then the application's.
    pub fn producer_properties(&self) -> BTreeMap<String, String> {
        self.role_properties(PRODUCER_DEFAULTS)
    }

    /// librdkafka properties for a consumer in `group`: defaults, then the application's.
    pub fn consumer_properties(&self, group: &str) -> BTreeMap<String, String> {
        let mut p = self.role_properties(CONSUMER_DEFAULTS);
        p.entry("group.id".to_owned())
            .or_insert_with(|| group.to_owned());
        p
    }

    fn role_properties(&self, defaults: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p: BTreeMap<String, String> = defaults
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        p.extend(self.kafka.clone());
        p
    }
}

/// Turns properties into an rdkafka config, dropping SDK-only `sluice.*` keys.
pub fn client_config(props: &BTreeMap<String, String>) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    for (k, v) in props.iter().filter(|(k, _)| !k.starts_with("sluice.")) {
        c.set(k, v);
    }
    c
}

/// The topics listed in `sluice.critical.topics`.
pub fn critical_topics(props: &BTreeMap<String, String>) -> Vec<String> {
    props
        .get(CRITICAL_TOPICS)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Parses Java/librdkafka `key=value` properties (`#`/`!` comments, blank lines ignored).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once(['=', ':']))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}
