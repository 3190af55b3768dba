//! DescribeProducers (API key 61, v0): the producers a partition knows and the first offset of
//! each one's open transaction, as `kafka-transactions.sh describe-producers` and
//! `find-hanging` use them.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};

use super::RequestContext;
use crate::auth::Operation;

/// Handles a DescribeProducers request: READ on each topic is required, as in Kafka.
pub async fn handle(
    ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let access = ctx.topic_access(Operation::Read, &topic.name);
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    match access.partition(index) {
                        Ok(partition) => {
                            let producers = partition.with_log(|log| log.producers());
                            response.with_active_producers(
                                producers.into_iter().map(producer_state).collect(),
                            )
                        }
                        Err(e) => response.with_error_code(e.code()),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

/// One producer in wire form.
fn producer_state(p: sluice_log::ProducerInfo) -> ProducerState {
    ProducerState::default()
        .with_producer_id(p.producer_id.into())
        .with_producer_epoch(i32::from(p.producer_epoch))
        .with_last_sequence(p.last_sequence)
        .with_last_timestamp(p.last_timestamp)
        .with_coordinator_epoch(p.coordinator_epoch)
        .with_current_txn_start_offset(p.current_txn_start_offset)
}
