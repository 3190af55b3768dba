//! Connecting the terminal tools to a Kafka cluster (Sluice's broker or any other) via rdkafka.

use std::time::Duration;

use anyhow::Context;
use rdkafka::metadata::Metadata;
use rdkafka::ClientConfig;

/// Connection options shared by `topic`, `produce` and `consume`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClientArgs {
    /// Kafka bootstrap servers, comma-separated HOST:PORT.
    #[arg(
        long,
        short = 'b',
        env = "SLUICE_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    pub bootstrap: String,
    /// Extra librdkafka client property, e.g. `-X security.protocol=ssl` (repeatable).
    #[arg(short = 'X', long = "client-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub client_config: Vec<(String, String)>,
    /// How long to wait for the cluster to answer, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub request_timeout_ms: u64,
}

impl ClientArgs {
    /// A librdkafka configuration pointing at the bootstrap servers, with the `-X` overrides
    /// applied last so they win.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", "sluice-cli");
        for (key, value) in &self.client_config {
            config.set(key, value);
        }
        config
    }

    /// The request timeout as a [`Duration`].
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Context for errors talking to the cluster: where we tried to connect.
    pub(crate) fn unreachable_hint(&self) -> String {
        format!(
            "is a Kafka broker running at {}? (set --bootstrap or SLUICE_BOOTSTRAP)",
            self.bootstrap
        )
    }
}

/// Fetches cluster metadata (all topics, or one) without blocking other async tasks.
pub(crate) fn fetch_metadata<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: Option<&str>,
    args: &ClientArgs,
) -> anyhow::Result<Metadata> {
    tokio::task::block_in_place(|| client.fetch_metadata(topic, args.timeout()))
        .with_context(|| format!("could not fetch metadata; {}", args.unreachable_hint()))
}

/// Parses `KEY=VALUE` (used by `-X`, `-c` and `-H`); the value may itself contain `=`.
pub(crate) fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_key_value;

    #[test]
    fn key_value_splits_at_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert_eq!(parse_key_value("a="), Ok(("a".to_string(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }
}
