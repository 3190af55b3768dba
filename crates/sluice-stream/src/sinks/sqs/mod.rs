//! Amazon SQS, standard and FIFO queues, through `SendMessageBatch` (JSON protocol).

mod config;
mod request_builder;
mod service;

pub use config::SqsConfig;
pub use service::SqsService;
