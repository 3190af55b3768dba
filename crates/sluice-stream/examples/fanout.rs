//! Sends ten events to a Kafka topic and, when `SQS_QUEUE_URL` is set, to that SQS queue too
//! (credentials, region and endpoint the standard AWS way), and prints where each went.
//!
//! ```sh
//! sluice up &                                   # a broker on 127.0.0.1:9092
//! cargo run -p sluice-stream --example fanout
//! ```

use sluice_stream::sinks::kafka::{KafkaConfig, KafkaService};
use sluice_stream::sinks::sqs::{SqsConfig, SqsService};
use sluice_stream::{Event, FanOut, Policy, Preset, Sink, StreamMetrics};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap =
        std::env::var("BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let metrics = StreamMetrics::default();
    let mut sinks = vec![Sink::spawn(
        "kafka",
        KafkaService::new(KafkaConfig::new(bootstrap, "stream-example"))?,
        Preset::Durable.sink_options("kafka"),
        &metrics,
    )];
    if let Ok(url) = std::env::var("SQS_QUEUE_URL") {
        sinks.push(Sink::spawn(
            "sqs",
            SqsService::new(SqsConfig::new(url))?,
            Preset::LowLatency.sink_options("sqs"),
            &metrics,
        ));
    }
    let fan = FanOut::new(sinks, Policy::All, None)?;
    for i in 0..10 {
        let event = Event::new(format!(r#"{{"n":{i}}}"#))
            .with_key(format!("user-{}", i % 3))
            .with_header("event_type", "Example");
        let report = fan.send(event).await?;
        for (destination, receipt) in report.delivered {
            println!(
                "event {i} → {destination}: {}",
                receipt.id.unwrap_or_default()
            );
        }
    }
    Ok(())
}
