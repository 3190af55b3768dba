//! Amazon SNS, standard and FIFO topics, through `PublishBatch` (query protocol).

mod config;
mod request_builder;
mod service;

pub use config::SnsConfig;
pub use service::SnsService;
