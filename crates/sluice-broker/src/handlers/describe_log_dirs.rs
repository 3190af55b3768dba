//! DescribeLogDirs (API key 35, v1-4): every log directory with the size of each partition
//! stored there, the copies AlterReplicaLogDirs is making into it (`is_future_key`, with how
//! far they lag), and the file system's total and usable bytes. Needs Describe on the cluster.
//! All partitions when `topics` is null; unknown topics and partitions are left out, as Kafka
//! does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::Operation;

/// Partitions of one log directory, by topic.
type DirContents = BTreeMap<String, Vec<DescribeLogDirsPartition>>;

/// Handles a DescribeLogDirs request.
pub async fn handle(ctx: &RequestContext, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    if !ctx.authorize_cluster(Operation::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let metadata = &ctx.broker.metadata;
    // A topic named twice asks for the union of its partitions, as in Kafka.
    let wanted: Option<HashMap<&str, HashSet<i32>>> = req.topics.as_ref().map(|topics| {
        let mut wanted: HashMap<&str, HashSet<i32>> = HashMap::new();
        for t in topics {
            wanted
                .entry(t.topic.0.as_str())
                .or_default()
                .extend(&t.partitions);
        }
        wanted
    });
    let is_wanted = |topic: &str, partition: i32| match &wanted {
        None => true,
        Some(w) => w.get(topic).is_some_and(|ps| ps.contains(&partition)),
    };
    let mut contents: HashMap<PathBuf, DirContents> = metadata
        .log_dirs()
        .dirs()
        .iter()
        .map(|d| (d.clone(), DirContents::new()))
        .collect();
    metadata.for_each_stored(is_wanted, |topic, index, log_dir, size| {
        push(
            &mut contents,
            log_dir,
            topic,
            partition(index, size, 0, false),
        );
    });
    for m in metadata.moves() {
        if is_wanted(&m.topic, m.partition) {
            let entry = partition(m.partition, m.copied_bytes, m.offset_lag, true);
            push(&mut contents, &m.log_dir, &m.topic, entry);
        }
    }
    // In configured order.
    let results = metadata
        .log_dirs()
        .dirs()
        .iter()
        .map(|dir| describe_dir(dir, contents.remove(dir).unwrap_or_default()))
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

fn partition(index: i32, size: u64, offset_lag: i64, future: bool) -> DescribeLogDirsPartition {
    DescribeLogDirsPartition::default()
        .with_partition_index(index)
        .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
        .with_offset_lag(offset_lag)
        .with_is_future_key(future)
}

fn push(
    contents: &mut HashMap<PathBuf, DirContents>,
    log_dir: &Path,
    topic: &str,
    entry: DescribeLogDirsPartition,
) {
    if let Some(dir) = contents.get_mut(log_dir) {
        dir.entry(topic.to_owned()).or_default().push(entry);
    }
}

/// One directory's result; a directory whose file system cannot be read is reported with
/// KAFKA_STORAGE_ERROR, as Kafka reports an offline directory.
fn describe_dir(dir: &Path, topics: DirContents) -> DescribeLogDirsResult {
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    match crate::meta::disk::space(dir) {
        Some((total, usable)) => result
            .with_total_bytes(i64::try_from(total).unwrap_or(i64::MAX))
            .with_usable_bytes(i64::try_from(usable).unwrap_or(i64::MAX)),
        None => result
            .with_error_code(ResponseError::KafkaStorageError.code())
            .with_total_bytes(-1)
            .with_usable_bytes(-1),
    }
}
