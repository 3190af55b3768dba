//! A minimal HTTP/1.1 client: enough for forwarding writes to another Sluice registry, for
//! tests and for the load generator, without pulling in a full client stack.

use axum::body::Bytes;
use axum::http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request with `Connection: close` to `addr` (`host:port`); returns the status and
/// body.
pub async fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(StatusCode, Bytes), String> {
    exchange_with_header(addr, method, path, None, body).await
}

/// Like [`exchange`], with one extra `(name, value)` request header.
pub async fn exchange_with_header(
    addr: &str,
    method: &str,
    path: &str,
    header: Option<(&str, &str)>,
    body: &[u8],
) -> Result<(StatusCode, Bytes), String> {
    let extra = header
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .unwrap_or_default();
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(body).await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    stream
        .read_to_end(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the server sent a malformed response")?;
    let head = std::str::from_utf8(buf.get(..split).unwrap_or_default())
        .map_err(|_| "the server sent a non-UTF-8 header")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or("the server sent no status")?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let raw_body = buf.get(split + 4..).unwrap_or_default();
    let body = if chunked {
        dechunk(raw_body)?
    } else {
        raw_body.to_vec()
    };
    Ok((status, Bytes::from(body)))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size_text = std::str::from_utf8(data.get(..line_end).unwrap_or_default())
            .map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        data = data.get(line_end + 2..).ok_or("bad chunk")?;
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("truncated chunk")?);
        let next = size.checked_add(2).ok_or("bad chunk size")?;
        data = data.get(next..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks() {
        let body = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(dechunk(body).unwrap_or_default(), b"abcde");
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(dechunk(b"ffffffffffffffff\r\nab").is_err());
    }

    proptest::proptest! {
        #[test]
        fn dechunk_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = dechunk(&bytes);
        }
    }
}
