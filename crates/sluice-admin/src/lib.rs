//! A small Kafka-protocol admin client for the ACL APIs (DescribeAcls, CreateAcls, DeleteAcls),
//! transaction administration (ListTransactions, DescribeTransactions, DescribeProducers,
//! WriteTxnMarkers), SCRAM users (DescribeUserScramCredentials, AlterUserScramCredentials) and
//! client quotas (DescribeClientQuotas, AlterClientQuotas), and the cluster's shape and
//! replica movement for the rebalancer (Metadata, DescribeLogDirs, ListOffsets,
//! Alter/ListPartitionReassignments, AlterReplicaLogDirs, ElectLeaders, DescribeConfigs,
//! IncrementalAlterConfigs), topics for platform-as-code (CreateTopics, DeleteTopics,
//! CreatePartitions), and membership in groups with a protocol of their own (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup) for Connect workers.
//!
//! rdkafka 0.39 exposes none of them, so this speaks the wire protocol with `kafka-protocol`,
//! over plaintext, TLS (with an optional client certificate) or SASL (PLAIN, SCRAM). It works
//! against Sluice, Apache Kafka or MSK alike. `sluice acl`, `sluice txn`, `sluice user`,
//! `sluice quota` and KSS use it, so there is one client to
//! maintain.

mod acls;
mod cluster;
mod configs;
mod connection;
mod error;
mod group_member;
mod quotas;
mod reassign;
mod sasl;
mod scram;
mod tls;
mod topics;
mod transactions;

pub use acls::{create_acls, delete_acls, describe_acls, exact_filter, ACL_API_VERSION};
pub use cluster::{
    cluster_metadata, describe_log_dirs, list_offsets, BrokerInfo, ClusterMetadata, LogDirInfo,
    LogDirReplica, PartitionInfo, TopicInfo, EARLIEST, LATEST,
};
pub use configs::{
    alter_configs, describe_configs, describe_configs_of, ConfigResourceKind, ConfigValue,
};
pub use connection::AdminConnection;
pub use error::AdminError;
pub use group_member::{
    Assignor, GroupMember, GroupMemberInfo, GroupTimeouts, Heartbeat, Membership,
};
pub use quotas::{alter_client_quotas, describe_client_quotas, QuotaEntityPart, QuotaEntry};
pub use reassign::{
    alter_partition_reassignments, alter_replica_log_dirs, elect_preferred_leaders,
    list_partition_reassignments, OngoingReassignment, PartitionResults,
};
pub use sasl::SaslLogin;
pub use scram::{
    alter_user_scram_credentials, describe_user_scram_credentials, ScramChange, ScramCredentialInfo,
};
pub use tls::TlsFiles;
pub use topics::{create_partitions, create_topics, delete_topics, NewTopic};
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
    /// SASL login for SASL_PLAINTEXT/SASL_SSL listeners, or `None`.
    pub sasl: Option<SaslLogin>,
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
        let mut sasl = false;
        let mut files = TlsFiles::default();
        let mut mechanism = "GSSAPI".to_owned();
        let (mut username, mut password) = (String::new(), String::new());
        for (key, value) in properties {
            match key {
                "security.protocol" => {
                    (ssl, sasl) = match value.to_ascii_lowercase().as_str() {
                        "plaintext" => (false, false),
                        "ssl" => (true, false),
                        "sasl_plaintext" => (false, true),
                        "sasl_ssl" => (true, true),
                        other => {
                            return Err(AdminError::Config(format!(
                                "unknown security.protocol={other}; use plaintext, ssl, sasl_plaintext or sasl_ssl"
                            )))
                        }
                    }
                }
                "sasl.mechanism" | "sasl.mechanisms" => mechanism = value.to_owned(),
                "sasl.username" => username = value.to_owned(),
                "sasl.password" => password = value.to_owned(),
                "ssl.ca.location" => files.ca = Some(value.into()),
                "ssl.certificate.location" => files.cert = Some(value.into()),
                "ssl.key.location" => files.key = Some(value.into()),
                _ => {}
            }
        }
        let sasl = if sasl {
            let mechanism = sluice_sasl::Mechanism::parse(&mechanism)
                .filter(|m| *m != sluice_sasl::Mechanism::OAuthBearer)
                .ok_or_else(|| {
                    AdminError::Config(format!(
                        "sasl.mechanism={mechanism} is not supported by the admin client; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                    ))
                })?;
            if username.is_empty() {
                return Err(AdminError::Config(
                    "SASL needs sasl.username and sasl.password".into(),
                ));
            }
            Some(SaslLogin {
                mechanism,
                username,
                password,
            })
        } else {
            None
        };
        Ok(AdminConfig {
            bootstrap: bootstrap.to_owned(),
            tls: ssl.then_some(files),
            sasl,
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
        assert!(
            AdminConfig::from_properties(
                "h:1",
                [("security.protocol", "sasl_ssl")],
                Duration::from_secs(1)
            )
            .is_err(),
            "SASL needs a mechanism and a user"
        );
        let sasl = AdminConfig::from_properties(
            "h:1",
            [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "admin"),
                ("sasl.password", "pw"),
            ],
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(sasl.tls.is_some());
        let login = sasl.sasl.unwrap();
        assert_eq!(login.mechanism, sluice_sasl::Mechanism::ScramSha512);
        assert!(
            !format!("{login:?}").contains("pw"),
            "the password is not logged"
        );
    }
}
