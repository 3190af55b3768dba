//! The Fetch response encoder: byte-for-byte what `kafka-protocol` writes for versions 4–12,
//! except that a partition's records can stay in the segment files ([`Part::File`]) instead of
//! being copied into the response.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, FetchResponse};
use kafka_protocol::protocol::Encodable;
use sluice_log::ReadResult;

use crate::handlers::response::{encode_header, Part, Reply, Response};
use crate::handlers::{DispatchError, RequestContext};

/// First version with flexible (compact, tagged) encoding.
const FLEXIBLE: i16 = 12;

/// A Fetch response whose record data is read from the log only when it is written out.
#[derive(Debug, Default)]
pub struct FetchReply {
    /// Everything but the records of the partitions listed in `files` (their `records` field
    /// is ignored).
    pub response: FetchResponse,
    /// `(topic index, partition index, what to send)` in response order.
    pub files: Vec<(usize, usize, ReadResult)>,
}

impl Reply for FetchReply {
    fn encode_reply(&self, ctx: &RequestContext, api: ApiKey) -> Result<Response, DispatchError> {
        let version = ctx.version();
        let mut head = BytesMut::with_capacity(256);
        encode_header::<FetchResponse>(ctx, api, &mut head)?;
        encode(self, version, head).map_err(|e| DispatchError::Encode {
            api,
            version,
            reason: e.to_string(),
        })
    }
}

/// Encodes `reply` at `version` after the already encoded header in `head`.
pub(crate) fn encode(reply: &FetchReply, version: i16, head: BytesMut) -> anyhow::Result<Response> {
    anyhow::ensure!(
        (4..=FLEXIBLE).contains(&version),
        "Fetch v{version} is not encoded here"
    );
    let r = &reply.response;
    anyhow::ensure!(
        r.unknown_tagged_fields.is_empty() && r.node_endpoints.is_empty(),
        "tagged fields are not supported"
    );
    let flexible = version >= FLEXIBLE;
    let mut out = Writer {
        response: Response::default(),
        buf: head,
    };
    let buf = &mut out.buf;
    buf.put_i32(r.throttle_time_ms);
    if version >= 7 {
        buf.put_i16(r.error_code);
        buf.put_i32(r.session_id);
    } else {
        anyhow::ensure!(r.session_id == 0, "fetch sessions need Fetch v7+");
    }
    out.array_len(Some(r.responses.len()), flexible)?;
    let mut files = reply.files.iter().peekable();
    for (ti, topic) in r.responses.iter().enumerate() {
        anyhow::ensure!(
            topic.unknown_tagged_fields.is_empty(),
            "tagged fields are not supported"
        );
        let name = topic.topic.0.as_bytes();
        if flexible {
            out.uvarint(u32::try_from(name.len() + 1)?);
        } else {
            out.buf.put_i16(i16::try_from(name.len())?);
        }
        out.buf.put_slice(name);
        out.array_len(Some(topic.partitions.len()), flexible)?;
        for (pi, p) in topic.partitions.iter().enumerate() {
            let file = files
                .next_if(|(t, q, _)| (*t, *q) == (ti, pi))
                .map(|f| &f.2);
            out.partition(p, file, version)?;
        }
        if flexible {
            out.buf.put_u8(0); // no tagged fields
        }
    }
    if flexible {
        out.buf.put_u8(0); // no tagged fields
    }
    anyhow::ensure!(
        files.next().is_none(),
        "records for a partition not in the response"
    );
    Ok(out.finish())
}

/// Collects encoded bytes and file ranges in wire order.
struct Writer {
    response: Response,
    buf: BytesMut,
}

impl Writer {
    /// An unsigned varint (the length prefixes of flexible versions).
    fn uvarint(&mut self, mut n: u32) {
        while n >= 0x80 {
            self.buf.put_u8((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        self.buf.put_u8(n as u8);
    }

    /// Length prefix of an array or of a byte field, in elements or bytes (`None` = null):
    /// both are encoded alike.
    fn array_len(&mut self, len: Option<usize>, flexible: bool) -> anyhow::Result<()> {
        match (len, flexible) {
            (None, true) => self.buf.put_u8(0),
            (None, false) => self.buf.put_i32(-1),
            (Some(n), true) => self.uvarint(u32::try_from(n + 1)?),
            (Some(n), false) => self.buf.put_i32(i32::try_from(n)?),
        }
        Ok(())
    }

    fn partition(
        &mut self,
        p: &PartitionData,
        file: Option<&ReadResult>,
        version: i16,
    ) -> anyhow::Result<()> {
        let flexible = version >= FLEXIBLE;
        anyhow::ensure!(
            p.unknown_tagged_fields.is_empty()
                && p.diverging_epoch == Default::default()
                && p.current_leader == Default::default()
                && p.snapshot_id == Default::default(),
            "tagged partition fields are not supported"
        );
        let buf = &mut self.buf;
        buf.put_i32(p.partition_index);
        buf.put_i16(p.error_code);
        buf.put_i64(p.high_watermark);
        buf.put_i64(p.last_stable_offset);
        if version >= 5 {
            buf.put_i64(p.log_start_offset);
        }
        let aborted = p.aborted_transactions.as_deref();
        self.array_len(aborted.map(<[_]>::len), flexible)?;
        for transaction in aborted.unwrap_or_default() {
            transaction.encode(&mut self.buf, version)?;
        }
        if version >= 11 {
            self.buf.put_i32(p.preferred_read_replica.0);
        } else {
            anyhow::ensure!(
                p.preferred_read_replica.0 == -1,
                "preferred read replica needs Fetch v11+"
            );
        }
        match file {
            Some(read) => {
                self.array_len(Some(read.len()), flexible)?;
                self.flush();
                for range in read.ranges() {
                    self.response.push(Part::File(range.clone()));
                }
            }
            None => {
                self.array_len(p.records.as_ref().map(|r| r.len()), flexible)?;
                if let Some(records) = &p.records {
                    // In-memory records (none today but tests) go out as they are.
                    self.flush();
                    self.response.push(Part::Bytes(records.clone()));
                }
            }
        }
        if flexible {
            self.buf.put_u8(0); // no tagged fields
        }
        Ok(())
    }

    /// Moves the bytes encoded so far into the response.
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let bytes = self.buf.split().freeze();
            self.response.push(Part::Bytes(bytes));
        }
    }

    fn finish(mut self) -> Response {
        self.flush();
        self.response
    }
}
