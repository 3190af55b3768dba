//! A small Kafka-protocol admin client for the ACL APIs (DescribeAcls, CreateAcls, DeleteAcls)
//! and transaction administration (ListTransactions, DescribeTransactions, DescribeProducers,
//! WriteTxnMarkers).
//!
//! rdkafka 0.39 exposes none of them, so this speaks the wire protocol with `kafka-protocol`,
//! over plaintext or TLS with an optional client certificate. It works against Sluice, Apache
//! Kafka or MSK alike. `sluice acl`, `sluice txn` and KSS use it, so there is one client to
//! maintain.

mod acls;
mod connection;
mod error;
mod tls;
mod transactions;

pub use acls::{create_acls, delete_acls, describe_acls, exact_filter, ACL_API_VERSION};
pub use connection::AdminConnection;
pub use error::AdminError;
pub use tls::TlsFiles;
pub use transactions::{
    abort_transaction, describe_producers, describe_transactions, list_transactions,
    ListTransactionsFilter, ProducerState, TransactionDescription, TransactionListing,
    TransactionListings,
};

use std::time::Duration;

/// Where and how to reach a cluster's admin APIs.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Bootstrap servers, comma-separated `HOST:PORT`; the first one that answers is used.
    pub bootstrap: String,
    /// TLS settings, or `None` for a plaintext listener.
    pub tls: Option<TlsFiles>,
    /// How long to wait for a connection or an answer.
    pub timeout: Duration,
}

impl AdminConfig {
    /// Builds a config from librdkafka-style properties (`security.protocol`,
    /// `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`); other keys are
    /// ignored so the same `-X` list can also configure rdkafka clients.
    pub fn from_properties<'a>(
        bootstrap: &str,
        properties: impl IntoIterator<Item = (&'a str, &'a str)>,
        timeout: Duration,
    ) -> Result<Self, AdminError> {
        let mut ssl = false;
        let mut files = TlsFiles::default();
        for (key, value) in properties {
            match key {
                "security.protocol" => match value.to_ascii_lowercase().as_str() {
                    "ssl" => ssl = true,
                    "plaintext" => ssl = false,
                    other => {
                        return Err(AdminError::Config(format!(
                            "security.protocol={other} is not supported by the admin client; use plaintext or ssl"
                        )))
                    }
                },
                "ssl.ca.location" => files.ca = Some(value.into()),
                "ssl.certificate.location" => files.cert = Some(value.into()),
                "ssl.key.location" => files.key = Some(value.into()),
                _ => {}
            }
        }
        Ok(AdminConfig {
            bootstrap: bootstrap.to_owned(),
            tls: ssl.then_some(files),
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_properties_are_read() {
        let cfg = AdminConfig::from_properties(
            "h:1",
            [("security.protocol", "SSL"), ("ssl.ca.location", "/ca.pem")],
            Duration::from_secs(1),
        )
        .unwrap();
        let tls = cfg.tls.unwrap();
        assert_eq!(tls.ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
        let plain = AdminConfig::from_properties("h:1", [], Duration::from_secs(1)).unwrap();
        assert!(plain.tls.is_none());
        assert!(AdminConfig::from_properties(
            "h:1",
            [("security.protocol", "sasl_ssl")],
            Duration::from_secs(1)
        )
        .is_err());
    }
}
