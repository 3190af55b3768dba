//! Consumer group APIs against a real broker over TCP, at the oldest and newest versions.

mod support;

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use support::{Client, TestBroker};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

async fn group_broker() -> TestBroker {
    TestBroker::start_with(|c| {
        c.groups.initial_rebalance_delay = Duration::from_millis(50);
        c.groups.offsets_topic_partitions = 5;
    })
    .await
}

async fn create_topic(client: &mut Client, name: &str, partitions: i32) {
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let resp = client.request(&req, 5).await;
    assert_eq!(resp.topics[0].error_code, 0, "create topic {name}");
}

fn join_request(group: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(
                b"\x00\x00\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x00",
            ))])
}

/// Joins `group` as its only member at JoinGroup v9 (two steps) and completes the sync.
async fn join_and_sync(client: &mut Client, group: &str) -> JoinGroupResponse {
    let first = client.request(&join_request(group, ""), 9).await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let member_id = first.member_id.to_string();
    let joined = client.request(&join_request(group, &member_id), 9).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader, joined.member_id);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(joined.member_id.clone())
            .with_assignment(Bytes::from_static(b"assignment"))]);
    let synced = client.request(&sync, 5).await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment, Bytes::from_static(b"assignment"));
    joined
}

fn commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                offsets
                    .iter()
                    .map(|&(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o)
                            .with_committed_metadata(Some(s("meta")))
                    })
                    .collect(),
            )])
}

#[tokio::test]
async fn find_coordinator_single_and_batched() {
    let broker = group_broker().await;
    let mut client = broker.client().await;
    let single = client
        .request(
            &FindCoordinatorRequest::default()
                .with_key(s("g"))
                .with_key_type(0),
            3,
        )
        .await;
    assert_eq!(single.error_code, 0);
    assert_eq!(single.port, i32::from(broker.addr.port()));
    let batched = client
        .request(
            &FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![s("a"), s("b")]),
            4,
        )
        .await;
    assert_eq!(batched.coordinators.len(), 2);
    assert!(batched
        .coordinators
        .iter()
        .all(|c| c.error_code == 0 && c.node_id.0 == 1));
    let txn = client
        .request(
            &FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s("tx")]),
            6,
        )
        .await;
    // This broker coordinates transactions too.
    assert_eq!(txn.coordinators[0].error_code, 0);
    assert_eq!(txn.coordinators[0].port, i32::from(broker.addr.port()));
}

#[tokio::test]
async fn full_group_lifecycle_survives_a_restart() {
    let mut broker = group_broker().await;
    let mut client = broker.client().await;
    create_topic(&mut client, "t", 3).await;
    let joined = join_and_sync(&mut client, "g").await;
    let member_id = joined.member_id.to_string();

    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone());
    assert_eq!(client.request(&hb, 4).await.error_code, 0);

    let commit = commit_request(
        "g",
        joined.generation_id,
        &member_id,
        "t",
        &[(0, 5), (1, 7), (9, 1)],
    );
    let resp = client.request(&commit, 9).await;
    let codes: Vec<(i32, i16)> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (0, 0),
            (1, 0),
            (9, ResponseError::UnknownTopicOrPartition.code())
        ]
    );
    let stale = commit_request("g", joined.generation_id - 1, &member_id, "t", &[(0, 6)]);
    assert_eq!(
        client.request(&stale, 2).await.topics[0].partitions[0].error_code,
        ResponseError::IllegalGeneration.code()
    );
    let simple = commit_request("other", -1, "", "t", &[(2, 3)]);
    assert_eq!(
        client.request(&simple, 9).await.topics[0].partitions[0].error_code,
        0
    );

    // OffsetFetch v9: two groups in one request; null topics means everything committed.
    let fetch = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("other")))
            .with_topics(None),
    ]);
    let fetched = client.request(&fetch, 9).await;
    let summary: Vec<(String, Vec<(i32, i64)>)> = fetched
        .groups
        .iter()
        .map(|g| {
            let parts = g
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (p.partition_index, p.committed_offset))
                })
                .collect();
            (g.group_id.to_string(), parts)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("g".to_owned(), vec![(0, 5), (1, 7)]),
            ("other".to_owned(), vec![(2, 3)])
        ]
    );

    let described = client
        .request(
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("g")), GroupId(s("nope"))]),
            5,
        )
        .await;
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(
        described.groups[0].members[0].member_assignment,
        Bytes::from_static(b"assignment")
    );
    assert_eq!(described.groups[1].group_state.as_str(), "Dead");
    let listed = client
        .request(
            &ListGroupsRequest::default().with_states_filter(vec![s("Stable")]),
            5,
        )
        .await;
    let names: Vec<String> = listed
        .groups
        .iter()
        .map(|g| g.group_id.to_string())
        .collect();
    assert_eq!(names, vec!["g".to_owned()]);

    // A subscribed topic's offsets cannot be deleted; a deleted group's can't be fetched.
    let delete_offsets = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0)
            ])]);
    let resp = client.request(&delete_offsets, 0).await;
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        ResponseError::GroupSubscribedToTopic.code()
    );
    let delete = DeleteGroupsRequest::default()
        .with_groups_names(vec![GroupId(s("g")), GroupId(s("other"))]);
    let resp = client.request(&delete, 2).await;
    assert_eq!(
        resp.results[0].error_code,
        ResponseError::NonEmptyGroup.code()
    );
    assert_eq!(resp.results[1].error_code, 0);

    broker.restart().await;
    let mut client = broker.client().await;
    // The member survives the restart with its generation; OffsetFetch v1 sees the commits.
    assert_eq!(client.request(&hb, 0).await.error_code, 0);
    let fetch_v1 = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0, 1, 2])]));
    let fetched = client.request(&fetch_v1, 1).await;
    let offsets: Vec<i64> = fetched.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(offsets, vec![5, 7, -1]);
    assert_eq!(
        fetched.topics[0].partitions[0].metadata.as_deref(),
        Some("meta")
    );

    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_members(vec![
            MemberIdentity::default().with_member_id(s(&member_id)),
            MemberIdentity::default().with_member_id(s("ghost")),
        ]);
    let left = client.request(&leave, 5).await;
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, ResponseError::UnknownMemberId.code()]);
    let resp = client.request(&delete_offsets, 0).await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    let resp = client
        .request(
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]),
            0,
        )
        .await;
    assert_eq!(resp.results[0].error_code, 0);
    let described = client
        .request(
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("g")), GroupId(s("other"))]),
            0,
        )
        .await;
    assert!(described
        .groups
        .iter()
        .all(|g| g.group_state.as_str() == "Dead"));
    broker.stop().await;
}
