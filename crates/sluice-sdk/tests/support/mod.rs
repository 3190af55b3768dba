//! Shared test fixtures: an in-process broker and registry, and the test message types.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use prost_reflect::{DescriptorPool, MessageDescriptor, ReflectMessage};
use serde::{Deserialize, Serialize};
use sluice_sdk::{AvroRecord, JsonRecord, Received, SdkConfig};

/// A broker and a registry in a temp dir.
pub(crate) struct Env {
    pub broker: Option<sluice_broker::BrokerHandle>,
    pub registry: Option<sluice_registry::RegistryHandle>,
    pub bootstrap: String,
    pub registry_url: String,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(tweak: impl FnOnce(&mut sluice_broker::BrokerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut config = sluice_broker::BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("data"),
            ..sluice_broker::BrokerConfig::default()
        };
        tweak(&mut config);
        let broker = sluice_broker::start(config)
            .await
            .unwrap_or_else(|e| panic!("broker: {e}"));
        let bootstrap = broker.local_addr().to_string();
        Env {
            broker: Some(broker),
            registry: None,
            registry_url: String::new(),
            bootstrap,
            dir,
        }
    }

    /// Starts the registry against the broker's plaintext listener at `bootstrap`.
    pub(crate) async fn with_registry(mut self, bootstrap: &str) -> Self {
        let config = sluice_registry::RegistryConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            bootstrap.to_owned(),
        );
        let r = sluice_registry::start(config)
            .await
            .unwrap_or_else(|e| panic!("registry: {e}"));
        self.registry_url = format!("http://{}", r.local_addr());
        self.registry = Some(r);
        self
    }

    pub(crate) async fn full() -> Self {
        let env = Self::start().await;
        let b = env.bootstrap.clone();
        env.with_registry(&b).await
    }

    pub(crate) fn config(&self, service: &str) -> SdkConfig {
        SdkConfig::new(&self.bootstrap, &self.registry_url, service)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(r) = self.registry.take() {
            let _ = r.shutdown().await;
        }
        if let Some(b) = self.broker.take() {
            let _ = b.shutdown().await;
        }
    }
}

/// Waits for the consumer's next record, failing the test after 30 s.
pub(crate) async fn next(c: &sluice_sdk::Consumer) -> Received {
    tokio::time::timeout(Duration::from_secs(30), c.next())
        .await
        .unwrap_or_else(|_| panic!("no record within 30 s; metrics {:?}", c.metrics()))
        .unwrap_or_else(|e| panic!("consume: {e}"))
}

/// The descriptor pool of `tests/protos`, compiled with protox.
pub(crate) fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/protos");
        let fds = protox::compile(["shop/order.proto"], [dir])
            .unwrap_or_else(|e| panic!("compiling test protos: {e}"));
        DescriptorPool::from_file_descriptor_set(fds)
            .unwrap_or_else(|e| panic!("test descriptor pool: {e}"))
    })
}

fn message(name: &str) -> MessageDescriptor {
    pool()
        .get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} missing from the test protos"))
}

/// `shop.Money`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Money {
    #[prost(string, tag = "1")]
    pub currency: String,
    #[prost(int64, tag = "2")]
    pub cents: i64,
}

/// `shop.Order.Line`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Line {
    #[prost(string, tag = "1")]
    pub sku: String,
    #[prost(uint32, tag = "2")]
    pub quantity: u32,
}

/// `shop.Order`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Order {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub total: Option<Money>,
    #[prost(message, repeated, tag = "3")]
    pub lines: Vec<Line>,
    #[prost(string, tag = "4")]
    pub note: String,
}

impl ReflectMessage for Order {
    fn descriptor(&self) -> MessageDescriptor {
        message("shop.Order")
    }
}

/// An order with `id` and a `note` of `note_len` bytes.
pub(crate) fn order(id: &str, note_len: usize) -> Order {
    Order {
        id: id.to_owned(),
        total: Some(Money {
            currency: "EUR".into(),
            cents: 1999,
        }),
        lines: vec![Line {
            sku: "sku-1".into(),
            quantity: 2,
        }],
        note: "n".repeat(note_len),
    }
}

/// An Avro record type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Payment {
    pub id: String,
    pub amount: i64,
    pub memo: Option<String>,
}

impl AvroRecord for Payment {
    fn schema() -> &'static str {
        r#"{"type":"record","name":"Payment","namespace":"shop","fields":[
            {"name":"id","type":"string"},
            {"name":"amount","type":"long"},
            {"name":"memo","type":["null","string"],"default":null}]}"#
    }
}

/// A JSON Schema record type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Shipment {
    pub id: String,
    pub carrier: String,
}

impl JsonRecord for Shipment {
    fn schema() -> &'static str {
        r#"{"title":"shop.Shipment","type":"object","properties":{"id":{"type":"string"},"carrier":{"type":"string"}},"required":["id","carrier"]}"#
    }
}
