//! The `SendMessageBatch` call, its answer read per entry.

use serde_json::Value;

use super::config::{SqsConfig, MAX_BATCH_RECORDS, MAX_BYTES};
use super::request_builder;
use crate::aws::AwsClient;
use crate::error::Result;
use crate::event::Event;
use crate::sinks::attributes::{self, Entry};
use crate::sinks::{BatchLimits, Failure, Receipt, Service};

/// An SQS queue as a [`Service`].
#[derive(Debug, Clone)]
pub struct SqsService {
    client: AwsClient,
    config: SqsConfig,
}

impl SqsService {
    /// A client of the queue in `config`.
    pub fn new(config: SqsConfig) -> Result<SqsService> {
        attributes::check_fifo_fields(config.deduplication_id.as_ref(), &config.queue_url)?;
        Ok(SqsService {
            client: AwsClient::new("sqs", &config.aws)?,
            config,
        })
    }
}

impl Service for SqsService {
    fn kind(&self) -> &'static str {
        "sqs"
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: MAX_BATCH_RECORDS,
            max_bytes: MAX_BYTES,
        }
    }

    fn check(&self, event: &Event) -> Result<usize, Failure> {
        request_builder::entry(&self.config, event, 0).map(|(_, size)| size)
    }

    async fn send(&self, batch: &[Event]) -> Result<Vec<Result<Receipt, Failure>>, Failure> {
        let body = request_builder::request(&self.config, batch)?;
        let answer = self
            .client
            .json("1.0", "AmazonSQS.SendMessageBatch", &body)
            .await?;
        Ok(per_entry(&answer, batch.len()))
    }
}

/// Outcomes by entry id (0-based).
pub(crate) fn per_entry(answer: &Value, n: usize) -> Vec<Result<Receipt, Failure>> {
    let index = |v: &Value| {
        v.get("Id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<usize>().ok())
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let list = |k: &str| {
        answer
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    let delivered = list("Successful").map(|v| Entry::Delivered(index(v), text(v, "MessageId")));
    let failed = list("Failed").map(|v| {
        Entry::Failed(
            index(v),
            text(v, "Code").unwrap_or_else(|| "Failed".to_owned()),
            text(v, "Message").unwrap_or_default(),
            v.get("SenderFault")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        )
    });
    attributes::outcomes(n, delivered.chain(failed))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn partial_failures_are_failures() {
        let answer = json!({
            "Successful": [{"Id": "0", "MessageId": "m0"}],
            "Failed": [
                {"Id": "1", "SenderFault": true, "Code": "InvalidParameterValue", "Message": "no"},
                {"Id": "2", "SenderFault": false, "Code": "InternalError", "Message": "later"}
            ]
        });
        let out = per_entry(&answer, 4);
        assert_eq!(
            out[0],
            Ok(Receipt {
                id: Some("m0".into())
            })
        );
        assert!(matches!(&out[1], Err(f) if !f.retriable && f.code == "InvalidParameterValue"));
        assert!(matches!(&out[2], Err(f) if f.retriable));
        assert!(matches!(&out[3], Err(f) if f.retriable && f.code == "Missing"));
    }

    proptest::proptest! {
        #[test]
        fn any_answer_gives_one_outcome_per_entry(answer in crate::testing::json_answer(), n in 0usize..12) {
            let out = per_entry(&answer, n);
            proptest::prop_assert_eq!(out.len(), n);
        }
    }
}
