//! One module per Kafka API, and the table that routes a decoded request to it.
//!
//! The table below is the single source of truth for what the broker implements: dispatch and
//! the ApiVersions response are both generated from it, so an API is advertised exactly when a
//! handler exists, at exactly the versions that handler accepts.
//!
//! Every handler module exposes
//! `pub async fn handle(ctx: &RequestContext, req: XRequest) -> XResponse`
//! (plain data in, plain data out); framing, header encoding and errors for undecodable requests
//! live in [`crate::net`].

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message};

pub use crate::request::RequestContext;
use response::{Reply, Response};

pub mod access;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod admin;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_replica_log_dirs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod get_telemetry_subscriptions;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod push_telemetry;
pub mod response;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod transactions;
pub mod txn_offset_commit;
pub mod write_txn_markers;

/// Why a request could not be dispatched; the connection layer answers or closes accordingly.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The API key is not one the broker implements.
    #[error("unsupported API key {0}")]
    UnsupportedApi(i16),
    /// The version is outside the range the broker advertises for this API.
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The requested version.
        version: i16,
    },
    /// The body did not decode at the stated version.
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        api: ApiKey,
        /// The requested version.
        version: i16,
        /// What the decoder reported.
        reason: String,
    },
    /// A request that gets no response (Produce with acks=0) failed; closing the connection
    /// is how the client learns of it.
    #[error("{api:?} request without response failed ({reason})")]
    UnansweredFailure {
        /// The API.
        api: ApiKey,
        /// Which partition failed and how.
        reason: String,
    },
    /// Encoding the response failed (a bug: a field out of range for the version).
    #[error("failed to encode {api:?} v{version} response: {reason}")]
    Encode {
        /// The API.
        api: ApiKey,
        /// The response version.
        version: i16,
        /// What the encoder reported.
        reason: String,
    },
}

/// Declares the implemented APIs: `ApiKey => module, min..=max`.
macro_rules! api_table {
    ($($key:ident => $module:ident, $min:literal ..= $max:literal;)*) => {
        /// Every implemented API with the version range advertised in ApiVersions.
        pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[$((ApiKey::$key, $min, $max),)*];

        /// Decodes `body` as the API named in `ctx.header`, runs its handler and returns the
        /// encoded response (response header included, without the size prefix), or `None`
        /// when the request expects no response (Produce with acks=0).
        pub async fn dispatch(ctx: &RequestContext, mut body: Bytes) -> Result<Option<Response>, DispatchError> {
            let key = ctx.header.request_api_key;
            let version = ctx.header.request_api_version;
            let api = ApiKey::try_from(key).map_err(|_| DispatchError::UnsupportedApi(key))?;
            match api {
                $(ApiKey::$key => {
                    if !($min..=$max).contains(&version) {
                        return Err(DispatchError::UnsupportedVersion { api, version });
                    }
                    let req = Decodable::decode(&mut body, version).map_err(|e| {
                        DispatchError::Malformed { api, version, reason: e.to_string() }
                    })?;
                    let respond = expects_response(&req);
                    let resp = $module::handle(ctx, req).await;
                    if respond {
                        resp.encode_reply(ctx, api).map(Some)
                    } else {
                        unanswered_outcome(api, &resp)
                    }
                })*
                _ => Err(DispatchError::UnsupportedApi(key)),
            }
        }
    };
}

api_table! {
    Produce => produce, 3..=11;
    Fetch => fetch, 4..=12;
    ListOffsets => list_offsets, 1..=8;
    Metadata => metadata, 0..=12;
    ApiVersions => api_versions, 0..=4;
    CreateTopics => create_topics, 2..=7;
    DeleteTopics => delete_topics, 1..=6;
    DeleteRecords => delete_records, 0..=2;
    InitProducerId => init_producer_id, 0..=5;
    AddPartitionsToTxn => add_partitions_to_txn, 0..=4;
    AddOffsetsToTxn => add_offsets_to_txn, 0..=4;
    EndTxn => end_txn, 0..=4;
    TxnOffsetCommit => txn_offset_commit, 0..=4;
    OffsetForLeaderEpoch => offset_for_leader_epoch, 2..=4;
    DescribeConfigs => describe_configs, 1..=4;
    AlterConfigs => alter_configs, 0..=2;
    CreatePartitions => create_partitions, 0..=3;
    IncrementalAlterConfigs => incremental_alter_configs, 0..=1;
    DescribeCluster => describe_cluster, 0..=1;
    OffsetCommit => offset_commit, 2..=9;
    OffsetFetch => offset_fetch, 1..=9;
    FindCoordinator => find_coordinator, 0..=6;
    JoinGroup => join_group, 0..=9;
    Heartbeat => heartbeat, 0..=4;
    LeaveGroup => leave_group, 0..=5;
    SyncGroup => sync_group, 0..=5;
    DescribeGroups => describe_groups, 0..=5;
    ListGroups => list_groups, 0..=5;
    DeleteGroups => delete_groups, 0..=2;
    OffsetDelete => offset_delete, 0..=0;
    ConsumerGroupHeartbeat => consumer_group_heartbeat, 0..=1;
    DescribeAcls => describe_acls, 1..=3;
    CreateAcls => create_acls, 1..=3;
    DeleteAcls => delete_acls, 1..=3;
    WriteTxnMarkers => write_txn_markers, 1..=1;
    DescribeProducers => describe_producers, 0..=0;
    DescribeTransactions => describe_transactions, 0..=0;
    ListTransactions => list_transactions, 0..=2;
    SaslHandshake => sasl_handshake, 0..=1;
    SaslAuthenticate => sasl_authenticate, 0..=2;
    DescribeUserScramCredentials => describe_user_scram_credentials, 0..=0;
    AlterUserScramCredentials => alter_user_scram_credentials, 0..=0;
    GetTelemetrySubscriptions => get_telemetry_subscriptions, 0..=0;
    PushTelemetry => push_telemetry, 0..=0;
    DescribeTopicPartitions => describe_topic_partitions, 0..=0;
    ElectLeaders => elect_leaders, 0..=2;
    ListPartitionReassignments => list_partition_reassignments, 0..=0;
    AlterPartitionReassignments => alter_partition_reassignments, 0..=1;
    DescribeClientQuotas => describe_client_quotas, 0..=1;
    AlterClientQuotas => alter_client_quotas, 0..=1;
    ConsumerGroupDescribe => consumer_group_describe, 0..=1;
    DescribeLogDirs => describe_log_dirs, 1..=4;
    AlterReplicaLogDirs => alter_replica_log_dirs, 1..=2;
}

/// The outcome of a request that gets no response: nothing, unless it failed. A client that
/// sent acks=0 learns of a failed produce only from the connection closing, as with Kafka.
fn unanswered_outcome<T: std::any::Any>(
    api: ApiKey,
    resp: &T,
) -> Result<Option<Response>, DispatchError> {
    let failed = (resp as &dyn std::any::Any)
        .downcast_ref::<kafka_protocol::messages::ProduceResponse>()
        .and_then(|r| {
            r.responses.iter().find_map(|t| {
                t.partition_responses
                    .iter()
                    .find(|p| p.error_code != 0)
                    .map(|p| {
                        format!(
                            "{}-{} error code {}",
                            t.name.0.as_str(),
                            p.index,
                            p.error_code
                        )
                    })
            })
        });
    match failed {
        None => Ok(None),
        Some(reason) => Err(DispatchError::UnansweredFailure { api, reason }),
    }
}

/// False for requests the client expects no answer to: Produce with acks=0.
fn expects_response<T: std::any::Any>(req: &T) -> bool {
    (req as &dyn std::any::Any)
        .downcast_ref::<kafka_protocol::messages::ProduceRequest>()
        .is_none_or(|p| p.acks != 0)
}

/// The advertised version range of `api`, if implemented.
pub fn supported_versions(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|&(_, min, max)| (min, max))
}

/// Encodes a response header plus body for the request in `ctx`.
pub fn encode_response<R>(
    ctx: &RequestContext,
    api: ApiKey,
    resp: &R,
) -> Result<BytesMut, DispatchError>
where
    R: Encodable + HeaderVersion + Message,
{
    encode_response_to(&ctx.header, api, resp)
}

/// Encodes a response header plus body for the request with `request_header` (for answers
/// given before a request reaches a handler, such as SASL exchanges).
pub fn encode_response_to<R>(
    request_header: &kafka_protocol::messages::RequestHeader,
    api: ApiKey,
    resp: &R,
) -> Result<BytesMut, DispatchError>
where
    R: Encodable + HeaderVersion + Message,
{
    let version = request_header.request_api_version;
    let header = ResponseHeader::default().with_correlation_id(request_header.correlation_id);
    let header_version = R::header_version(version);
    let encode_err = |e: anyhow::Error| DispatchError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let size = header.compute_size(header_version).map_err(encode_err)?
        + resp.compute_size(version).map_err(encode_err)?;
    let mut buf = BytesMut::with_capacity(size + 4);
    header
        .encode(&mut buf, header_version)
        .map_err(encode_err)?;
    resp.encode(&mut buf, version).map_err(encode_err)?;
    Ok(buf)
}
