//! Sends protobuf orders with provenance headers.
//!
//! ```sh
//! sluice up &   # broker on 127.0.0.1:9092, registry on 127.0.0.1:8081
//! cargo run -p sluice-sdk --example producer -- 10
//! ```
//! Env: BOOTSTRAP, REGISTRY, CREDENTIALS_DIR (a sidecar directory for mTLS).

mod common;

use common::{Money, Order};

#[tokio::main]
async fn main() -> Result<(), sluice_sdk::Error> {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let producer = sluice_sdk::Producer::new(common::config("orders-svc"))?;
    for i in 0..count {
        let order = Order {
            id: format!("order-{i}"),
            total: Some(Money {
                currency: "EUR".into(),
                cents: 1000 + i64::from(i),
            }),
            note: "example".into(),
        };
        let (partition, offset) = producer
            .send("orders", Some(order.id.as_bytes()), &order)
            .await?;
        println!("sent {} to orders/{partition}@{offset}", order.id);
    }
    Ok(())
}
