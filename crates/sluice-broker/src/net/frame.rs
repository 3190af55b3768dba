//! Size-prefixed framing and request-header decoding, written so that no input can panic them.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

/// Why a connection must be closed while framing or decoding a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("negative request size {0}; the peer does not speak the Kafka protocol")]
    NegativeSize(i32),
    /// The size prefix exceeds `socket.request.max.bytes`.
    #[error("request of {size} bytes exceeds socket.request.max.bytes={max}; raise the limit or send smaller requests")]
    TooLarge {
        /// Announced size.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// The frame is shorter than the fixed part of a request header.
    #[error("request of {0} bytes is too short to hold a request header")]
    TooShort(usize),
    /// The API key is not a Kafka API this crate knows.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// The header did not decode.
    #[error("malformed request header: {0}")]
    MalformedHeader(String),
}

/// Fixed part of every request header: api key, api version, correlation id.
const FIXED_HEADER_LEN: usize = 2 + 2 + 4;

/// Takes one complete frame (without its size prefix) off the front of `buf`, or `None` if
/// more bytes are needed. (The connection decides how much to reserve for an announced size:
/// see `WHOLE_FRAME_MAX` in [`super::connection`].)
pub fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    let Some(prefix) = buf.get(..4).and_then(|p| <[u8; 4]>::try_from(p).ok()) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes(prefix);
    let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    if buf.len() < 4 + size {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

/// The size a frame at the front of `buf` announces (without its 4-byte prefix), once the prefix
/// is in and valid.
pub fn announced_size(buf: &[u8]) -> Option<usize> {
    let prefix = <[u8; 4]>::try_from(buf.get(..4)?).ok()?;
    usize::try_from(i32::from_be_bytes(prefix)).ok()
}

/// The api key, version and correlation id of a frame, readable even when the rest of the
/// header is not (used to answer ApiVersions with an unsupported version).
pub fn peek_fixed_header(frame: &[u8]) -> Result<(i16, i16, i32), FrameError> {
    let fixed = frame
        .get(..FIXED_HEADER_LEN)
        .and_then(|h| <[u8; FIXED_HEADER_LEN]>::try_from(h).ok())
        .ok_or(FrameError::TooShort(frame.len()))?;
    let [k0, k1, v0, v1, c0, c1, c2, c3] = fixed;
    Ok((
        i16::from_be_bytes([k0, k1]),
        i16::from_be_bytes([v0, v1]),
        i32::from_be_bytes([c0, c1, c2, c3]),
    ))
}

/// Decodes the request header at the front of `frame`, leaving the body in `frame`.
pub fn decode_header(frame: &mut Bytes) -> Result<(ApiKey, RequestHeader), FrameError> {
    let (key, version, _) = peek_fixed_header(frame)?;
    let api = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApiKey(key))?;
    let header_version = api.request_header_version(version);
    let header = RequestHeader::decode(frame, header_version)
        .map_err(|e| FrameError::MalformedHeader(e.to_string()))?;
    Ok((api, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_their_size_prefix() {
        let mut buf = BytesMut::from(&[0, 0, 0, 2, 7, 8, 0, 0, 0, 5, 1][..]);
        assert_eq!(
            take_frame(&mut buf, 100),
            Ok(Some(Bytes::from_static(&[7, 8])))
        );
        // The second frame is incomplete: nothing is consumed.
        assert_eq!(take_frame(&mut buf, 100), Ok(None));
        assert_eq!(buf.len(), 5);
    }

    #[test]
    fn sizes_over_the_limit_or_negative_are_refused() {
        let mut buf = BytesMut::from(&[0, 0, 1, 0][..]);
        assert_eq!(
            take_frame(&mut buf, 255),
            Err(FrameError::TooLarge {
                size: 256,
                max: 255
            })
        );
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert_eq!(take_frame(&mut buf, 255), Err(FrameError::NegativeSize(-2)));
    }

    #[test]
    fn short_and_unknown_headers_are_errors() {
        assert_eq!(peek_fixed_header(&[0, 1, 2]), Err(FrameError::TooShort(3)));
        let mut frame = Bytes::from_static(&[0x40, 0, 0, 1, 0, 0, 0, 9]);
        assert!(matches!(
            decode_header(&mut frame),
            Err(FrameError::UnknownApiKey(0x4000))
        ));
        // Metadata v1 whose client id claims more bytes than present.
        let mut frame = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 9, 0, 50, b'a']);
        assert!(matches!(
            decode_header(&mut frame),
            Err(FrameError::MalformedHeader(_))
        ));
    }
}
