//! `TunnelStream`: the connected byte stream a route gives, plain TCP or TLS to an https:// proxy.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A byte stream to the target: TCP (direct, or through an http:// or SOCKS proxy) or TLS to an
/// https:// proxy with the CONNECT tunnel inside it. After the handshake nothing is added: reads
/// and writes go straight to the socket (or the proxy's TLS session).
#[derive(Debug)]
pub enum TunnelStream {
    /// A TCP socket, with `TCP_NODELAY` set.
    Tcp(TcpStream),
    /// TLS to an https:// proxy, carrying the tunnel.
    ProxyTls(Box<TlsStream<TcpStream>>),
}

impl TunnelStream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            TunnelStream::Tcp(tcp) => tcp,
            TunnelStream::ProxyTls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TunnelStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            TunnelStream::ProxyTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TunnelStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            TunnelStream::ProxyTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TunnelStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            TunnelStream::ProxyTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            TunnelStream::Tcp(s) => s.is_write_vectored(),
            TunnelStream::ProxyTls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TunnelStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            TunnelStream::ProxyTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TunnelStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            TunnelStream::ProxyTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
