//! The handshake-time stream adapters: `Recorder` keeps what the proxy answered (so a failed
//! handshake can be explained), `Ready` hands an already connected stream to hyper-util's
//! connectors, which expect to dial through an inner `Service<Uri>`.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::Uri;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Enough for any proxy's handshake answer (hyper-util reads at most 8 KiB of CONNECT head).
const RECORD_LIMIT: usize = 16 * 1024;

/// What the proxy sent during the handshake.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answer(Arc<Mutex<Vec<u8>>>);

impl Answer {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, bytes: &[u8]) {
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let room = RECORD_LIMIT.saturating_sub(log.len());
        log.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// A stream that records every byte read from it. Used only during the handshake; the connector
/// unwraps it before the stream is handed out.
#[derive(Debug)]
pub(crate) struct Recorder<S> {
    inner: S,
    answer: Answer,
    /// Coalescing on: writes wait here until the next read or flush, so messages written one
    /// after another without waiting for an answer leave in one write.
    pending: Option<Vec<u8>>,
}

impl<S> Recorder<S> {
    pub(crate) fn new(inner: S) -> (Self, Answer) {
        let answer = Answer::default();
        (
            Self {
                inner,
                answer: answer.clone(),
                pending: None,
            },
            answer,
        )
    }

    /// Holds writes back until the next read or flush (the optimistic SOCKS5 handshake).
    pub(crate) fn coalesce_writes(mut self) -> Self {
        self.pending = Some(Vec::new());
        self
    }

    /// The stream. Every write has left by then: the handshake ends with a read.
    pub(crate) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncWrite + Unpin> Recorder<S> {
    /// Writes out what coalescing held back.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while !pending.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    pending.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_pending(cx))?;
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            this.answer.push(&buf.filled()[before..]);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.pending.as_mut() {
            Some(pending) => {
                pending.extend_from_slice(buf);
                Poll::Ready(Ok(buf.len()))
            }
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A connector that "dials" by handing over a stream we connected ourselves, so TCP and TLS to
/// the proxy stay under our timeouts and errors, and hyper-util does only the proxy protocol.
pub(crate) struct Ready<T>(Option<T>);

impl<T> Ready<T> {
    pub(crate) fn new(stream: T) -> Self {
        Self(Some(stream))
    }
}

impl<T> tower_service::Service<Uri> for Ready<T> {
    type Response = T;
    type Error = io::Error;
    type Future = std::future::Ready<Result<T, io::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _proxy: Uri) -> Self::Future {
        std::future::ready(
            self.0
                .take()
                .ok_or_else(|| io::Error::other("proxy connection already used")),
        )
    }
}
