//! Cuts a v3 produce body into records as its bytes arrive. Each byte is scanned once, whatever
//! the chunking (re-parsing an incomplete record on every chunk would make a large record sent
//! a byte at a time cost quadratic time); a record is parsed once, when its last byte is in.

use bytes::{Buf, BytesMut};
use serde_json::value::RawValue;

use crate::error::ApiError;

/// Deepest nesting a record may have.
const MAX_DEPTH: u32 = 128;

/// The body read so far and where the scan stands.
#[derive(Debug, Default)]
pub(crate) struct Splitter {
    buf: BytesMut,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    /// Nesting depth inside the current record (0: between records).
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl Splitter {
    /// Appends bytes of the body.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes pushed and not yet split off as records.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing but whitespace is left unsplit.
    pub(crate) fn is_blank(&self) -> bool {
        self.buf.iter().all(u8::is_ascii_whitespace)
    }

    /// The records completed by the bytes pushed so far. An error ends the stream: a record
    /// that is not a JSON object or array, malformed JSON, nesting deeper than 128, or a record
    /// growing past `limit` bytes.
    pub(crate) fn records(&mut self, limit: usize) -> Result<Vec<Box<RawValue>>, ApiError> {
        let mut out = Vec::new();
        let mut i = self.scanned;
        while i < self.buf.len() {
            let b = self.buf[i];
            if self.depth == 0 {
                match b {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        // Whitespace between records is dropped as it is passed.
                        self.buf.advance(i + 1);
                        i = 0;
                        continue;
                    }
                    b'{' | b'[' => self.depth = 1,
                    _ => {
                        return Err(ApiError::bad_request(
                            "Error processing JSON: a record must be a JSON object",
                        ))
                    }
                }
            } else if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => {
                        self.depth += 1;
                        if self.depth > MAX_DEPTH {
                            return Err(ApiError::bad_request(format!(
                                "Error processing JSON: nested deeper than {MAX_DEPTH} levels"
                            )));
                        }
                    }
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            let record = self.buf.split_to(i + 1);
                            let raw =
                                serde_json::from_slice::<Box<RawValue>>(&record).map_err(|e| {
                                    ApiError::bad_request(format!("Error processing JSON: {e}"))
                                })?;
                            out.push(raw);
                            i = 0;
                            continue;
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.scanned = i;
        if self.depth > 0 && self.buf.len() > limit {
            return Err(ApiError::too_large(format!(
                "a record exceeds {limit} bytes"
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    fn parsed(v: Vec<Box<RawValue>>) -> Vec<Json> {
        v.iter()
            .map(|r| serde_json::from_str(r.get()).unwrap())
            .collect()
    }

    #[test]
    fn records_come_out_as_they_complete() {
        let mut s = Splitter::default();
        s.push(b"{\"a\":1} {\"b\":\"}{\\\"\"}\r\n{\"c\"");
        assert_eq!(
            parsed(s.records(1 << 20).unwrap()),
            vec![json!({"a":1}), json!({"b":"}{\""})]
        );
        s.push(b":3}");
        assert_eq!(parsed(s.records(1 << 20).unwrap()), vec![json!({"c":3})]);
        assert!(s.is_blank());
    }

    #[test]
    fn garbage_depth_and_size_end_the_stream() {
        let mut s = Splitter::default();
        s.push(b"{\"a\":1} nonsense");
        assert_eq!(s.records(1 << 20).unwrap_err().code, 400);
        let mut s = Splitter::default();
        s.push(b"{\"a\":1,]");
        assert_eq!(s.records(1 << 20).unwrap_err().code, 400);
        let mut s = Splitter::default();
        s.push(&[b'['; 200]);
        assert!(s.records(1 << 20).unwrap_err().message.contains("nested"));
        let mut s = Splitter::default();
        s.push(b"{\"a\":\"0123456789");
        assert_eq!(s.records(8).unwrap_err().code, 41301);
    }

    #[test]
    fn a_large_record_sent_byte_by_byte_is_scanned_once() {
        let record = format!("{{\"v\":\"{}\"}}", "x".repeat(2 << 20));
        let mut s = Splitter::default();
        let start = std::time::Instant::now();
        let mut got = Vec::new();
        for b in record.as_bytes() {
            s.push(std::slice::from_ref(b));
            got.extend(s.records(8 << 20).unwrap());
        }
        assert_eq!(got.len(), 1);
        // Linear: a couple of million single-byte steps, not 2^42 of them.
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    proptest::proptest! {
        /// However the body is cut into chunks, the same records come out, in order.
        #[test]
        fn chunking_never_changes_the_records(
            n in 1usize..20,
            cuts in proptest::collection::vec(0usize..2000, 0..30),
        ) {
            let records: Vec<Json> = (0..n)
                .map(|i| json!({"value": {"type": "STRING", "data": format!("r{i} \"{{}}\" \\ [")}}))
                .collect();
            let body: Vec<u8> = records
                .iter()
                .flat_map(|r| {
                    let mut b = serde_json::to_vec_pretty(r).unwrap();
                    b.extend_from_slice(b"\r\n");
                    b
                })
                .collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(body.len());
            let (mut s, mut got, mut from) = (Splitter::default(), Vec::new(), 0);
            for cut in cuts {
                s.push(&body[from..cut]);
                from = cut;
                got.extend(parsed(s.records(1 << 20).unwrap()));
            }
            proptest::prop_assert_eq!(got, records);
            proptest::prop_assert!(s.is_blank());
        }
    }
}
