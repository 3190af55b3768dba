//! Membership in a Kafka group with a protocol of one's own (Kafka Connect's `connect`,
//! the schema registry's `sr`): JoinGroup, SyncGroup, Heartbeat and LeaveGroup against the
//! group's coordinator. The coordinator detects members that stop heartbeating; the leader it
//! elects computes every member's assignment, which is opaque bytes to Kafka.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::AdminConnection;
use crate::error::{check, error_name};
use crate::{AdminConfig, AdminError};

const FIND_COORDINATOR_VERSION: i16 = 3;
const JOIN_GROUP_VERSION: i16 = 5;
const SYNC_GROUP_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const LEAVE_GROUP_VERSION: i16 = 3;

const MEMBER_ID_REQUIRED: i16 = 79;
const REBALANCE_IN_PROGRESS: i16 = 27;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;

/// A member as the leader sees it at a rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberInfo {
    /// Its member id.
    pub member_id: String,
    /// The metadata it joined with.
    pub metadata: Bytes,
}

/// The outcome of a rebalance for this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The group generation.
    pub generation: i32,
    /// This member's id.
    pub member_id: String,
    /// What the leader assigned this member.
    pub assignment: Bytes,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// Still a member of the current generation.
    Stable,
    /// The group is rebalancing (a member joined or left): join again.
    Rebalance,
}

/// Group timing, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct GroupTimeouts {
    /// Without a heartbeat for this long a member is removed.
    pub session_ms: i32,
    /// How long the coordinator waits for members to rejoin at a rebalance.
    pub rebalance_ms: i32,
}

/// The leader's rule: every member's assignment (member id, bytes) from the members.
pub type Assignor = dyn Fn(&[GroupMemberInfo]) -> Vec<(String, Bytes)> + Send + Sync;

/// This process's membership in one group.
pub struct GroupMember {
    conn: AdminConnection,
    group: String,
    protocol_type: String,
    protocol: String,
    metadata: Bytes,
    timeouts: GroupTimeouts,
    member_id: String,
    generation: i32,
}

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_owned()))
}

impl GroupMember {
    /// Connects to the coordinator of `group`; [`GroupMember::join`] then makes it a member.
    pub async fn connect(
        config: &AdminConfig,
        group: &str,
        protocol_type: &str,
        protocol: &str,
        metadata: Bytes,
        timeouts: GroupTimeouts,
    ) -> Result<Self, AdminError> {
        // A JoinGroup answer may take the whole rebalance timeout.
        let config = AdminConfig {
            timeout: config.timeout.max(std::time::Duration::from_millis(
                timeouts.rebalance_ms as u64 + 5_000,
            )),
            ..config.clone()
        };
        let mut bootstrap = AdminConnection::connect(&config).await?;
        let response = bootstrap
            .request(
                &FindCoordinatorRequest::default()
                    .with_key(StrBytes::from_string(group.to_owned()))
                    .with_key_type(0),
                FIND_COORDINATOR_VERSION,
            )
            .await?;
        check(response.error_code, response.error_message.as_ref(), || {
            format!("finding the coordinator of group {group}")
        })?;
        let address = format!("{}:{}", response.host.as_str(), response.port);
        let conn = match AdminConnection::connect(&AdminConfig {
            bootstrap: address,
            ..config.clone()
        })
        .await
        {
            Ok(c) => c,
            // A single broker may advertise an address this process cannot reach (a
            // container's name): the bootstrap connection is that broker.
            Err(_) => bootstrap,
        };
        Ok(Self {
            conn,
            group: group.to_owned(),
            protocol_type: protocol_type.to_owned(),
            protocol: protocol.to_owned(),
            metadata,
            timeouts,
            member_id: String::new(),
            generation: -1,
        })
    }

    /// Joins (or rejoins) the group and waits for the rebalance to finish. When this member is
    /// elected leader, `assign` computes every member's assignment.
    pub async fn join(&mut self, assign: &Assignor) -> Result<Membership, AdminError> {
        loop {
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_session_timeout_ms(self.timeouts.session_ms)
                .with_rebalance_timeout_ms(self.timeouts.rebalance_ms)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_string(self.protocol_type.clone()))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_string(self.protocol.clone()))
                    .with_metadata(self.metadata.clone())]);
            let response = self.conn.request(&request, JOIN_GROUP_VERSION).await?;
            match response.error_code {
                0 => {}
                MEMBER_ID_REQUIRED => {
                    self.member_id = response.member_id.to_string();
                    continue;
                }
                UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                    self.member_id.clear();
                    continue;
                }
                code => {
                    return Err(AdminError::Broker {
                        what: format!("joining group {}", self.group),
                        error: error_name(code),
                        detail: String::new(),
                    })
                }
            }
            self.member_id = response.member_id.to_string();
            self.generation = response.generation_id;
            let assignments = if response.leader == response.member_id {
                let members: Vec<GroupMemberInfo> = response
                    .members
                    .iter()
                    .map(|m| GroupMemberInfo {
                        member_id: m.member_id.to_string(),
                        metadata: m.metadata.clone(),
                    })
                    .collect();
                assign(&members)
                    .into_iter()
                    .map(|(member, bytes)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(member))
                            .with_assignment(bytes)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let sync = SyncGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_generation_id(self.generation)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_assignments(assignments);
            let response = self.conn.request(&sync, SYNC_GROUP_VERSION).await?;
            match response.error_code {
                0 => {
                    return Ok(Membership {
                        generation: self.generation,
                        member_id: self.member_id.clone(),
                        assignment: response.assignment,
                    })
                }
                // Another member joined meanwhile: go round again.
                REBALANCE_IN_PROGRESS => continue,
                UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                    self.member_id.clear();
                    continue;
                }
                code => {
                    return Err(AdminError::Broker {
                        what: format!("syncing group {}", self.group),
                        error: error_name(code),
                        detail: String::new(),
                    })
                }
            }
        }
    }

    /// Tells the coordinator this member is alive.
    pub async fn heartbeat(&mut self) -> Result<Heartbeat, AdminError> {
        let request = HeartbeatRequest::default()
            .with_group_id(group_id(&self.group))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let response = self.conn.request(&request, HEARTBEAT_VERSION).await?;
        match response.error_code {
            0 => Ok(Heartbeat::Stable),
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => Ok(Heartbeat::Rebalance),
            UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                Ok(Heartbeat::Rebalance)
            }
            code => Err(AdminError::Broker {
                what: format!("heartbeat to group {}", self.group),
                error: error_name(code),
                detail: String::new(),
            }),
        }
    }

    /// Leaves the group, so the others rebalance at once instead of after the session
    /// timeout.
    pub async fn leave(mut self) -> Result<(), AdminError> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let request = LeaveGroupRequest::default()
            .with_group_id(group_id(&self.group))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(StrBytes::from_string(self.member_id.clone()))]);
        let response = self.conn.request(&request, LEAVE_GROUP_VERSION).await?;
        check(response.error_code, None, || {
            format!("leaving group {}", self.group)
        })
    }
}
