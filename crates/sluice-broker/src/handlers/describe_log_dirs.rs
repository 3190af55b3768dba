//! DescribeLogDirs (API key 35, v1-4): the broker's log directory (its data directory), the
//! size of each partition stored there, and the file system's total and usable bytes. Needs
//! Describe on the cluster. All partitions when `topics` is null; unknown topics and
//! partitions are left out, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::Operation;
use crate::meta::Topic;

/// Handles a DescribeLogDirs request.
pub async fn handle(ctx: &RequestContext, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    if !ctx.authorize_cluster(Operation::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let metadata = &ctx.broker.metadata;
    let describe = |topic: &Topic, wanted: Option<&[i32]>| {
        let partitions = topic
            .partitions
            .iter()
            .filter(|p| wanted.is_none_or(|w| w.contains(&p.index)))
            .map(|p| {
                let size = p.with_log(|log| log.size_bytes());
                DescribeLogDirsPartition::default()
                    .with_partition_index(p.index)
                    .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
            })
            .collect();
        DescribeLogDirsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
            .with_partitions(partitions)
    };
    let topics: Vec<DescribeLogDirsTopic> = match &req.topics {
        None => metadata
            .topics()
            .iter()
            .map(|t| describe(t, None))
            .collect(),
        Some(wanted) => wanted
            .iter()
            .filter_map(|w| {
                let topic = metadata.topic(w.topic.0.as_str())?;
                Some(describe(&topic, Some(&w.partitions)))
            })
            .filter(|t| !t.partitions.is_empty())
            .collect(),
    };
    let dir = metadata.data_dir();
    let (total, usable) = crate::meta::disk::space(dir).map_or((-1, -1), |(t, u)| {
        (
            i64::try_from(t).unwrap_or(i64::MAX),
            i64::try_from(u).unwrap_or(i64::MAX),
        )
    });
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(absolute.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable)])
}
