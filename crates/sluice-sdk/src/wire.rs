//! Confluent's wire format: magic byte 0, a 4-byte big-endian schema id, for protobuf the
//! message-index array (zigzag varints, `[0]` written as a single 0 byte), then the payload.

/// The only magic byte Confluent's format defines.
pub const MAGIC: u8 = 0;

/// Why a framed payload could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer than 5 bytes.
    #[error("payload of {0} bytes is too short for the 5-byte schema header")]
    TooShort(usize),
    /// First byte is not 0.
    #[error(
        "magic byte {0} is not 0: the payload was not written by a schema-registry serializer"
    )]
    BadMagic(u8),
    /// Broken message-index array.
    #[error("malformed protobuf message-index array: {0}")]
    BadIndexes(&'static str),
}

/// The header of a framed payload and where its body starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<'a> {
    /// The registry's schema id.
    pub schema_id: u32,
    /// Everything after the 5-byte header (for protobuf: indexes, then message).
    pub body: &'a [u8],
}

/// Frames a protobuf message: header, message indexes of `desc`, then `msg`.
pub fn frame_protobuf<M: prost::Message>(
    buf: &mut Vec<u8>,
    schema_id: u32,
    desc: &prost_reflect::MessageDescriptor,
    msg: &M,
) {
    buf.reserve(msg.encoded_len() + 8);
    write_header(buf, schema_id);
    // The descriptor's source path alternates field numbers and indexes: [4, i, 3, j, ...].
    let path = desc.path();
    if path.len() == 2 && path.get(1) == Some(&0) {
        buf.push(0);
    } else {
        write_zigzag(buf, (path.len() / 2) as i64);
        for i in path.iter().skip(1).step_by(2) {
            write_zigzag(buf, i64::from(*i));
        }
    }
    // Encoding into a Vec cannot run out of capacity.
    msg.encode_raw(buf);
}

/// Decodes a framed protobuf payload into `M`, skipping the header and message indexes.
pub fn decode_protobuf<M: prost::Message + Default>(payload: &[u8]) -> Result<M, String> {
    let framed = parse(payload).map_err(|e| e.to_string())?;
    let (_, body) = read_indexes(framed.body).map_err(|e| e.to_string())?;
    M::decode(body).map_err(|e| e.to_string())
}

/// Writes magic byte and schema id into `buf`.
pub fn write_header(buf: &mut Vec<u8>, schema_id: u32) {
    buf.push(MAGIC);
    buf.extend_from_slice(&schema_id.to_be_bytes());
}

/// Splits a framed payload into schema id and body.
pub fn parse(payload: &[u8]) -> Result<Framed<'_>, WireError> {
    let (head, body) = payload
        .split_first_chunk::<5>()
        .ok_or(WireError::TooShort(payload.len()))?;
    if head[0] != MAGIC {
        return Err(WireError::BadMagic(head[0]));
    }
    let schema_id = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    Ok(Framed { schema_id, body })
}

/// Writes the protobuf message-index array (`[0]` as the single byte 0, like Confluent).
pub fn write_indexes(buf: &mut Vec<u8>, indexes: &[i32]) {
    if indexes == [0] {
        buf.push(0);
        return;
    }
    write_zigzag(buf, indexes.len() as i64);
    for &i in indexes {
        write_zigzag(buf, i64::from(i));
    }
}

/// Reads the protobuf message-index array; returns the indexes and the message bytes.
pub fn read_indexes(body: &[u8]) -> Result<(Vec<i32>, &[u8]), WireError> {
    let (count, mut rest) = read_zigzag(body)?;
    if count == 0 {
        return Ok((vec![0], rest));
    }
    // Each index takes at least one byte, which bounds the allocation by the input.
    if count < 0 || count as usize > rest.len() {
        return Err(WireError::BadIndexes(
            "count is negative or exceeds the payload",
        ));
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (v, r) = read_zigzag(rest)?;
        let v = i32::try_from(v).map_err(|_| WireError::BadIndexes("index out of range"))?;
        if v < 0 {
            return Err(WireError::BadIndexes("negative index"));
        }
        out.push(v);
        rest = r;
    }
    Ok((out, rest))
}

fn write_zigzag(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

fn read_zigzag(buf: &[u8]) -> Result<(i64, &[u8]), WireError> {
    let mut z: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        z |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let v = ((z >> 1) as i64) ^ -((z & 1) as i64);
            return Ok((v, &buf[i + 1..]));
        }
    }
    Err(WireError::BadIndexes("truncated or over-long varint"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn first_message_is_one_zero_byte() {
        let mut b = Vec::new();
        write_header(&mut b, 7);
        write_indexes(&mut b, &[0]);
        assert_eq!(b, [0, 0, 0, 0, 7, 0]);
        let f = parse(&b).unwrap();
        assert_eq!(f.schema_id, 7);
        assert_eq!(read_indexes(f.body).unwrap(), (vec![0], &[][..]));
    }

    #[test]
    fn nested_indexes_use_zigzag() {
        let mut b = Vec::new();
        write_indexes(&mut b, &[1, 0]);
        assert_eq!(b, [4, 2, 0]);
    }

    proptest! {
        #[test]
        fn indexes_round_trip(ix in proptest::collection::vec(0i32..100_000, 1..6), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut b = Vec::new();
            write_indexes(&mut b, &ix);
            b.extend_from_slice(&tail);
            let (got, rest) = read_indexes(&b).unwrap();
            prop_assert_eq!(got, ix);
            prop_assert_eq!(rest, &tail[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(f) = parse(&bytes) {
                let _ = read_indexes(f.body);
            }
            let _ = read_indexes(&bytes);
        }
    }
}
