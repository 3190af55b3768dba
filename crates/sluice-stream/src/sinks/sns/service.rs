//! The `PublishBatch` call, its answer read per entry.

use super::config::{SnsConfig, MAX_BATCH_RECORDS, MAX_BYTES};
use super::request_builder;
use crate::aws::{AwsClient, XmlDoc};
use crate::error::Result;
use crate::event::Event;
use crate::sinks::attributes::{self, Entry};
use crate::sinks::{BatchLimits, Failure, Receipt, Service};

/// An SNS topic as a [`Service`].
#[derive(Debug, Clone)]
pub struct SnsService {
    client: AwsClient,
    config: SnsConfig,
}

impl SnsService {
    /// A client of the topic in `config`.
    pub fn new(config: SnsConfig) -> Result<SnsService> {
        attributes::check_fifo_fields(config.deduplication_id.as_ref(), &config.topic_arn)?;
        Ok(SnsService {
            client: AwsClient::new("sns", &config.aws)?,
            config,
        })
    }
}

impl Service for SnsService {
    fn kind(&self) -> &'static str {
        "sns"
    }

    fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_records: MAX_BATCH_RECORDS,
            max_bytes: MAX_BYTES,
        }
    }

    fn check(&self, event: &Event) -> Result<usize, Failure> {
        request_builder::entry(&self.config, event, 1).map(|(_, size)| size)
    }

    async fn send(&self, batch: &[Event]) -> Result<Vec<Result<Receipt, Failure>>, Failure> {
        let params = request_builder::request(&self.config, batch)?;
        let doc = self.client.query(&params).await?;
        Ok(per_entry(&doc, batch.len()))
    }
}

/// Outcomes by entry id (1-based).
fn per_entry(doc: &XmlDoc, n: usize) -> Vec<Result<Receipt, Failure>> {
    let index = |node: usize| {
        doc.child_text(node, "Id")
            .and_then(|s| s.parse::<usize>().ok())
            .and_then(|i| i.checked_sub(1))
    };
    let text = |node: usize, k: &str| doc.child_text(node, k).map(str::to_owned);
    let delivered = doc
        .find(&["Successful", "member"])
        .into_iter()
        .map(|node| Entry::Delivered(index(node), text(node, "MessageId")));
    let failed = doc.find(&["Failed", "member"]).into_iter().map(|node| {
        Entry::Failed(
            index(node),
            text(node, "Code").unwrap_or_else(|| "Failed".to_owned()),
            text(node, "Message").unwrap_or_default(),
            doc.child_text(node, "SenderFault") == Some("true"),
        )
    });
    attributes::outcomes(n, delivered.chain(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_failures_are_failures() {
        let doc = XmlDoc::parse(
            b"<PublishBatchResponse><PublishBatchResult>\
              <Successful><member><Id>2</Id><MessageId>m2</MessageId></member></Successful>\
              <Failed><member><Id>1</Id><Code>InvalidParameter</Code><SenderFault>true</SenderFault><Message>x</Message></member></Failed>\
              </PublishBatchResult></PublishBatchResponse>",
        )
        .unwrap_or_default();
        let out = per_entry(&doc, 3);
        assert!(matches!(&out[0], Err(f) if !f.retriable));
        assert_eq!(
            out[1],
            Ok(Receipt {
                id: Some("m2".into())
            })
        );
        assert!(matches!(&out[2], Err(f) if f.retriable));
    }
}
