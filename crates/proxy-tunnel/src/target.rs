//! `TargetStream`: the stream to the exchange itself: the tunnel, with TLS to the exchange when
//! the URL asks for it. Shared by proxy-http and proxy-ws.

use std::io::{self, Write as _};
use std::net::IpAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
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
    tls_to_target_sending(stream, host, config, &[])
        .await
        .map(|(stream, _)| stream)
}

/// [`tls_to_target`], with `first`, the first bytes the caller will send (an HTTP request, a
/// WebSocket upgrade), handed to rustls before the handshake. rustls keeps them until the
/// handshake is done and the server verified (nothing of them is sent if it fails), then
/// encrypts them right behind the client's last handshake message, and both leave in the same
/// write. On TLS 1.3 that saves a write and a TCP segment per connection, and the server gets
/// the request with the client's Finished. On TLS 1.2 the bytes follow the handshake, in their
/// own write, as before.
///
/// Returns the stream and how many bytes of `first` rustls took: all of them unless they
/// exceed its plaintext buffer (64 KiB by default). The caller writes the rest.
pub async fn tls_to_target_sending(
    stream: TunnelStream,
    host: &str,
    config: Arc<ClientConfig>,
    first: &[u8],
) -> io::Result<(TargetStream, usize)> {
    let name = server_name(host)?;
    let (tls, taken) = connect_sending(config, name, stream, first).await?;
    Ok((TargetStream::Tls(Box::new(tls)), taken))
}

/// SNI for `host`: an IP address as one, else a DNS name.
fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(host.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "target host is not a valid TLS server name",
            )
        }),
    }
}

/// The TLS handshake over `io` with `first` queued as application data before it starts;
/// how many bytes of `first` rustls took.
async fn connect_sending<IO>(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    io: IO,
    first: &[u8],
) -> io::Result<(TlsStream<IO>, usize)>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut taken = 0;
    let connect = tokio_rustls::TlsConnector::from(config).connect_with(name, io, |conn| {
        if !first.is_empty() {
            // Before the handshake rustls only buffers plaintext; a refusal (a full buffer)
            // leaves the bytes to the caller.
            taken = conn.writer().write(first).unwrap_or(0);
        }
    });
    Ok((connect.await?, taken))
}

crate::io_enum::delegate_io!(TargetStream { Plain, Tls });

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use feed_sim::ca::TestCa;
    use rustls_pki_types::ServerName;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
    use tokio::net::{TcpListener, TcpStream};

    use super::connect_sending;

    /// A TCP stream that records the length of every write made to it.
    struct Counted {
        tcp: TcpStream,
        writes: Arc<Mutex<Vec<usize>>>,
    }

    impl AsyncRead for Counted {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.tcp).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Counted {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let result = Pin::new(&mut self.tcp).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = result {
                self.writes.lock().unwrap().push(n);
            }
            result
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let result = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
            if let Poll::Ready(Ok(n)) = result {
                self.writes.lock().unwrap().push(n);
            }
            result
        }

        fn is_write_vectored(&self) -> bool {
            self.tcp.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.tcp).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.tcp).poll_shutdown(cx)
        }
    }

    const REQUEST: &[u8] = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    /// Connects with `first` queued, then writes `REQUEST[taken..]` itself as a caller would;
    /// returns the client's writes (lengths) and what the TLS server read.
    async fn handshake_writes(first: &[u8]) -> (Vec<usize>, usize, Vec<u8>) {
        let ca = TestCa::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config(&["127.0.0.1"]));
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut got = vec![0u8; REQUEST.len()];
            tls.read_exact(&mut got).await.unwrap();
            got
        });
        let writes = Arc::new(Mutex::new(Vec::new()));
        let io = Counted {
            tcp: TcpStream::connect(addr).await.unwrap(),
            writes: Arc::clone(&writes),
        };
        let name = ServerName::IpAddress(addr.ip().into());
        let (mut tls, taken) = connect_sending(ca.client_config(), name, io, first)
            .await
            .unwrap();
        tls.write_all(&REQUEST[taken..]).await.unwrap();
        tls.flush().await.unwrap();
        let got = server.await.unwrap();
        let writes = writes.lock().unwrap().clone();
        (writes, taken, got)
    }

    #[tokio::test]
    async fn the_first_bytes_leave_with_the_clients_finished() {
        let (writes, taken, got) = handshake_writes(REQUEST).await;
        assert_eq!(taken, REQUEST.len());
        assert_eq!(got, REQUEST, "the server read the request intact");
        // ClientHello, then Finished and the request in one write (TLS 1.3).
        assert_eq!(writes.len(), 2, "writes: {writes:?}");
        // The control: without queued bytes the request takes a write of its own.
        let (writes, taken, got) = handshake_writes(&[]).await;
        assert_eq!(taken, 0);
        assert_eq!(got, REQUEST);
        assert_eq!(writes.len(), 3, "writes: {writes:?}");
    }
}
