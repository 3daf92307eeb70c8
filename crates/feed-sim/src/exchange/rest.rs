//! Scripted REST faults of a fake exchange
//! ([`FakeExchangeOptions::rest_faults`](super::FakeExchangeOptions::rest_faults)), answered by
//! the exchange's [`HttpsServer`](crate::https::HttpsServer) as [`Override`]s of its first
//! answers.

use crate::https::{BodyCut, Override, Response};

/// A scripted misbehaviour of a fake exchange's REST API, answered instead of the fixture body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestFault {
    /// Answer `status` (e.g. 429, 500, 503) with a short JSON error body, and `Retry-After: N`
    /// when `retry_after` is `Some(N)`; the connection stays open for the next request.
    Status {
        /// The status code.
        status: u16,
        /// Seconds for a `Retry-After` header, if any.
        retry_after: Option<u64>,
    },
    /// Answer `200` with the `Content-Length` of the whole fixture body, send only its first
    /// half, then close the connection (TLS close_notify, then FIN): a truncated body.
    CloseMidBody,
    /// Answer `200` with the whole body's `Content-Length`, send its first half, then nothing
    /// more and close nothing, as if the exchange had vanished without FIN or RST; the client's
    /// bytes are read and dropped until it closes.
    StallMidBody,
}

/// The JSON error body of a [`RestFault::Status`] answer.
pub(crate) const FAULT_BODY: &str = r#"{"code":-1,"msg":"feed-sim: scripted fault"}"#;

impl RestFault {
    /// What the server answers instead of the route's answer.
    pub(crate) fn to_override(&self) -> Override {
        match self {
            RestFault::Status {
                status,
                retry_after,
            } => {
                let mut response = Response::new(*status, FAULT_BODY)
                    .with_header("Content-Type", "application/json");
                if let Some(seconds) = retry_after {
                    response = response.with_header("Retry-After", seconds.to_string());
                }
                Override::Replace(response)
            }
            RestFault::CloseMidBody => Override::Cut(BodyCut::Close),
            RestFault::StallMidBody => Override::Cut(BodyCut::Stall),
        }
    }
}
