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
/// the request with the client's Finished. On TLS 1.2 the bytes follow the handshake's last
/// flight in a write of their own. Either way they are written before this returns.
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
            // Before the handshake rustls only buffers plaintext, up to its buffer limit (a
            // partial count past it). A fresh connection cannot fail here; if it did, 0 leaves
            // every byte to the caller.
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
    use rustls::crypto::ring;
    use rustls::{ClientConfig, ProtocolVersion, ServerConfig};
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

    /// What one connection saw: the client's writes (lengths), how much of `first` rustls took,
    /// and the handshake's result with the bytes the TLS server read.
    struct Seen {
        writes: Vec<usize>,
        result: io::Result<(usize, Option<ProtocolVersion>)>,
        server_read: Option<Vec<u8>>,
    }

    /// A TLS server with `server` on loopback; the client connects with `client`, `first`
    /// queued, then writes `request[taken..]` itself as a caller would.
    async fn connect_once(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        first: &[u8],
        request: &[u8],
    ) -> Seen {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let want = request.len();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.ok()?;
            let mut tls = acceptor.accept(tcp).await.ok()?;
            let mut got = vec![0u8; want];
            tls.read_exact(&mut got).await.ok()?;
            Some(got)
        });
        let writes = Arc::new(Mutex::new(Vec::new()));
        let io = Counted {
            tcp: TcpStream::connect(addr).await.unwrap(),
            writes: Arc::clone(&writes),
        };
        let name = ServerName::IpAddress(addr.ip().into());
        let result = match connect_sending(client, name, io, first).await {
            Ok((mut tls, taken)) => {
                tls.write_all(&request[taken..]).await.unwrap();
                tls.flush().await.unwrap();
                Ok((taken, tls.get_ref().1.protocol_version()))
            }
            Err(error) => Err(error),
        };
        let server_read = server.await.unwrap();
        let writes = writes.lock().unwrap().clone();
        Seen {
            writes,
            result,
            server_read,
        }
    }

    fn tls12_server(ca: &TestCa) -> Arc<ServerConfig> {
        let (chain, key) = ca.issue(&["127.0.0.1"]);
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(config)
    }

    #[tokio::test]
    async fn the_first_bytes_leave_with_the_clients_finished() {
        let ca = TestCa::new();
        let server = ca.server_config(&["127.0.0.1"]);
        let seen = connect_once(server.clone(), ca.client_config(), REQUEST, REQUEST).await;
        let (taken, version) = seen.result.unwrap();
        assert_eq!(version, Some(ProtocolVersion::TLSv1_3));
        assert_eq!(taken, REQUEST.len());
        assert_eq!(
            seen.server_read.as_deref(),
            Some(REQUEST),
            "the request intact"
        );
        // The control: without queued bytes the request takes a write of its own.
        let control = connect_once(server, ca.client_config(), &[], REQUEST).await;
        assert_eq!(control.result.unwrap().0, 0);
        assert_eq!(control.server_read.as_deref(), Some(REQUEST));
        // The Finished and the request share a write: one write less than the control (2 and 3
        // with this small test certificate; a chain over ~4 KiB adds a write to both).
        assert_eq!(
            seen.writes.len() + 1,
            control.writes.len(),
            "queued {:?}, control {:?}",
            seen.writes,
            control.writes
        );
    }

    #[tokio::test]
    async fn nothing_queued_is_sent_to_a_server_that_fails_verification() {
        let trusted = TestCa::new();
        let other = TestCa::new();
        let server = other.server_config(&["127.0.0.1"]);
        let queued = connect_once(server.clone(), trusted.client_config(), REQUEST, REQUEST).await;
        let plain = connect_once(server, trusted.client_config(), &[], REQUEST).await;
        assert!(queued.result.is_err() && plain.result.is_err());
        assert_eq!(queued.server_read, None);
        // The same bytes left the client either way: the ClientHello (and the alert), no request.
        let sum = |writes: &[usize]| writes.iter().sum::<usize>();
        assert_eq!(
            sum(&queued.writes),
            sum(&plain.writes),
            "{queued:?} vs {plain:?}",
            queued = queued.writes,
            plain = plain.writes
        );
    }

    #[tokio::test]
    async fn over_tls_1_2_the_first_bytes_follow_the_handshake() {
        let ca = TestCa::new();
        let seen = connect_once(tls12_server(&ca), ca.client_config(), REQUEST, REQUEST).await;
        let (taken, version) = seen.result.unwrap();
        assert_eq!(version, Some(ProtocolVersion::TLSv1_2));
        assert_eq!(taken, REQUEST.len());
        assert_eq!(seen.server_read.as_deref(), Some(REQUEST));
    }

    #[tokio::test]
    async fn past_the_plaintext_buffer_the_caller_writes_the_rest() {
        let ca = TestCa::new();
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let seen = connect_once(
            ca.server_config(&["127.0.0.1"]),
            ca.client_config(),
            &big,
            &big,
        )
        .await;
        let (taken, _) = seen.result.unwrap();
        assert_eq!(taken, 64 * 1024, "rustls' default plaintext buffer");
        assert_eq!(
            seen.server_read.as_deref(),
            Some(&big[..]),
            "every byte, in order, once"
        );
    }
}
