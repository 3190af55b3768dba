#![allow(dead_code)]

//! Shared by the examples: the `shop.Order` type, described by `tests/protos` at run time (a real
//! application would generate both with `prost-reflect-build`).

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, MessageDescriptor, ReflectMessage};

/// `shop.Money`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Money {
    /// ISO currency.
    #[prost(string, tag = "1")]
    pub currency: String,
    /// Amount in cents.
    #[prost(int64, tag = "2")]
    pub cents: i64,
}

/// `shop.Order` (its `lines` field is left out: unknown fields are skipped by prost).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Order {
    /// Order id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Total.
    #[prost(message, optional, tag = "2")]
    pub total: Option<Money>,
    /// Free text.
    #[prost(string, tag = "4")]
    pub note: String,
}

impl ReflectMessage for Order {
    fn descriptor(&self) -> MessageDescriptor {
        static POOL: OnceLock<DescriptorPool> = OnceLock::new();
        let pool = POOL.get_or_init(|| {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/protos");
            protox::compile(["shop/order.proto"], [dir])
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    DescriptorPool::from_file_descriptor_set(f).map_err(|e| e.to_string())
                })
                .unwrap_or_else(|e| panic!("example protos: {e}"))
        });
        pool.get_message_by_name("shop.Order")
            .unwrap_or_else(|| panic!("shop.Order is missing from tests/protos"))
    }
}

/// Settings from the environment, defaulting to `sluice up`'s addresses.
pub(crate) fn config(service: &str) -> sluice_sdk::SdkConfig {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let c = sluice_sdk::SdkConfig::new(
        &var("BOOTSTRAP", "127.0.0.1:9092"),
        &var("REGISTRY", "http://127.0.0.1:8081"),
        service,
    );
    match std::env::var("CREDENTIALS_DIR") {
        Ok(dir) => c
            .with_credentials_dir(std::path::Path::new(&dir))
            .unwrap_or_else(|e| panic!("{e}")),
        Err(_) => c,
    }
}
