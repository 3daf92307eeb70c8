//! `TargetStream`: the stream to the exchange itself: the tunnel, with TLS to the exchange when
//! the URL asks for it. Shared by proxy-http and proxy-ws.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;

use crate::stream::TunnelStream;

/// The tunnel, or TLS to the exchange inside it.
#[derive(Debug)]
pub enum TargetStream {
    /// `http://` / `ws://` targets: the tunnel itself.
    Plain(TunnelStream),
    /// `https://` / `wss://` targets: TLS to the exchange inside the tunnel.
    Tls(Box<TlsStream<TunnelStream>>),
}

/// TLS to `host` over `stream`, verified with `config`, SNI = `host` (an IP address is verified
/// as one). The error is rustls' reason, as an `io::Error`.
pub async fn tls_to_target(
    stream: TunnelStream,
    host: &str,
    config: Arc<ClientConfig>,
) -> io::Result<TargetStream> {
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "target host is not a valid TLS server name",
            )
        })?,
    };
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await?;
    Ok(TargetStream::Tls(Box::new(tls)))
}

impl AsyncRead for TargetStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TargetStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            TargetStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for TargetStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TargetStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            TargetStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TargetStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            TargetStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            TargetStream::Plain(s) => s.is_write_vectored(),
            TargetStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TargetStream::Plain(s) => Pin::new(s).poll_flush(cx),
            TargetStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TargetStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            TargetStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
