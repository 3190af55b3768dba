//! WriteTxnMarkers (API key 27, v1): appends commit or abort markers to partitions. Kafka's
//! coordinators send it to partition leaders; here the coordinator writes its markers itself,
//! and clients send it to end a hanging transaction (`kafka-transactions.sh abort`,
//! `Admin.abortTransaction`).

use kafka_protocol::messages::write_txn_markers_request::WritableTxnMarkerTopic;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::ResponseError;
use sluice_log::{ControlType, TxnMarker};

use super::RequestContext;
use crate::auth::Operation;
use crate::group::{Now, OFFSETS_TOPIC};
use crate::partition::log_error_code;
use crate::state_log::StateLogError;

/// Handles a WriteTxnMarkers request. Needs ALTER (KIP-1037) or CLUSTER_ACTION on the cluster;
/// each partition is answered once its marker is as durable as an `acks=all` produce.
pub async fn handle(ctx: &RequestContext, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let allowed =
        ctx.authorize_cluster(Operation::Alter) || ctx.authorize_cluster(Operation::ClusterAction);
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in &req.markers {
        let marker = TxnMarker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: m.coordinator_epoch,
            control: if m.transaction_result {
                ControlType::Commit
            } else {
                ControlType::Abort
            },
        };
        let topics = futures::future::join_all(
            m.topics
                .iter()
                .map(|t| write_topic(ctx, allowed, t, &marker)),
        )
        .await;
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}

/// Writes `marker` to the partitions of one topic, concurrently so that they share fsyncs.
async fn write_topic(
    ctx: &RequestContext,
    allowed: bool,
    topic: &WritableTxnMarkerTopic,
    marker: &TxnMarker,
) -> WritableTxnMarkerTopicResult {
    let name = topic.name.0.as_str();
    let writes = topic
        .partition_indexes
        .iter()
        .map(|&index| write_partition(ctx, allowed, name, index, marker));
    WritableTxnMarkerTopicResult::default()
        .with_name(topic.name.clone())
        .with_partitions(futures::future::join_all(writes).await)
}

/// Writes `marker` to one partition and waits until it is durable.
async fn write_partition(
    ctx: &RequestContext,
    allowed: bool,
    topic: &str,
    index: i32,
    marker: &TxnMarker,
) -> WritableTxnMarkerPartitionResult {
    let result = if !allowed {
        Err(ResponseError::ClusterAuthorizationFailed)
    } else if topic == OFFSETS_TOPIC {
        write_offsets_marker(ctx, index, marker).await
    } else {
        write_marker(ctx, topic, index, marker).await
    };
    if let Err(e) = result {
        let producer_id = marker.producer_id;
        tracing::debug!(topic, partition = index, producer_id, error = ?e, "marker not written");
    }
    WritableTxnMarkerPartitionResult::default()
        .with_partition_index(index)
        .with_error_code(result.err().map_or(0, |e| e.code()))
}

/// Appends `marker` to a data partition.
async fn write_marker(
    ctx: &RequestContext,
    topic: &str,
    index: i32,
    marker: &TxnMarker,
) -> Result<(), ResponseError> {
    let partition = ctx
        .broker
        .metadata
        .partition(topic, index)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    let offset = partition
        .append_marker(marker, crate::now_ms())
        .map_err(|e| log_error_code(&e))?;
    let (producer_id, control) = (marker.producer_id, marker.control);
    tracing::info!(
        topic,
        partition = index,
        producer_id,
        ?control,
        offset,
        "marker written"
    );
    ctx.broker
        .flusher
        .wait_durable(&partition, offset + 1)
        .await
        .map_err(|_| ResponseError::KafkaStorageError)
}

/// Settles a transaction's offsets in a `__consumer_offsets` partition (the group coordinator
/// writes the marker there).
async fn write_offsets_marker(
    ctx: &RequestContext,
    index: i32,
    marker: &TxnMarker,
) -> Result<(), ResponseError> {
    let durables = ctx
        .broker
        .groups
        .complete_txn(&[index], marker, Now::current())
        .map_err(|e| state_log_error_code(&e))?;
    for durable in durables {
        durable.wait().await.map_err(|e| state_log_error_code(&e))?;
    }
    Ok(())
}

/// The error code for a failed `__consumer_offsets` write.
fn state_log_error_code(e: &StateLogError) -> ResponseError {
    match e {
        StateLogError::Log { source, .. } => log_error_code(source),
        StateLogError::MissingPartition { .. } => ResponseError::UnknownTopicOrPartition,
        StateLogError::Batch { .. } => ResponseError::CorruptMessage,
        StateLogError::Topic { .. } | StateLogError::Sync { .. } => {
            ResponseError::KafkaStorageError
        }
    }
}
