//! Bounded, streaming decompression of record batch payloads.
//!
//! A compressed batch is small on the wire but may claim to inflate to anything: a 32 KB zstd
//! frame can expand to a gigabyte. Every decompression in the log therefore goes through
//! [`payload_reader`], which streams (memory stays at the decoder's window plus one block) and
//! stops with [`LogError::UncompressedTooLarge`] once the output passes the caller's limit.
//! Decoders that allocate from a size declared in the input (snappy blocks, zstd windows) are
//! checked against the limit before they allocate.

use std::io::{self, BufRead, BufReader, Read};

use crate::batch::{BatchHeader, HEADER_SIZE};
use crate::LogError;

/// Largest zstd window accepted (16 MiB, log2 = 24). Producers compress one batch at a time, so
/// their frames need a window no larger than the batch; a frame asking for more is hostile.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// The xerial framing Kafka's Java client wraps snappy blocks in.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Xerial header: magic, version (i32), compatible version (i32).
const XERIAL_HEADER_LEN: usize = 16;

/// Reads the uncompressed records of a batch, at most `limit` bytes, whatever its codec.
/// `batch` is the whole batch (header included); the payload starts after the header.
pub(crate) fn payload_reader<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    limit: u64,
) -> Result<Limited<Box<dyn BufRead + 'a>>, LogError> {
    let payload = batch.get(HEADER_SIZE..).unwrap_or_default();
    let inner: Box<dyn BufRead + 'a> = match header.codec() {
        0 => Box::new(payload),
        1 => Box::new(BufReader::new(flate2::bufread::GzDecoder::new(payload))),
        2 => Box::new(BufReader::new(snappy_reader(payload, limit)?)),
        3 => Box::new(BufReader::new(
            lz4::Decoder::new(payload).map_err(codec_error)?,
        )),
        4 => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(payload)
                .map_err(codec_error)?
                .single_frame();
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(codec_error)?;
            Box::new(BufReader::new(decoder))
        }
        c => {
            return Err(LogError::CorruptBatch(format!(
                "unknown compression codec {c} (attributes {:#06x}); known codecs are 0-4",
                header.attributes
            )))
        }
    };
    Ok(Limited {
        inner,
        remaining: limit,
        limit,
    })
}

/// Decompresses a whole batch payload into memory, at most `limit` bytes.
pub(crate) fn decompress_to_vec(
    batch: &[u8],
    header: &BatchHeader,
    limit: u64,
) -> Result<Vec<u8>, LogError> {
    let mut reader = payload_reader(batch, header, limit)?;
    let mut out = Vec::new();
    match reader.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => Err(reader.error(e)),
    }
}

/// A reader that fails once more than `limit` bytes came out of it.
pub(crate) struct Limited<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R> Limited<R> {
    /// Turns an I/O error from this reader into the log error it stands for.
    pub(crate) fn error(&self, e: io::Error) -> LogError {
        if e.get_ref().is_some_and(|inner| inner.is::<OverLimit>()) {
            LogError::UncompressedTooLarge { limit: self.limit }
        } else {
            codec_error(e)
        }
    }
}

/// The marker error of a payload that inflates past its limit.
#[derive(Debug)]
struct OverLimit;

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompressed payload exceeds the limit")
    }
}

impl std::error::Error for OverLimit {}

impl<R: BufRead> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Limited<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let remaining = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            return Ok(buf);
        }
        if remaining == 0 {
            return Err(io::Error::other(OverLimit));
        }
        Ok(&buf[..buf.len().min(remaining)])
    }

    fn consume(&mut self, amt: usize) {
        self.remaining = self.remaining.saturating_sub(amt as u64);
        self.inner.consume(amt);
    }
}

fn codec_error(e: impl std::fmt::Display) -> LogError {
    LogError::CorruptBatch(format!("cannot decompress the records: {e}"))
}

/// Snappy as Kafka clients write it: xerial-framed blocks (Java) or one raw block (others).
fn snappy_reader<'a>(payload: &'a [u8], limit: u64) -> Result<SnappyReader<'a>, LogError> {
    let framed = payload.len() >= XERIAL_HEADER_LEN && payload.starts_with(XERIAL_MAGIC);
    let mut reader = SnappyReader {
        rest: if framed {
            &payload[XERIAL_HEADER_LEN..]
        } else {
            payload
        },
        framed,
        block: Vec::new(),
        pos: 0,
        budget: limit,
    };
    if !framed {
        // One raw block: its declared size is checked against the limit before allocating.
        reader.next_block(payload).map_err(|e| match e.get_ref() {
            Some(inner) if inner.is::<OverLimit>() => LogError::UncompressedTooLarge { limit },
            _ => codec_error(e),
        })?;
        reader.rest = &[];
    }
    Ok(reader)
}

struct SnappyReader<'a> {
    rest: &'a [u8],
    framed: bool,
    block: Vec<u8>,
    pos: usize,
    budget: u64,
}

impl SnappyReader<'_> {
    fn next_block(&mut self, compressed: &[u8]) -> io::Result<()> {
        let len = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        if len as u64 > self.budget {
            // Refused before allocating what the block claims.
            return Err(io::Error::other(OverLimit));
        }
        self.budget -= len as u64;
        self.block.resize(len, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(io::Error::other)?;
        self.pos = 0;
        Ok(())
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.block.len() {
            if !self.framed || self.rest.is_empty() {
                return Ok(0);
            }
            let (len, body) = self
                .rest
                .split_first_chunk::<4>()
                .ok_or_else(|| io::Error::other("truncated snappy block length"))?;
            let len = u32::from_be_bytes(*len) as usize;
            let block = body
                .get(..len)
                .ok_or_else(|| io::Error::other("truncated snappy block"))?;
            self.rest = &body[len..];
            self.next_block(block)?;
        }
        let n = (self.block.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
