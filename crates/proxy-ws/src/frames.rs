//! The frame header of a server's frame, parsed from the front of the read buffer (RFC 6455
//! section 5.2). A plain function over bytes: `WsStream` calls it once per frame with no await
//! when the frame is already buffered, which is most frames of a busy stream.

use fastwebsockets::{OpCode, WebSocketError};

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask key.
pub(crate) const MAX_HEAD: usize = 14;

/// The largest payload of a control frame (close, ping, pong).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) fin: bool,
    pub(crate) opcode: OpCode,
    /// Bytes of header in front of the payload.
    pub(crate) head_len: usize,
    /// Bytes of payload.
    pub(crate) payload_len: usize,
}

impl Head {
    /// Header and payload together.
    pub(crate) fn frame_len(&self) -> usize {
        self.head_len + self.payload_len
    }
}

/// Why a header was refused.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// One fastwebsockets names (reserved bits, unknown opcode, fragmented control frame, ping
    /// too large, frame too large).
    Ws(WebSocketError),
    /// A masked frame from the server (RFC 6455 section 5.1).
    Masked,
    /// A close or pong frame over 125 bytes.
    ControlTooLarge,
}

impl From<WebSocketError> for HeadError {
    fn from(error: WebSocketError) -> Self {
        HeadError::Ws(error)
    }
}

/// The header at the front of `buf`: `Ok(None)` while it is incomplete, an error for a header no
/// server may send a client (reserved bits set, an unknown opcode, a masked frame, a fragmented
/// or oversized control frame) or a payload of `max_payload` bytes or more (or so long that
/// header and payload would not fit a `usize`).
pub(crate) fn parse_head(buf: &[u8], max_payload: usize) -> Result<Option<Head>, HeadError> {
    let (first, second) = match buf {
        [first, second, ..] => (*first, *second),
        _ => return Ok(None),
    };
    if first & 0b0111_0000 != 0 {
        return Err(WebSocketError::ReservedBitsNotZero.into());
    }
    let fin = first & 0b1000_0000 != 0;
    let opcode = OpCode::try_from(first & 0b0000_1111)?;
    if second & 0b1000_0000 != 0 {
        // A server must not mask its frames (section 5.1); fastwebsockets passed them on still
        // masked.
        return Err(HeadError::Masked);
    }
    let (head_len, payload_len) = match second & 0b0111_1111 {
        126 => match buf.get(2..4) {
            Some(&[hi, lo]) => (4, usize::from(u16::from_be_bytes([hi, lo]))),
            _ => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(bytes) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                // A length that does not fit usize is over any limit.
                let len = usize::try_from(u64::from_be_bytes(be)).unwrap_or(usize::MAX);
                (10, len)
            }
            None => return Ok(None),
        },
        len => (2, usize::from(len)),
    };
    if matches!(opcode, OpCode::Close | OpCode::Ping | OpCode::Pong) {
        if !fin {
            return Err(WebSocketError::ControlFrameFragmented.into());
        }
        if payload_len > MAX_CONTROL_PAYLOAD {
            return Err(match opcode {
                OpCode::Ping => WebSocketError::PingFrameTooLarge.into(),
                _ => HeadError::ControlTooLarge,
            });
        }
    }
    if payload_len >= max_payload || payload_len > usize::MAX - MAX_HEAD {
        return Err(WebSocketError::FrameTooLarge.into());
    }
    Ok(Some(Head {
        fin,
        opcode,
        head_len,
        payload_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64 << 20;

    fn head(bytes: &[u8]) -> Result<Option<Head>, String> {
        parse_head(bytes, MAX).map_err(|e| match e {
            HeadError::Ws(e) => e.to_string(),
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn lengths_in_all_three_forms() {
        let short = head(&[0x81, 5]).unwrap().unwrap();
        assert_eq!(
            (short.fin, short.opcode, short.head_len, short.payload_len),
            (true, OpCode::Text, 2, 5)
        );
        let medium = head(&[0x02, 126, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!(
            (medium.fin, medium.opcode, medium.frame_len()),
            (false, OpCode::Binary, 4 + 256)
        );
        let long = head(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap().unwrap();
        assert_eq!((long.head_len, long.payload_len), (10, 65536));
    }

    #[test]
    fn incomplete_headers_wait_for_more() {
        for bytes in [
            &[][..],
            &[0x81],
            &[0x81, 126, 1],
            &[0x81, 127, 0, 0, 0, 0, 0, 0, 1],
        ] {
            assert_eq!(head(bytes), Ok(None), "{bytes:?}");
        }
    }

    #[test]
    fn headers_a_server_may_not_send_are_errors() {
        let cases: [(&[u8], &str); 8] = [
            (&[0xc1, 0], "Reserved bits are not zero"),
            (&[0x91, 0], "Reserved bits are not zero"),
            (&[0x83, 0], "Invalid value"),
            (&[0x81, 0x85, 1, 2, 3, 4], "Masked"),
            (&[0x09, 0], "Control frame must not be fragmented"),
            (&[0x89, 126, 0, 126], "Ping frame too large"),
            (&[0x88, 126, 0, 200], "ControlTooLarge"),
            (
                &[0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "Frame too large",
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(head(bytes), Err(error.to_owned()), "{bytes:?}");
        }
    }

    #[test]
    fn the_size_limit_is_exclusive() {
        let accepted = parse_head(&[0x82, 100], 101).map(|h| h.map(|h| h.payload_len));
        assert!(matches!(accepted, Ok(Some(100))), "{accepted:?}");
        assert!(matches!(
            parse_head(&[0x82, 100], 100),
            Err(HeadError::Ws(WebSocketError::FrameTooLarge))
        ));
    }

    /// With no limit at all, a length that would overflow `usize` together with its header is
    /// refused instead of wrapping.
    #[test]
    fn a_length_near_usize_max_is_too_large_even_without_a_limit() {
        let mut bytes = vec![0x82, 127];
        bytes.extend_from_slice(&(usize::MAX as u64 - 5).to_be_bytes());
        assert!(matches!(
            parse_head(&bytes, usize::MAX),
            Err(HeadError::Ws(WebSocketError::FrameTooLarge))
        ));
        let mut bytes = vec![0x82, 127];
        bytes.extend_from_slice(&65536u64.to_be_bytes());
        let head = parse_head(&bytes, usize::MAX)
            .expect("valid")
            .expect("complete");
        assert_eq!(head.frame_len(), 10 + 65536);
    }

    proptest::proptest! {
        /// Any bytes: no panic, and an accepted header never claims more header than the
        /// longest form or a payload over the limit.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..16), limit in 1usize..100_000) {
            if let Ok(Some(head)) = parse_head(&bytes, limit) {
                proptest::prop_assert!(head.head_len <= MAX_HEAD && head.head_len <= bytes.len());
                proptest::prop_assert!(head.payload_len < limit);
            }
        }
    }
}
