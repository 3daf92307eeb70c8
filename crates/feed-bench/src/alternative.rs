//! Item 4: against what a Rust user would pick instead: tokio-tungstenite over tokio-rustls,
//! tunnelled by hyper-util's `SocksV5`, receiving the same stream through the same SOCKS5 relay
//! as feedproxy's `proxy_ws` (whose tunnel also comes from hyper-util's `SocksV5`).

use std::io;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::SocksV5;
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tower_service::Service;

use crate::Options;
use crate::server::path;
use crate::table::Table;
use crate::throughput::{Arm, Rig, SIZES, push_ratio, size_name, start_timer, stop_timer};

impl Rig {
    /// feedproxy's messages/s through SOCKS5 divided by tokio-tungstenite's.
    pub(crate) fn alternative(&self, options: &Options, table: &mut Table) -> io::Result<()> {
        let ours: Arm = self
            .tunnel_arms()?
            .into_iter()
            .find(|arm| arm.name == "SOCKS5")
            .ok_or_else(|| io::Error::other("no SOCKS5 arm"))?;
        for size in SIZES {
            let count =
                self.calibrate(options, size, |count| self.tungstenite_rate(size, count))?;
            let rates = self.interleave(options.pairs(), 2, |arm| match arm {
                0 => self.tungstenite_rate(size, count),
                _ => self.proxy_ws_rate(&ours, size, count),
            })?;
            push_ratio(
                table,
                "vs tokio-tungstenite",
                &format!(
                    "proxy_ws / tokio-tungstenite via SOCKS5, {}",
                    size_name(size)
                ),
                &rates,
                (0, "tokio-tungstenite"),
                (1, "proxy_ws"),
                if size == 64 {
                    ">= 1.2 (aim)"
                } else {
                    "(report)"
                },
                if size == 64 { 1.2 } else { 0.0 },
                "msg/s",
            );
        }
        Ok(())
    }

    /// Messages/s received by tokio-tungstenite through the SOCKS5 relay.
    fn tungstenite_rate(&self, size: usize, count: usize) -> io::Result<f64> {
        let target = self.blaster.addr();
        self.client.block_on(async {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            let proxy: Uri = format!("http://{}", self.socks5_addr())
                .parse()
                .map_err(io::Error::other)?;
            let mut socks = SocksV5::new(proxy, http).local_dns(true);
            futures_util::future::poll_fn(|cx| socks.poll_ready(cx))
                .await
                .map_err(io::Error::other)?;
            let uri: Uri = format!("https://{target}")
                .parse()
                .map_err(io::Error::other)?;
            let tcp = socks
                .call(uri)
                .await
                .map_err(io::Error::other)?
                .into_inner();
            let name = ServerName::IpAddress(target.ip().into());
            let tls = TlsConnector::from(Arc::clone(self.bare_tls()))
                .connect(name, tcp)
                .await?;
            let url = format!("wss://{target}{}", path(size, count));
            let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
                .await
                .map_err(io::Error::other)?;
            ws.send(Message::text("go"))
                .await
                .map_err(io::Error::other)?;
            let timer = start_timer();
            for _ in 0..count {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) if text.len() == size => {}
                    other => return Err(io::Error::other(format!("unexpected {other:?}"))),
                }
            }
            Ok(stop_timer(timer, count))
        })
    }
}
