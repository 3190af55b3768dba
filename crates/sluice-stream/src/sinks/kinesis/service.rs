//! The `PutRecords` call, its answer read per record.

use serde_json::Value;

use super::config::{KinesisConfig, MAX_BATCH_BYTES, MAX_BATCH_RECORDS};
use super::request_builder;
use crate::aws::AwsClient;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::sinks::{BatchLimits, Failure, Receipt, Service};

/// A Kinesis data stream as a [`Service`].
#[derive(Debug, Clone)]
pub struct KinesisService {
    client: AwsClient,
    config: KinesisConfig,
}

impl KinesisService {
    /// A client of the stream in `config`.
    pub fn new(config: KinesisConfig) -> Result<KinesisService> {
        if config.stream_name.is_none() && config.stream_arn.is_none() {
            return Err(Error::Config(
                "kinesis: set stream_name or stream_arn".to_owned(),
            ));
        }
        Ok(KinesisService {
            client: AwsClient::new("kinesis", &config.aws)?,
            config,
        })
    }
}

impl Service for KinesisService {
    fn kind(&self) -> &'static str {
        "kinesis"
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: MAX_BATCH_RECORDS,
            max_bytes: MAX_BATCH_BYTES,
        }
    }

    fn check(&self, event: &Event) -> Result<usize, Failure> {
        request_builder::record(&self.config, event).map(|(_, size)| size)
    }

    async fn send(&self, batch: &[Event]) -> Result<Vec<Result<Receipt, Failure>>, Failure> {
        let body = request_builder::request(&self.config, batch)?;
        let answer = self
            .client
            .json("1.1", "Kinesis_20131202.PutRecords", &body)
            .await?;
        Ok(per_record(&answer, batch.len()))
    }
}

/// Outcomes in request order; a record the answer leaves out is retried, never a success.
fn per_record(answer: &Value, n: usize) -> Vec<Result<Receipt, Failure>> {
    let records = answer.get("Records").and_then(Value::as_array);
    (0..n)
        .map(|i| {
            let Some(r) = records.and_then(|rs| rs.get(i)) else {
                return Err(Failure::transient(
                    "Missing",
                    "the answer did not mention this record",
                ));
            };
            if let Some(code) = r.get("ErrorCode").and_then(Value::as_str) {
                return Err(Failure {
                    code: code.to_owned(),
                    message: r
                        .get("ErrorMessage")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    retriable: crate::aws::retriable_code(code),
                });
            }
            let shard = r.get("ShardId").and_then(Value::as_str);
            let seq = r.get("SequenceNumber").and_then(Value::as_str);
            match (shard, seq) {
                (Some(shard), Some(seq)) => Ok(Receipt {
                    id: Some(format!("{shard}/{seq}")),
                }),
                _ => Err(Failure::transient(
                    "Missing",
                    "no sequence number for this record",
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn failed_records_in_a_successful_answer_are_failures() {
        let answer = json!({
            "FailedRecordCount": 2,
            "Records": [
                {"SequenceNumber": "1", "ShardId": "shardId-000000000000"},
                {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"},
                {"ErrorCode": "AccessDeniedException", "ErrorMessage": "no"}
            ]
        });
        let out = per_record(&answer, 4);
        assert_eq!(
            out[0],
            Ok(Receipt {
                id: Some("shardId-000000000000/1".into())
            })
        );
        assert!(matches!(&out[1], Err(f) if f.retriable));
        assert!(matches!(&out[2], Err(f) if !f.retriable));
        assert!(matches!(&out[3], Err(f) if f.retriable));
    }

    proptest::proptest! {
        #[test]
        fn any_answer_gives_one_outcome_per_record(answer in crate::testing::json_answer(), n in 0usize..12) {
            proptest::prop_assert_eq!(per_record(&answer, n).len(), n);
        }
    }
}
