//! A loopback port that refuses connections for as long as it is held.

use std::io;
use std::net::SocketAddr;

/// A TCP port on 127.0.0.1 bound and never listened on: a connect to it is refused, and, unlike a
/// port bound and released again, nothing else can take it while this value lives (tests run in
/// parallel and bind ports of their own).
#[derive(Debug)]
pub struct ClosedPort {
    /// Held only so the port stays taken.
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl ClosedPort {
    /// Binds a free port on 127.0.0.1 without listening.
    pub fn new() -> io::Result<Self> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = socket.local_addr()?;
        Ok(Self {
            _socket: socket,
            addr,
        })
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

#[cfg(test)]
mod tests {
    use super::ClosedPort;

    #[test]
    fn a_connect_is_refused_and_the_port_stays_taken() {
        let closed = ClosedPort::new().expect("closed port");
        let err = std::net::TcpStream::connect(closed.addr()).expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(
            std::net::TcpListener::bind(closed.addr()).is_err(),
            "port taken"
        );
    }
}
