//! `delegate_io!`: AsyncRead + AsyncWrite for a two-variant stream enum, each call forwarded to
//! the variant's stream (tokio implements both traits for `Box<T>` too). One definition for `TunnelStream` and
//! `TargetStream`.

macro_rules! delegate_io {
    ($enum:ident { $a:ident, $b:ident }) => {
        impl tokio::io::AsyncRead for $enum {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $enum::$a(s) => std::pin::Pin::new(s).poll_read(cx, buf),
                    $enum::$b(s) => std::pin::Pin::new(s).poll_read(cx, buf),
                }
            }
        }

        impl tokio::io::AsyncWrite for $enum {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                match self.get_mut() {
                    $enum::$a(s) => std::pin::Pin::new(s).poll_write(cx, buf),
                    $enum::$b(s) => std::pin::Pin::new(s).poll_write(cx, buf),
                }
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                match self.get_mut() {
                    $enum::$a(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
                    $enum::$b(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $enum::$a(s) => s.is_write_vectored(),
                    $enum::$b(s) => s.is_write_vectored(),
                }
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $enum::$a(s) => std::pin::Pin::new(s).poll_flush(cx),
                    $enum::$b(s) => std::pin::Pin::new(s).poll_flush(cx),
                }
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $enum::$a(s) => std::pin::Pin::new(s).poll_shutdown(cx),
                    $enum::$b(s) => std::pin::Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

pub(crate) use delegate_io;
