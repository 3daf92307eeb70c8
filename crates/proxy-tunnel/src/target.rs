//! `TargetStream`: the stream to the exchange itself: the tunnel, with TLS to the exchange when
//! the URL asks for it. Shared by proxy-http and proxy-ws.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
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

crate::io_enum::delegate_io!(TargetStream { Plain, Tls });
