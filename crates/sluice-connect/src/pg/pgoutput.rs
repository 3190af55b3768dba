//! Decoder of the `pgoutput` logical decoding plugin's messages (protocol version 1): what
//! each XLogData of a logical replication stream carries.

use bytes::Bytes;

use super::wire::Reader;
use super::{Lsn, PgError};

/// One column of a relation as pgoutput describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelationColumn {
    /// Part of the replica identity (the key).
    pub(crate) key: bool,
    /// Column name.
    pub(crate) name: String,
    /// Type OID.
    pub(crate) type_oid: u32,
    /// Type modifier, -1 when none.
    pub(crate) type_modifier: i32,
}

/// A table's shape, sent before the first change to it in a session and after each change
/// of its definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relation {
    /// The table's OID.
    pub(crate) id: u32,
    /// Schema name.
    pub(crate) namespace: String,
    /// Table name.
    pub(crate) name: String,
    /// Replica identity: `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub(crate) replica_identity: u8,
    /// Columns in table order.
    pub(crate) columns: Vec<RelationColumn>,
}

/// One column's value in a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TupleValue {
    /// SQL NULL.
    Null,
    /// A TOASTed value that did not change (its content is not sent).
    UnchangedToast,
    /// The value in text format.
    Text(Bytes),
    /// The value in binary format (not requested by this client).
    Binary(Bytes),
}

/// A decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogicalMessage {
    /// A transaction starts.
    Begin {
        /// LSN of the transaction's commit record.
        final_lsn: Lsn,
        /// Commit time, µs since 2000-01-01.
        commit_time: i64,
        /// Transaction id.
        xid: u32,
    },
    /// The transaction committed.
    Commit {
        /// LSN of the commit record.
        commit_lsn: Lsn,
        /// LSN just after it: where streaming resumes.
        end_lsn: Lsn,
        /// Commit time, µs since 2000-01-01.
        commit_time: i64,
    },
    /// A table's definition.
    Relation(Relation),
    /// A row was inserted.
    Insert {
        /// Table OID.
        relation: u32,
        /// The new row.
        new: Vec<TupleValue>,
    },
    /// A row was updated.
    Update {
        /// Table OID.
        relation: u32,
        /// The old row: key columns only (`K`) or all columns with REPLICA IDENTITY FULL (`O`);
        /// absent when the key did not change under the default identity.
        old: Option<(u8, Vec<TupleValue>)>,
        /// The new row.
        new: Vec<TupleValue>,
    },
    /// A row was deleted.
    Delete {
        /// Table OID.
        relation: u32,
        /// The old row: key columns (`K`) or all columns (`O`).
        old: (u8, Vec<TupleValue>),
    },
    /// Tables were truncated.
    Truncate {
        /// Table OIDs.
        relations: Vec<u32>,
    },
    /// Anything else (origin, type, logical message): not needed for change events.
    Other(u8),
}

/// Decodes one message.
pub(crate) fn decode(data: Bytes) -> Result<LogicalMessage, PgError> {
    let mut r = Reader::new(data);
    let kind = r.u8("message kind")?;
    Ok(match kind {
        b'B' => LogicalMessage::Begin {
            final_lsn: Lsn(r.u64("final LSN")?),
            commit_time: r.i64("commit time")?,
            xid: r.u32("xid")?,
        },
        b'C' => {
            let _flags = r.u8("commit flags")?;
            LogicalMessage::Commit {
                commit_lsn: Lsn(r.u64("commit LSN")?),
                end_lsn: Lsn(r.u64("end LSN")?),
                commit_time: r.i64("commit time")?,
            }
        }
        b'R' => {
            let id = r.u32("relation id")?;
            let namespace = r.cstr("namespace")?;
            let name = r.cstr("relation name")?;
            let replica_identity = r.u8("replica identity")?;
            let count = count(r.i16("column count")?)?;
            // At least 10 bytes per column: capacity bounded by what the message holds.
            let mut columns = Vec::with_capacity(count.min(r.remaining() / 10));
            for _ in 0..count {
                columns.push(RelationColumn {
                    key: r.u8("column flags")? & 1 == 1,
                    name: r.cstr("column name")?,
                    type_oid: r.u32("column type")?,
                    type_modifier: r.i32("column type modifier")?,
                });
            }
            LogicalMessage::Relation(Relation {
                id,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32("relation id")?;
            expect(&mut r, b'N')?;
            LogicalMessage::Insert {
                relation,
                new: tuple(&mut r)?,
            }
        }
        b'U' => {
            let relation = r.u32("relation id")?;
            let mut marker = r.u8("tuple marker")?;
            let mut old = None;
            if marker == b'K' || marker == b'O' {
                old = Some((marker, tuple(&mut r)?));
                marker = r.u8("tuple marker")?;
            }
            if marker != b'N' {
                return Err(PgError::Protocol(format!(
                    "update without a new tuple (marker {:?})",
                    marker as char
                )));
            }
            LogicalMessage::Update {
                relation,
                old,
                new: tuple(&mut r)?,
            }
        }
        b'D' => {
            let relation = r.u32("relation id")?;
            let marker = r.u8("tuple marker")?;
            if marker != b'K' && marker != b'O' {
                return Err(PgError::Protocol(format!(
                    "delete without an old tuple (marker {:?})",
                    marker as char
                )));
            }
            LogicalMessage::Delete {
                relation,
                old: (marker, tuple(&mut r)?),
            }
        }
        b'T' => {
            let n = r.u32("relation count")?;
            let _options = r.u8("truncate options")?;
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let mut relations = Vec::with_capacity(n.min(r.remaining() / 4));
            for _ in 0..n {
                relations.push(r.u32("truncated relation")?);
            }
            LogicalMessage::Truncate { relations }
        }
        other => LogicalMessage::Other(other),
    })
}

fn expect(r: &mut Reader, marker: u8) -> Result<(), PgError> {
    let got = r.u8("tuple marker")?;
    if got != marker {
        return Err(PgError::Protocol(format!(
            "expected tuple marker {:?}, got {:?}",
            marker as char, got as char
        )));
    }
    Ok(())
}

fn count(n: i16) -> Result<usize, PgError> {
    usize::try_from(n).map_err(|_| PgError::Protocol(format!("negative count {n}")))
}

fn tuple(r: &mut Reader) -> Result<Vec<TupleValue>, PgError> {
    let n = count(r.i16("tuple column count")?)?;
    let mut values = Vec::with_capacity(n.min(r.remaining()));
    for _ in 0..n {
        values.push(match r.u8("value kind")? {
            b'n' => TupleValue::Null,
            b'u' => TupleValue::UnchangedToast,
            kind @ (b't' | b'b') => {
                let len = r.i32("value length")?;
                let len = usize::try_from(len)
                    .map_err(|_| PgError::Protocol(format!("negative value length {len}")))?;
                let bytes = r.bytes(len, "value")?;
                if kind == b't' {
                    TupleValue::Text(bytes)
                } else {
                    TupleValue::Binary(bytes)
                }
            }
            other => {
                return Err(PgError::Protocol(format!(
                    "unknown value kind {:?}",
                    other as char
                )))
            }
        });
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use proptest::prelude::*;

    fn relation_bytes() -> Bytes {
        let mut b = BytesMut::new();
        b.put_u8(b'R');
        b.put_u32(16384);
        b.put_slice(b"public\0items\0");
        b.put_u8(b'd');
        b.put_i16(2);
        b.put_u8(1);
        b.put_slice(b"id\0");
        b.put_u32(23);
        b.put_i32(-1);
        b.put_u8(0);
        b.put_slice(b"name\0");
        b.put_u32(25);
        b.put_i32(-1);
        b.freeze()
    }

    #[test]
    fn decodes_relation_and_update() {
        let LogicalMessage::Relation(rel) = decode(relation_bytes()).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!(
            (rel.namespace.as_str(), rel.name.as_str()),
            ("public", "items")
        );
        assert!(rel.columns[0].key && !rel.columns[1].key);

        let mut b = BytesMut::new();
        b.put_u8(b'U');
        b.put_u32(16384);
        b.put_u8(b'K');
        b.put_i16(2);
        b.put_u8(b't');
        b.put_i32(1);
        b.put_slice(b"1");
        b.put_u8(b'n');
        b.put_u8(b'N');
        b.put_i16(2);
        b.put_u8(b't');
        b.put_i32(1);
        b.put_slice(b"2");
        b.put_u8(b'u');
        let msg = decode(b.freeze()).unwrap();
        assert_eq!(
            msg,
            LogicalMessage::Update {
                relation: 16384,
                old: Some((
                    b'K',
                    vec![TupleValue::Text(Bytes::from_static(b"1")), TupleValue::Null]
                )),
                new: vec![
                    TupleValue::Text(Bytes::from_static(b"2")),
                    TupleValue::UnchangedToast
                ],
            }
        );
    }

    #[test]
    fn refuses_truncated_input() {
        let bytes = relation_bytes();
        for cut in 1..bytes.len() {
            assert!(decode(bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(kind in prop::sample::select(b"BCRIUDTY".to_vec()),
                        bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut input = vec![kind];
            input.extend(bytes);
            let _ = decode(Bytes::from(input));
        }
    }
}
