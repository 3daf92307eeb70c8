//! `ExchangeConnector`: hyper-util's connector for one route: a tunnel from proxy-tunnel, then
//! TLS to the exchange (SNI = the exchange's host name) for `https://` URLs.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use proxy_tunnel::{TargetStream, TunnelConnector, TunnelError, tls_to_target};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a connection to the exchange could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The route (direct or proxy) failed; see [`TunnelError`] for who is at fault.
    #[error(transparent)]
    Tunnel(#[from] TunnelError),
    /// TLS to the exchange, through the tunnel, failed (certificate not trusted, name mismatch).
    #[error("TLS to {host} failed: {source}")]
    Tls {
        /// The exchange host.
        host: String,
        /// rustls' reason.
        #[source]
        source: io::Error,
    },
    /// The URL has no host, or one that is not a valid TLS server name.
    #[error("invalid target host in URL")]
    InvalidTarget,
}

/// A [`ConnectError`] as the connector returns it: shared, so the client can take it back out
/// of hyper-util's error (which only lends its source) as a typed error.
#[derive(Debug, Clone)]
pub struct SharedConnectError(pub(crate) Arc<ConnectError>);

impl SharedConnectError {
    /// The error.
    pub fn error(&self) -> &ConnectError {
        &self.0
    }
}

impl std::fmt::Display for SharedConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

/// The stream hyper speaks HTTP/1.1 over: the tunnel, with TLS to the exchange for https.
#[derive(Debug)]
pub struct ExchangeStream(pub TargetStream);

impl Connection for ExchangeStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for ExchangeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ExchangeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// hyper-util connector for one route. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ExchangeConnector {
    tunnel: TunnelConnector,
    tls: Arc<ClientConfig>,
}

impl ExchangeConnector {
    /// A connector over `tunnel`, verifying exchanges with `tls`.
    pub fn new(tunnel: TunnelConnector, tls: Arc<ClientConfig>) -> Self {
        Self { tunnel, tls }
    }

    /// The tunnel connector (its route, exchange and transport).
    pub fn tunnel(&self) -> &TunnelConnector {
        &self.tunnel
    }
}

type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<ExchangeStream>, SharedConnectError>> + Send>>;

impl tower_service::Service<Uri> for ExchangeConnector {
    type Response = TokioIo<ExchangeStream>;
    type Error = SharedConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        // hyper-util starts a connect while polling the request that needs it: the request's
        // flag (see `with_connect_flag`) says whether its time ran out in the connect.
        let flag = CONNECTING.try_with(Arc::clone).ok();
        let connect = Box::pin(async move {
            this.connect(uri)
                .await
                .map_err(|e| SharedConnectError(Arc::new(e)))
        });
        Box::pin(Flagged {
            inner: connect,
            flag,
        })
    }
}

/// A connect that holds its request's flag up from its first poll to its end, and lets go when
/// it is polled outside that request (hyper-util finishes a connect in the background when the
/// request took a pooled connection instead). Dropped in the middle, it leaves the flag up:
/// the request's time ran out in the connect.
struct Flagged<F> {
    inner: F,
    flag: Option<Arc<AtomicBool>>,
}

impl<F: Future + Unpin> Future for Flagged<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Some(flag) = &self.flag {
            let in_its_request = CONNECTING
                .try_with(|current| Arc::ptr_eq(current, flag))
                .unwrap_or(false);
            flag.store(in_its_request, Ordering::Relaxed);
            if !in_its_request {
                self.flag = None;
            }
        }
        let result = Pin::new(&mut self.inner).poll(cx);
        if result.is_ready()
            && let Some(flag) = self.flag.take()
        {
            flag.store(false, Ordering::Relaxed);
        }
        result
    }
}

tokio::task_local! {
    /// Set while one request is polled: true from the start of a connect it started to the
    /// connect's end.
    static CONNECTING: Arc<AtomicBool>;
}

/// Runs `request` with a flag that is true from the start of a connect the request started to
/// its end (and stays true when the request is dropped in the middle of it).
pub(crate) async fn with_connect_flag<F: Future>(flag: Arc<AtomicBool>, request: F) -> F::Output {
    CONNECTING.scope(flag, request).await
}

impl ExchangeConnector {
    async fn connect(self, uri: Uri) -> Result<TokioIo<ExchangeStream>, ConnectError> {
        let this = self;
        {
            let https = uri.scheme_str() == Some("https");
            let host = uri.host().ok_or(ConnectError::InvalidTarget)?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            // Always an explicit port: hyper-util's proxy connectors assume 443 otherwise.
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let stream = this.tunnel.connect(&host, port).await?;
            if !https {
                return Ok(TokioIo::new(ExchangeStream(TargetStream::Plain(stream))));
            }
            let tls = tls_to_target(stream, &host, Arc::clone(&this.tls))
                .await
                .map_err(|source| ConnectError::Tls { host, source })?;
            Ok(TokioIo::new(ExchangeStream(tls)))
        }
    }
}
