//! The `SendMessageBatch` call, its answer read per entry.

use serde_json::Value;

use super::config::{SqsConfig, MAX_BATCH_RECORDS, MAX_BYTES};
use super::request_builder;
use crate::aws::AwsClient;
use crate::error::Result;
use crate::event::Event;
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

/// Outcomes by entry id; an entry in neither list is a failure to retry, never a success.
pub(crate) fn per_entry(answer: &Value, n: usize) -> Vec<Result<Receipt, Failure>> {
    let mut out: Vec<Result<Receipt, Failure>> = (0..n)
        .map(|_| {
            Err(Failure::transient(
                "Missing",
                "the answer did not mention this entry",
            ))
        })
        .collect();
    let index = |v: &Value| {
        v.get("Id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&i| i < n)
    };
    for ok in answer
        .get("Successful")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(i) = index(ok) {
            out[i] = Ok(Receipt {
                id: ok
                    .get("MessageId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
    }
    for failed in answer
        .get("Failed")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(i) = index(failed) {
            let code = failed
                .get("Code")
                .and_then(Value::as_str)
                .unwrap_or("Failed")
                .to_owned();
            let sender_fault = failed
                .get("SenderFault")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            out[i] = Err(Failure {
                retriable: !sender_fault || crate::aws::retriable_code(&code),
                message: failed
                    .get("Message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                code,
            });
        }
    }
    out
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
}
