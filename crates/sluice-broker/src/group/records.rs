//! Kafka's internal record formats of the `__consumer_offsets` topic.
//!
//! Sluice writes exactly what Apache Kafka writes (offset commit key v1 / value v3, group
//! metadata key v2 / value v3), so lag monitors that read the topic directly understand it.
//! Decoders accept every older value version too, and the flexible versions (offset commit
//! value v4, group metadata value v4) that newer Kafka releases write.

use bytes::{BufMut, Bytes, BytesMut};

use crate::state_log::format::{
    get_compact_str, get_i16, get_i32, get_i64, get_str, len_i32, put_bytes, put_nullable_str,
    put_str, Reader, RecordFormatError,
};

type Result<T> = std::result::Result<T, RecordFormatError>;

/// Key version Kafka uses for offset commits (version 0 has the same layout).
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version Kafka uses for group metadata.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Offset commit value version written (no expire timestamp, with leader epoch).
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Group metadata value version written (static membership fields).
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsKey {
    /// A committed offset of one partition for one group.
    OffsetCommit {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: i32,
    },
    /// A group's membership snapshot.
    GroupMetadata {
        /// Group id.
        group: String,
    },
}

impl OffsetsKey {
    /// The group this record belongs to.
    pub fn group(&self) -> &str {
        match self {
            OffsetsKey::OffsetCommit { group, .. } | OffsetsKey::GroupMetadata { group } => group,
        }
    }

    /// Encodes the key in Kafka's format.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        match self {
            OffsetsKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_str(&mut buf, group);
                put_str(&mut buf, topic);
                buf.put_i32(*partition);
            }
            OffsetsKey::GroupMetadata { group } => {
                buf.put_i16(GROUP_METADATA_KEY_VERSION);
                put_str(&mut buf, group);
            }
        }
        buf.freeze()
    }

    /// Decodes a key; `Ok(None)` for key versions that are not ours to interpret (Kafka 4's
    /// share-group and consumer-group records use versions 3 and up).
    pub fn decode(mut buf: &[u8]) -> Result<Option<Self>> {
        let version = get_i16(&mut buf, "key version")?;
        match version {
            0 | 1 => Ok(Some(OffsetsKey::OffsetCommit {
                group: get_str(&mut buf, "group")?,
                topic: get_str(&mut buf, "topic")?,
                partition: get_i32(&mut buf, "partition")?,
            })),
            2 => Ok(Some(OffsetsKey::GroupMetadata {
                group: get_str(&mut buf, "group")?,
            })),
            v if v > 2 => Ok(None),
            v => Err(RecordFormatError::UnknownVersion {
                kind: "key",
                version: v,
            }),
        }
    }
}

/// The value of an offset commit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The committed offset.
    pub offset: i64,
    /// Leader epoch of the committed offset, or -1.
    pub leader_epoch: i32,
    /// Client-supplied metadata string.
    pub metadata: String,
    /// When the commit happened (ms since the epoch).
    pub commit_timestamp: i64,
}

impl OffsetCommitValue {
    /// Encodes the value as version 3.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(26 + self.metadata.len());
        buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
        buf.put_i64(self.offset);
        buf.put_i32(self.leader_epoch);
        put_str(&mut buf, &self.metadata);
        buf.put_i64(self.commit_timestamp);
        buf.freeze()
    }

    /// Decodes any version 0-4.
    pub fn decode(mut buf: &[u8]) -> Result<Self> {
        let version = get_i16(&mut buf, "value version")?;
        let flexible = version >= 4;
        let offset = get_i64(&mut buf, "offset")?;
        let leader_epoch = if version >= 3 {
            get_i32(&mut buf, "leader epoch")?
        } else {
            -1
        };
        let metadata = if flexible {
            get_compact_str(&mut buf, "metadata")?
        } else {
            get_str(&mut buf, "metadata")?
        };
        let commit_timestamp = get_i64(&mut buf, "commit timestamp")?;
        match version {
            0..=4 => Ok(OffsetCommitValue {
                offset,
                leader_epoch,
                metadata,
                commit_timestamp,
            }),
            v => Err(RecordFormatError::UnknownVersion {
                kind: "offset commit value",
                version: v,
            }),
        }
    }
}

/// One member inside a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    /// Member id assigned by the coordinator.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address as Kafka prints it (`/127.0.0.1`).
    pub client_host: String,
    /// Rebalance timeout in ms.
    pub rebalance_timeout: i32,
    /// Session timeout in ms.
    pub session_timeout: i32,
    /// The member's metadata for the selected protocol.
    pub subscription: Bytes,
    /// The assignment the leader gave the member.
    pub assignment: Bytes,
}

/// The value of a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// Protocol type, `consumer` for consumers.
    pub protocol_type: String,
    /// Generation id.
    pub generation: i32,
    /// Selected protocol (assignor), if any.
    pub protocol: Option<String>,
    /// Leader member id, if any.
    pub leader: Option<String>,
    /// When the group entered its current state (ms since the epoch), -1 if unknown.
    pub current_state_timestamp: i64,
    /// Members of the current generation.
    pub members: Vec<MemberMetadataValue>,
}

impl GroupMetadataValue {
    /// Encodes the value as version 3.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(GROUP_METADATA_VALUE_VERSION);
        put_str(&mut buf, &self.protocol_type);
        buf.put_i32(self.generation);
        put_nullable_str(&mut buf, self.protocol.as_deref());
        put_nullable_str(&mut buf, self.leader.as_deref());
        buf.put_i64(self.current_state_timestamp);
        buf.put_i32(len_i32(self.members.len()));
        for m in &self.members {
            put_str(&mut buf, &m.member_id);
            put_nullable_str(&mut buf, m.group_instance_id.as_deref());
            put_str(&mut buf, &m.client_id);
            put_str(&mut buf, &m.client_host);
            buf.put_i32(m.rebalance_timeout);
            buf.put_i32(m.session_timeout);
            put_bytes(&mut buf, &m.subscription);
            put_bytes(&mut buf, &m.assignment);
        }
        buf.freeze()
    }

    /// Decodes any version 0-4.
    pub fn decode(mut buf: &[u8]) -> Result<Self> {
        let version = get_i16(&mut buf, "value version")?;
        if !(0..=4).contains(&version) {
            return Err(RecordFormatError::UnknownVersion {
                kind: "group metadata value",
                version,
            });
        }
        let mut r = Reader {
            buf,
            flexible: version >= 4,
        };
        let protocol_type = r.str("protocol type")?;
        let generation = get_i32(&mut r.buf, "generation")?;
        let protocol = r.nullable_str("protocol")?;
        let leader = r.nullable_str("leader")?;
        let current_state_timestamp = if version >= 2 {
            get_i64(&mut r.buf, "current state timestamp")?
        } else {
            -1
        };
        let count = r.array_len("members")?;
        let mut members = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let member_id = r.str("member id")?;
            let group_instance_id = if version >= 3 {
                r.nullable_str("group instance id")?
            } else {
                None
            };
            let client_id = r.str("client id")?;
            let client_host = r.str("client host")?;
            // Version 0 had one timeout for both, as Kafka reads it.
            let rebalance_timeout = if version >= 1 {
                Some(get_i32(&mut r.buf, "rebalance timeout")?)
            } else {
                None
            };
            let session_timeout = get_i32(&mut r.buf, "session timeout")?;
            let subscription = r.bytes("subscription")?;
            let assignment = r.bytes("assignment")?;
            r.skip_tags()?;
            members.push(MemberMetadataValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout: rebalance_timeout.unwrap_or(session_timeout),
                session_timeout,
                subscription,
                assignment,
            });
        }
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn java_hash_matches_known_values() {
        use crate::state_log::format::{java_string_hash, partition_for};
        // Values computed with Java's "...".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
    }

    #[test]
    fn offset_commit_key_layout_is_kafkas() {
        let key = OffsetsKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        assert_eq!(
            key.encode().as_ref(),
            &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]
        );
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 7,
        };
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        expected.extend_from_slice(&[0, 0]);
        expected.extend_from_slice(&7i64.to_be_bytes());
        assert_eq!(value.encode().as_ref(), expected.as_slice());
    }

    #[test]
    fn decodes_offset_commit_value_v1_with_expire_timestamp() {
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        buf.put_i64(5);
        put_str(&mut buf, "m");
        buf.put_i64(100);
        buf.put_i64(200);
        let value = OffsetCommitValue::decode(&buf).expect("v1 decodes");
        assert_eq!(value.offset, 5);
        assert_eq!(value.leader_epoch, -1);
        assert_eq!(value.metadata, "m");
        assert_eq!(value.commit_timestamp, 100);
    }

    #[test]
    fn decodes_flexible_versions_written_by_newer_kafka() {
        let mut buf = BytesMut::new();
        buf.put_i16(4);
        buf.put_i64(9);
        buf.put_i32(3);
        buf.put_u8(3); // compact string "ab": length + 1
        buf.put_slice(b"ab");
        buf.put_i64(77);
        buf.put_u8(0); // no tagged fields
        let value = OffsetCommitValue::decode(&buf).expect("v4 decodes");
        assert_eq!(
            (
                value.offset,
                value.leader_epoch,
                value.metadata.as_str(),
                value.commit_timestamp
            ),
            (9, 3, "ab", 77)
        );

        let mut buf = BytesMut::new();
        buf.put_i16(4);
        buf.put_u8(9);
        buf.put_slice(b"consumer");
        buf.put_i32(5);
        buf.put_u8(6);
        buf.put_slice(b"range");
        buf.put_u8(0); // null leader
        buf.put_i64(1234);
        buf.put_u8(2); // one member
        buf.put_u8(4);
        buf.put_slice(b"m-1");
        buf.put_u8(0); // null instance id
        buf.put_u8(2);
        buf.put_slice(b"c");
        buf.put_u8(3);
        buf.put_slice(b"/h");
        buf.put_i32(100);
        buf.put_i32(200);
        buf.put_u8(2);
        buf.put_slice(b"s");
        buf.put_u8(2);
        buf.put_slice(b"a");
        buf.put_u8(1); // one tagged field, skipped
        buf.put_u8(7);
        buf.put_u8(1);
        buf.put_u8(0xaa);
        let value = GroupMetadataValue::decode(&buf).expect("v4 decodes");
        assert_eq!(value.protocol.as_deref(), Some("range"));
        assert_eq!(value.leader, None);
        assert_eq!(value.current_state_timestamp, 1234);
        assert_eq!(value.members.len(), 1);
        assert_eq!(value.members[0].member_id, "m-1");
        assert_eq!(
            (
                value.members[0].rebalance_timeout,
                value.members[0].session_timeout
            ),
            (100, 200)
        );
        assert_eq!(value.members[0].assignment, Bytes::from_static(b"a"));
    }

    #[test]
    fn unknown_key_versions_are_skipped_not_errors() {
        assert_eq!(OffsetsKey::decode(&[0, 11, 0, 0]), Ok(None));
        assert!(OffsetsKey::decode(&[0xff, 0xff]).is_err());
        assert!(OffsetsKey::decode(&[0]).is_err());
    }

    fn arb_member() -> impl Strategy<Value = MemberMetadataValue> {
        (
            "[a-z0-9-]{0,20}",
            proptest::option::of("[a-z]{0,8}"),
            ".{0,10}",
            any::<i32>(),
            any::<i32>(),
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(member_id, iid, client_id, rt, st, sub, asg)| {
                MemberMetadataValue {
                    member_id,
                    group_instance_id: iid,
                    client_id,
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout: rt,
                    session_timeout: st,
                    subscription: Bytes::from(sub),
                    assignment: Bytes::from(asg),
                }
            })
    }

    proptest! {
        #[test]
        fn keys_round_trip(group in ".{0,30}", topic in ".{0,30}", partition in any::<i32>()) {
            let key = OffsetsKey::OffsetCommit { group: group.clone(), topic, partition };
            prop_assert_eq!(OffsetsKey::decode(&key.encode()), Ok(Some(key)));
            let key = OffsetsKey::GroupMetadata { group };
            prop_assert_eq!(OffsetsKey::decode(&key.encode()), Ok(Some(key)));
        }

        #[test]
        fn offset_values_round_trip(offset in any::<i64>(), epoch in any::<i32>(),
                                    metadata in ".{0,50}", ts in any::<i64>()) {
            let value = OffsetCommitValue { offset, leader_epoch: epoch, metadata, commit_timestamp: ts };
            prop_assert_eq!(OffsetCommitValue::decode(&value.encode()), Ok(value));
        }

        #[test]
        fn group_values_round_trip(protocol_type in "[a-z]{0,10}", generation in any::<i32>(),
                                   protocol in proptest::option::of("[a-z-]{1,20}"),
                                   leader in proptest::option::of("[a-z0-9-]{1,20}"),
                                   ts in any::<i64>(),
                                   members in proptest::collection::vec(arb_member(), 0..5)) {
            let value = GroupMetadataValue { protocol_type, generation, protocol, leader,
                                             current_state_timestamp: ts, members };
            prop_assert_eq!(GroupMetadataValue::decode(&value.encode()), Ok(value));
        }

        #[test]
        fn decoders_never_panic_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = OffsetsKey::decode(&data);
            let _ = OffsetCommitValue::decode(&data);
            let _ = GroupMetadataValue::decode(&data);
        }

        #[test]
        fn decoders_reject_truncations(cut in 0usize..60) {
            let value = GroupMetadataValue {
                protocol_type: "consumer".into(), generation: 3, protocol: Some("range".into()),
                leader: Some("m-1".into()), current_state_timestamp: 9,
                members: vec![MemberMetadataValue { member_id: "m-1".into(), group_instance_id: None,
                    client_id: "c".into(), client_host: "/h".into(), rebalance_timeout: 1,
                    session_timeout: 2, subscription: Bytes::from_static(b"s"),
                    assignment: Bytes::from_static(b"a") }],
            };
            let encoded = value.encode();
            prop_assume!(cut < encoded.len());
            prop_assert!(GroupMetadataValue::decode(&encoded[..cut]).is_err());
        }
    }
}
