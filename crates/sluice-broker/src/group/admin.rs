//! Group administration: DescribeGroups, ConsumerGroupDescribe, ListGroups, DeleteGroups.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::model::GroupState;
use super::records::OffsetsKey;
use super::{Coordinator, Now};
use crate::state_log::KeyValue;

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Metadata for the selected protocol (only while Stable, as Kafka).
    pub metadata: Bytes,
    /// Current assignment (only while Stable, as Kafka).
    pub assignment: Bytes,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Kafka's state name; `Dead` for unknown groups.
    pub state: &'static str,
    /// Protocol type, empty if unknown.
    pub protocol_type: String,
    /// Selected protocol, empty unless Stable.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type, empty if the group only stores offsets.
    pub protocol_type: String,
    /// Kafka's state name.
    pub state: &'static str,
    /// `classic`, or `consumer` for KIP-848 groups.
    pub group_type: &'static str,
}

/// Partitions by topic `(id, name)`, for ConsumerGroupDescribe.
pub type NamedAssignment = Vec<((uuid::Uuid, String), Vec<i32>)>;

/// A member of a consumer-protocol (KIP-848) group as ConsumerGroupDescribe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The member's epoch.
    pub epoch: i32,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed: Vec<String>,
    /// Partitions the member owns.
    pub assignment: NamedAssignment,
    /// Partitions the member is to own.
    pub target: NamedAssignment,
}

/// A consumer-protocol group as ConsumerGroupDescribe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// Kafka's state name (`Empty`, `Assigning`, `Reconciling`, `Stable`).
    pub state: &'static str,
    /// The group epoch.
    pub epoch: i32,
    /// The epoch of the target assignment.
    pub assignment_epoch: i32,
    /// Members.
    pub members: Vec<ConsumerMemberDescription>,
}

impl Coordinator {
    /// ConsumerGroupDescribe for one group: `GROUP_ID_NOT_FOUND` for unknown groups and for
    /// classic ones, as Kafka answers.
    pub fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, (ResponseError, String)> {
        let groups = self.groups.lock();
        let group = groups.get(group_id).ok_or_else(|| {
            (
                ResponseError::GroupIdNotFound,
                format!("group {group_id} not found"),
            )
        })?;
        let Some(cg) = group.consumer.as_ref() else {
            return Err((
                ResponseError::GroupIdNotFound,
                format!("group {group_id} is not a consumer group"),
            ));
        };
        let names: std::collections::BTreeMap<uuid::Uuid, &str> = cg
            .topics
            .iter()
            .map(|(name, (id, _))| (*id, name.as_str()))
            .collect();
        let named = |assignment: &super::consumer::Assignment| -> NamedAssignment {
            assignment
                .iter()
                .map(|(id, partitions)| {
                    let name = names.get(id).copied().unwrap_or_default().to_owned();
                    ((*id, name), partitions.iter().copied().collect())
                })
                .collect()
        };
        Ok(ConsumerGroupDescription {
            state: cg.state(),
            epoch: cg.epoch,
            assignment_epoch: cg.assignment_epoch,
            members: cg
                .members
                .values()
                .map(|m| ConsumerMemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed: m.subscribed.iter().cloned().collect(),
                    assignment: named(&m.assigned),
                    target: cg.target.get(&m.member_id).map(&named).unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// DescribeGroups for one group.
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let groups = self.groups.lock();
        let Some(group) = groups.get(group_id) else {
            return GroupDescription {
                group_id: group_id.to_owned(),
                state: GroupState::Dead.as_str(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        };
        if let Some(cg) = group.consumer.as_ref().filter(|c| !c.members.is_empty()) {
            return GroupDescription {
                group_id: group.id.clone(),
                state: cg.state(),
                protocol_type: "consumer".to_owned(),
                protocol: String::new(),
                members: cg
                    .members
                    .values()
                    .map(|m| MemberDescription {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: Bytes::new(),
                        assignment: cg.classic_assignment(m),
                    })
                    .collect(),
            };
        }
        let stable = group.state == GroupState::Stable;
        let protocol = group.protocol.clone().unwrap_or_default();
        GroupDescription {
            group_id: group.id.clone(),
            state: group.state.as_str(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: group
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }

    /// ListGroups, optionally filtered by state names and group types (case-insensitive, as
    /// Kafka).
    pub fn list(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let matches = |filter: &[String], value: &str| {
            filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
        };
        let groups = self.groups.lock();
        let mut listed: Vec<GroupListing> = groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| {
                let (group_type, state) =
                    match g.consumer.as_ref().filter(|c| !c.members.is_empty()) {
                        Some(c) => ("consumer", c.state()),
                        None => ("classic", g.state.as_str()),
                    };
                GroupListing {
                    group_id: g.id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state,
                    group_type,
                }
            })
            .filter(|g| matches(states, g.state) && matches(types, g.group_type))
            .collect();
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listed
    }

    /// DeleteGroups for one group: only empty groups can be deleted; their offsets and
    /// metadata are tombstoned.
    pub fn delete_group(&self, group_id: &str, now: Now) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        let Some(group) = groups.get(group_id) else {
            return Err(ResponseError::GroupIdNotFound);
        };
        match group.state {
            GroupState::Dead => return Err(ResponseError::GroupIdNotFound),
            GroupState::Empty => {}
            _ => return Err(ResponseError::NonEmptyGroup),
        }
        let mut records: Vec<KeyValue> = group
            .offsets
            .keys()
            .map(|(topic, partition)| {
                let key = OffsetsKey::OffsetCommit {
                    group: group_id.to_owned(),
                    topic: topic.clone(),
                    partition: *partition,
                };
                (key.encode(), None)
            })
            .collect();
        records.push((
            OffsetsKey::GroupMetadata {
                group: group_id.to_owned(),
            }
            .encode(),
            None,
        ));
        let _ = self.write(group_id, &records, now)?;
        groups.remove(group_id);
        tracing::info!(group = group_id, "group deleted");
        Ok(())
    }
}
