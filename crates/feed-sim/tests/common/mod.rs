//! Raw-socket client helpers shared by the feed-sim tests: deadlines, TLS, and HTTP/1.1 heads
//! read byte for byte, so every test sees exactly what the fakes sent.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset of the helpers

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The functional deadline for every await in these tests: nothing may hang.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Awaits `fut`, panicking with `what` if it takes longer than [`DEADLINE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {DEADLINE:?}"))
}

/// Starts TLS over `stream` for `name` with `config`.
pub async fn tls<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    config: Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<TlsStream<S>> {
    let name = ServerName::try_from(name.to_owned()).expect("valid server name");
    TlsConnector::from(config).connect(name, stream).await
}

/// A response head and body as received.
#[derive(Debug)]
pub struct RawResponse {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {:?}", self.status_line))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a response head one byte at a time (so nothing behind it is consumed), then a
/// `Content-Length` body if `with_body`.
pub async fn read_response<S: AsyncRead + Unpin>(stream: &mut S, with_body: bool) -> RawResponse {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.unwrap_or_else(|e| {
            panic!(
                "reading a response head after {:?}: {e}",
                String::from_utf8_lossy(&head)
            )
        });
        head.push(byte);
        assert!(head.len() < 70_000, "response head too large");
    }
    let text = String::from_utf8(head).expect("UTF-8 response head");
    let mut lines = text.trim_end().split("\r\n");
    let status_line = lines.next().expect("status line").to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line with a colon");
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut response = RawResponse {
        status_line,
        headers,
        body: Vec::new(),
    };
    if with_body {
        let len: usize = response
            .header("Content-Length")
            .expect("Content-Length")
            .parse()
            .expect("numeric Content-Length");
        response.body = vec![0; len];
        stream
            .read_exact(&mut response.body)
            .await
            .expect("reading the body");
    }
    response
}

/// Sends `request` verbatim and reads the response with its body.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &str,
) -> RawResponse {
    stream
        .write_all(request.as_bytes())
        .await
        .expect("writing the request");
    stream.flush().await.expect("flushing the request");
    read_response(stream, true).await
}

/// Reads until EOF, an error, or `limit` bytes; returns what arrived.
pub async fn read_until_close<S: AsyncRead + Unpin>(stream: &mut S, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    while out.len() < limit {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    out
}
