//! Reads orders, filtering on `event_type` before decoding, then prints the audit report.
//!
//! ```sh
//! cargo run -p sluice-sdk --example consumer -- 10
//! ```
//! Env: BOOTSTRAP, REGISTRY, CREDENTIALS_DIR.

mod common;

use common::Order;

#[tokio::main]
async fn main() -> Result<(), sluice_sdk::Error> {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let consumer = sluice_sdk::Consumer::new(
        common::config("billing-svc"),
        "example-billing",
        &["orders"],
    )?
    .with_filter(|p| p.event_type.as_deref() == Some("shop.Order"))
    .with_dead_letter("orders.dlq")?;
    for _ in 0..count {
        let rec = consumer.next().await?;
        match consumer.decode::<Order>(&rec).await {
            Ok(order) => println!(
                "{} from {:?} seq {:?}",
                order.id, rec.provenance.service_id, rec.provenance.producer_seq
            ),
            Err(e) => eprintln!("{e}"),
        }
    }
    println!("{:?}\n{}", consumer.metrics(), consumer.report());
    Ok(())
}
