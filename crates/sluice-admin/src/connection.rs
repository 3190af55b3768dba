//! One request/response connection to a broker.

use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{AdminConfig, AdminError};

/// Largest response accepted (a describe of many ACLs stays far below).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A codec failure: the underlying error type is the codec's own, so only its text is kept.
fn protocol(e: impl std::fmt::Display) -> AdminError {
    AdminError::Protocol(e.to_string())
}

/// Any byte stream to a broker.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection to one broker of the cluster.
pub struct AdminConnection {
    stream: Box<dyn Stream>,
    next_correlation: i32,
    timeout: Duration,
}

impl AdminConnection {
    /// Connects to the first bootstrap server that answers.
    pub async fn connect(config: &AdminConfig) -> Result<Self, AdminError> {
        let connector = config.tls.as_ref().map(|t| t.connector()).transpose()?;
        let mut last_error = None;
        for server in config
            .bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match Self::connect_one(server, connector.clone(), config.timeout).await {
                Ok(mut conn) => {
                    if let Some(login) = &config.sasl {
                        crate::sasl::login(&mut conn, login).await?;
                    }
                    return Ok(conn);
                }
                Err(detail) => {
                    last_error = Some(AdminError::Connect {
                        server: server.to_owned(),
                        detail,
                    })
                }
            }
        }
        Err(last_error.unwrap_or_else(|| AdminError::Config("no bootstrap server given".into())))
    }

    async fn connect_one(
        server: &str,
        connector: Option<tokio_rustls::TlsConnector>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(server))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let stream: Box<dyn Stream> = match connector {
            None => Box::new(tcp),
            Some(connector) => {
                let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|_| format!("{host} is not a valid TLS server name"))?;
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| "TLS handshake timed out".to_owned())?
                    .map_err(|e| {
                        format!("TLS handshake failed ({e}; check ssl.ca.location and the client certificate)")
                    })?;
                Box::new(tls)
            }
        };
        Ok(AdminConnection {
            stream,
            next_correlation: 0,
            timeout,
        })
    }

    /// Sends `req` at `version` and waits for its response.
    pub async fn request<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, AdminError> {
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let correlation_id = self.next_correlation;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-admin")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .map_err(protocol)?;
        req.encode(&mut body, version).map_err(protocol)?;
        let len = i32::try_from(body.len())
            .map_err(|_| AdminError::Protocol("request too large".into()))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(len);
        frame.extend_from_slice(&body);
        let exchange = async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            let size = usize::try_from(self.stream.read_i32().await?).unwrap_or(usize::MAX);
            if size > MAX_RESPONSE_BYTES {
                return Err(std::io::Error::other(format!(
                    "the broker sent a {size}-byte response; is this a Kafka listener?"
                )));
            }
            let mut buf = vec![0u8; size];
            self.stream.read_exact(&mut buf).await?;
            Ok(bytes::Bytes::from(buf))
        };
        let mut response = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| AdminError::Io("the broker did not answer in time".into()))?
            .map_err(|e| {
                AdminError::Io(format!(
                    "the connection to the broker failed ({e}); a TLS listener needs security.protocol=ssl"
                ))
            })?;
        let header = ResponseHeader::decode(&mut response, R::Response::header_version(version))
            .map_err(protocol)?;
        if header.correlation_id != correlation_id {
            return Err(AdminError::Protocol(format!(
                "the broker answered request {} instead of {correlation_id}",
                header.correlation_id
            )));
        }
        let decoded = R::Response::decode(&mut response, version).map_err(protocol)?;
        if response.has_remaining() {
            tracing::debug!(
                bytes = response.remaining(),
                "ignoring trailing bytes in the response"
            );
        }
        Ok(decoded)
    }
}
