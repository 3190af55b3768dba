//! Shared helpers for broker integration tests: a real broker on a free loopback port in a temp
//! directory, and a minimal Kafka client built on `kafka-protocol`.
//!
//! Use from a test file with `mod support;`.

#![allow(dead_code)]
// Test code: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use sluice_broker::config::BrokerConfig;
use sluice_broker::{start, BrokerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for any single response before failing.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);

/// A broker running in a temp dir; keeps the dir alive across restarts.
pub(crate) struct TestBroker {
    /// The running broker (None between stop and start).
    pub handle: Option<BrokerHandle>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The config it was started with (data dir included).
    pub config: BrokerConfig,
    /// Owns the data directory.
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    /// Starts a broker with default settings on 127.0.0.1:0.
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a broker after `tweak` adjusted its config.
    pub(crate) async fn start_with(tweak: impl FnOnce(&mut BrokerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = BrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_path_buf(),
            ..BrokerConfig::default()
        };
        tweak(&mut config);
        let handle = start(config.clone()).await.expect("broker starts");
        let addr = handle.local_addr();
        TestBroker {
            handle: Some(handle),
            addr,
            config,
            dir,
        }
    }

    /// Shuts the broker down cleanly and starts it again on the same data (new port).
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        let handle = start(self.config.clone()).await.expect("broker restarts");
        self.addr = handle.local_addr();
        self.handle = Some(handle);
    }

    /// Shuts the broker down cleanly.
    pub(crate) async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await.expect("clean shutdown");
        }
    }

    /// A fresh client connection.
    pub(crate) async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

/// Encodes requests into frames (header included, size prefix excluded) with rising
/// correlation ids; no connection needed.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    next_correlation: i32,
}

impl Encoder {
    /// Encodes `req` at `version` with its request header.
    pub(crate) fn encode<R: Request>(&mut self, req: &R, version: i16) -> Vec<u8> {
        self.next_correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.next_correlation)
            .with_client_id(Some(StrBytes::from_static_str("sluice-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode header");
        req.encode(&mut body, version).expect("encode request");
        body.to_vec()
    }
}

/// A raw Kafka protocol connection.
pub(crate) struct Client {
    /// The socket.
    pub stream: TcpStream,
    encoder: Encoder,
}

impl Client {
    /// Connects to `addr`.
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect to broker");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            encoder: Encoder::default(),
        }
    }

    /// Encodes `req` at `version` with its header into one frame (size prefix included).
    pub(crate) fn encode<R: Request>(&mut self, req: &R, version: i16) -> (i32, BytesMut) {
        let body = self.encoder.encode(req, version);
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(i32::try_from(body.len()).expect("frame size"));
        frame.extend_from_slice(&body);
        (self.encoder.next_correlation, frame)
    }

    /// Sends `req` without waiting; returns its correlation id.
    pub(crate) async fn send<R: Request>(&mut self, req: &R, version: i16) -> i32 {
        let (id, frame) = self.encode(req, version);
        self.stream.write_all(&frame).await.expect("send request");
        id
    }

    /// Writes raw bytes to the socket.
    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one response frame (without size prefix); `None` if the broker closed the socket.
    pub(crate) async fn read_frame(&mut self) -> Option<Bytes> {
        let read = async {
            let size = self.stream.read_i32().await.ok()?;
            let mut buf = vec![0u8; usize::try_from(size).ok()?];
            self.stream.read_exact(&mut buf).await.ok()?;
            Some(Bytes::from(buf))
        };
        tokio::time::timeout(RESPONSE_TIMEOUT, read)
            .await
            .expect("response within timeout")
    }

    /// Reads the response to a request of type `R` sent at `version`; checks the correlation id.
    pub(crate) async fn recv<R: Request>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> R::Response {
        let mut frame = self.read_frame().await.expect("broker answered");
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
            .expect("decode response header");
        assert_eq!(
            header.correlation_id, correlation_id,
            "responses in request order"
        );
        R::Response::decode(&mut frame, version).expect("decode response")
    }

    /// Sends `req` and waits for its response.
    pub(crate) async fn request<R: Request>(&mut self, req: &R, version: i16) -> R::Response {
        let id = self.send(req, version).await;
        self.recv::<R>(version, id).await
    }

    /// True once the broker has closed the connection (reads EOF or a reset within timeout).
    pub(crate) async fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(RESPONSE_TIMEOUT, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Idempotence fields of a test batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Producer {
    /// Producer id (-1: not idempotent).
    pub id: i64,
    /// Producer epoch.
    pub epoch: i16,
}

/// Not an idempotent producer.
pub(crate) const PLAIN: Producer = Producer { id: -1, epoch: -1 };

/// Encodes one v2 batch of `values` (keys `k<i>`, one header) starting at `base_sequence`.
pub(crate) fn batch(
    values: &[&[u8]],
    producer: Producer,
    base_sequence: i32,
    compression: Compression,
) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut headers = IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"x")),
            );
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: producer.id,
                producer_epoch: producer.epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::try_from(i).unwrap_or(0),
                sequence: if producer.id >= 0 {
                    base_sequence + i32::try_from(i).unwrap_or(0)
                } else {
                    -1
                },
                timestamp: 1_700_000_000_000 + i64::try_from(i).unwrap_or(0),
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::copy_from_slice(v)),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

/// Decodes every record in a fetched record set as `(offset, key, value)`.
pub(crate) fn decode_records(records: &Bytes) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
    let mut buf = records.clone();
    let mut out = Vec::new();
    while buf.has_remaining() {
        let set = RecordBatchDecoder::decode(&mut buf).expect("decode fetched batch");
        out.extend(set.records.into_iter().map(|r| (r.offset, r.key, r.value)));
    }
    out
}

/// ApiKey helper for raw frames.
pub(crate) fn api(key: ApiKey) -> i16 {
    key as i16
}
