//! `TunnelStream`: the connected byte stream a route gives, plain TCP or TLS to an https:// proxy.

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

crate::io_enum::delegate_io!(TunnelStream { Tcp, ProxyTls });
