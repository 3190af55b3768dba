//! ConsumerGroupDescribe (API key 69, v0-1; KIP-848): the consumer-protocol groups with their
//! epochs, members, owned and target assignments. Classic groups and unknown ids are
//! GROUP_ID_NOT_FOUND, as in Kafka. Needs Describe on each group.

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::auth::{Operation, ResourceType, GROUP_OPERATIONS};
use crate::group::admin::NamedAssignment;

/// The assignor Sluice's coordinator runs: sticky and balanced, like Kafka's `uniform`.
const ASSIGNOR: &str = "uniform";
/// `member_type` of a member that joined with the consumer protocol.
const CONSUMER_MEMBER: i8 = 1;

/// Handles a ConsumerGroupDescribe request.
pub async fn handle(
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let groups = req
        .group_ids
        .iter()
        .map(|id| {
            let group_id = id.0.as_str();
            let described = DescribedGroup::default().with_group_id(id.clone());
            if let Err(error) = ctx.authorize_group(Operation::Describe, group_id) {
                return described.with_error_code(error.code());
            }
            match ctx.broker.groups.describe_consumer_group(group_id) {
                Err((error, message)) => described
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
                Ok(group) => {
                    let mut described = described
                        .with_group_state(StrBytes::from_static_str(group.state))
                        .with_group_epoch(group.epoch)
                        .with_assignment_epoch(group.assignment_epoch)
                        .with_assignor_name(StrBytes::from_static_str(ASSIGNOR))
                        .with_members(
                            group
                                .members
                                .into_iter()
                                .map(|m| {
                                    Member::default()
                                        .with_member_id(StrBytes::from_string(m.member_id))
                                        .with_instance_id(m.instance_id.map(StrBytes::from_string))
                                        .with_member_epoch(m.epoch)
                                        .with_client_id(StrBytes::from_string(m.client_id))
                                        .with_client_host(StrBytes::from_string(m.client_host))
                                        .with_subscribed_topic_names(
                                            m.subscribed
                                                .into_iter()
                                                .map(|t| TopicName(StrBytes::from_string(t)))
                                                .collect(),
                                        )
                                        .with_assignment(wire(m.assignment))
                                        .with_target_assignment(wire(m.target))
                                        .with_member_type(CONSUMER_MEMBER)
                                })
                                .collect(),
                        );
                    if req.include_authorized_operations {
                        described.authorized_operations = ctx.authorized_operations(
                            ResourceType::Group,
                            group_id,
                            GROUP_OPERATIONS,
                        );
                    }
                    described
                }
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

fn wire(assignment: NamedAssignment) -> Assignment {
    Assignment::default().with_topic_partitions(
        assignment
            .into_iter()
            .map(|((id, name), partitions)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect(),
    )
}
