//! Encoded responses: header and body bytes, with a fetch's record data left in the segment
//! files until the connection writes it (so it is never copied through the broker's memory on
//! plaintext listeners, and copied once, in bounded chunks, under TLS).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion, Message};
use sluice_log::FileRange;

use super::{DispatchError, RequestContext};

/// One piece of an encoded response.
#[derive(Debug, Clone)]
pub enum Part {
    /// Encoded protocol bytes.
    Bytes(Bytes),
    /// A byte range of a segment file, sent as it is stored.
    File(FileRange),
}

impl Part {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::File(range) => range.len() as usize,
        }
    }

    /// True if it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response as it goes on the wire after its 4-byte size: header, then body.
#[derive(Debug, Clone, Default)]
pub struct Response {
    parts: Vec<Part>,
    len: usize,
}

impl Response {
    /// A response held entirely in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Response {
            len: bytes.len(),
            parts: vec![Part::Bytes(bytes)],
        }
    }

    /// Appends a piece (empty ones are skipped).
    pub fn push(&mut self, part: Part) {
        if !part.is_empty() {
            self.len += part.len();
            self.parts.push(part);
        }
    }

    /// Total length (what the size prefix announces).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces in wire order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Reads every file range and returns the response as one buffer (tests, tools).
    pub fn to_bytes(&self) -> Result<Bytes, sluice_log::LogError> {
        let mut out = Vec::with_capacity(self.len);
        for part in &self.parts {
            match part {
                Part::Bytes(b) => out.extend_from_slice(b),
                Part::File(range) => range.read_into(&mut out)?,
            }
        }
        Ok(Bytes::from(out))
    }
}

/// What a handler returns: something that encodes itself, header included, for the request
/// in `ctx`.
pub trait Reply {
    /// Encodes the response header and body.
    fn encode_reply(&self, ctx: &RequestContext, api: ApiKey) -> Result<Response, DispatchError>;
}

impl<R: Encodable + HeaderVersion + Message> Reply for R {
    fn encode_reply(&self, ctx: &RequestContext, api: ApiKey) -> Result<Response, DispatchError> {
        super::encode_response(ctx, api, self).map(Response::from_bytes)
    }
}

/// Encodes the response header of the request in `ctx` for a body of type `R`.
pub fn encode_header<R: HeaderVersion>(
    ctx: &RequestContext,
    api: ApiKey,
    buf: &mut BytesMut,
) -> Result<(), DispatchError> {
    let version = ctx.version();
    ResponseHeader::default()
        .with_correlation_id(ctx.header.correlation_id)
        .encode(buf, R::header_version(version))
        .map_err(|e| DispatchError::Encode {
            api,
            version,
            reason: e.to_string(),
        })
}
