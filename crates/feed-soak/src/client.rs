//! The client side every numbered-stream scenario shares: `WsConn` options trusting the test
//! CA and routed by a `Resolver` built from settings, and one stream read to its end with every
//! message's number checked.

use std::sync::Arc;
use std::time::Duration;

use feed_conn::{ConnOptions, TlsOptions, WsConn, WsConnOptions, WsOptions};
use feed_sim::TestCa;
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::Resolver;

use crate::seq::{Counts, SeqCheck};
use crate::server::parse_message;

/// The exchange id the numbered streams are opened for.
pub(crate) const EXCHANGE: &str = "soak";

/// A read that sees nothing for this long fails instead of waiting for the scenario deadline.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A resolver whose settings send `EXCHANGE`'s WebSocket connections through `proxy_url`.
pub(crate) fn resolver_via(proxy_url: &str) -> Result<Arc<Resolver>, String> {
    let proxy = ProxyConfig::parse(proxy_url).map_err(|e| format!("proxy url: {e}"))?;
    let exchange = ExchangeId::new(EXCHANGE).map_err(|e| e.to_string())?;
    let settings = ProxySettings::default().with_exchange(exchange, ConnectionProxies::both(proxy));
    Ok(Arc::new(Resolver::new(settings)))
}

/// TLS options trusting only the test CA.
pub(crate) fn tls(ca: &TestCa) -> Result<TlsOptions, String> {
    TlsOptions::new()
        .without_webpki_roots()
        .with_ca_pem(ca.root_pem().as_bytes())
        .map_err(|e| format!("test CA: {e}"))
}

/// Options for a numbered stream routed by `resolver`.
pub(crate) fn ws_conn_options(tls: TlsOptions, conn: ConnOptions) -> WsConnOptions {
    WsConnOptions {
        ws: WsOptions {
            tls,
            idle_timeout: Some(IDLE_TIMEOUT),
            ..WsOptions::default()
        },
        conn,
        ..WsConnOptions::default()
    }
}

/// Sends "go", then reads until the server closes, checking that the messages tagged `tag` are
/// numbered `0..count` in order. Returns the counts and, if the stream failed, why.
pub(crate) async fn read_numbered(
    conn: &mut WsConn,
    tag: u64,
    count: u64,
) -> (Counts, Option<String>) {
    let mut check = SeqCheck::new(count);
    if let Err(error) = conn.write("go").await {
        return (check.counts(), Some(error.to_string()));
    }
    let failure = loop {
        match conn.next().await {
            Ok(Some(message)) => match parse_message(&message) {
                Some((from, number)) if from == tag => check.push(number),
                _ => check.push_stray(),
            },
            Ok(None) => break None,
            Err(error) => break Some(error.to_string()),
        }
    };
    conn.close().await;
    (check.counts(), failure)
}
