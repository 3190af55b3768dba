//! Amazon Kinesis Data Streams through `PutRecords` (JSON 1.1 protocol).

mod config;
mod request_builder;
mod service;

pub use config::KinesisConfig;
pub use service::KinesisService;
