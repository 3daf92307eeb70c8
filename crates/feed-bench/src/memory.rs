//! Item 7: resident memory per idle proxied WSS connection, 1,000 connections through one SOCKS5
//! proxy. Three processes, so each figure is the client's alone: a server process (the WSS
//! server and the relays, `--serve-memory`), and one client process per arm
//! (`--memory-client`), which opens the connections, leaves them idle, and reports how much its
//! resident memory (VmRSS) grew per connection. The direct arm (through the relay, no
//! handshake) is the baseline.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use feed_sim::TestCa;
use proxy_resolve::Route;
use proxy_ws::WsOptions;

use crate::Options;
use crate::relay::{Mode, Relay};
use crate::server::{Blaster, path};
use crate::table::{Row, Table, verdict};
use crate::throughput::{EXCHANGE, proxy_route};

/// Kills the child on drop (by PID, through its handle) if it has not exited.
struct Reaped(Child);

/// A `--serve-memory` child: its handle (killed on drop), the CA PEM it wrote, and its
/// `BLASTER DIRECT SOCKS5` addresses.
pub(crate) struct ServerProcess {
    // Dropped in this order: the child is killed before its directory goes.
    child: Reaped,
    _dir: TempDir,
    pub(crate) pem_path: String,
    pub(crate) addrs: [String; 3],
}

impl ServerProcess {
    /// Starts the server process and waits for its addresses.
    pub(crate) fn start() -> io::Result<Self> {
        let exe = std::env::current_exe()?;
        let dir = std::env::temp_dir().join(format!("feed-bench-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Removed on every return from here on, an early error's too.
        let dir = TempDir(dir);
        let pem_path = dir.0.join("ca.pem").to_string_lossy().into_owned();
        let mut child = Reaped(
            Command::new(&exe)
                .args(["--serve-memory", &pem_path])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?,
        );
        let mut line = String::new();
        let stdout = child
            .0
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        BufReader::new(stdout).read_line(&mut line)?;
        let addrs: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let addrs: [String; 3] = addrs
            .try_into()
            .map_err(|_| io::Error::other(format!("server said {line:?}")))?;
        Ok(Self {
            child,
            _dir: dir,
            pem_path,
            addrs,
        })
    }

    /// The child's process id (for `taskset`, `perf -p`).
    pub(crate) fn pid(&self) -> u32 {
        self.child.0.id()
    }
}

/// A directory removed with everything in it on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--serve-memory PEM_PATH`: writes the test CA to PEM_PATH, prints `BLASTER DIRECT SOCKS5`
/// addresses on one line, serves until stdin closes.
pub(crate) fn serve(pem_path: &str) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let ca = TestCa::new();
    std::fs::write(pem_path, ca.root_pem())?;
    let (_blaster, _direct, _socks5) = runtime.block_on(async {
        let blaster = Blaster::start(ca.server_config(&["127.0.0.1"])).await?;
        let direct = Relay::start(Mode::Direct, blaster.addr(), Duration::ZERO).await?;
        #[cfg(feature = "socks")]
        let socks5 =
            Relay::start(Mode::Socks5 { auth: false }, blaster.addr(), Duration::ZERO).await?;
        #[cfg(not(feature = "socks"))]
        let socks5 = Relay::start(
            Mode::Connect { auth: false },
            blaster.addr(),
            Duration::ZERO,
        )
        .await?;
        println!("{} {} {}", blaster.addr(), direct.addr(), socks5.addr());
        io::stdout().flush()?;
        io::Result::Ok((blaster, direct, socks5))
    })?;
    // Serve until the parent closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    drop(runtime);
    Ok(())
}

/// `--memory-client ARM COUNT PEM_PATH BLASTER RELAY`: opens COUNT idle WebSockets (ARM `direct`
/// through the relay as if it were the exchange, `socks5` through it as a proxy) and prints the
/// VmRSS growth per connection in bytes.
pub(crate) fn client(args: &[String]) -> io::Result<f64> {
    let [arm, count, pem_path, blaster, relay] = args else {
        return Err(io::Error::other(
            "--memory-client ARM COUNT PEM BLASTER RELAY",
        ));
    };
    let count: usize = count.parse().map_err(io::Error::other)?;
    let pem = std::fs::read(pem_path)?;
    let tls = proxy_tunnel::TlsOptions::new()
        .without_webpki_roots()
        .with_ca_pem(&pem)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let options = WsOptions {
        tls,
        ..WsOptions::default()
    };
    let (url, route) = match arm.as_str() {
        "direct" => (format!("wss://{relay}{}", path(0, 0)), Route::Direct),
        // Without the socks feature the server's second relay speaks CONNECT.
        "socks5" | "connect" => (
            format!("wss://{blaster}{}", path(0, 0)),
            proxy_route(&format!(
                "{}://{relay}",
                if arm == "socks5" { "socks5" } else { "http" }
            ))?,
        ),
        other => return Err(io::Error::other(format!("unknown arm {other}"))),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // One connection first, so one-time costs (TLS config, runtime, allocator arenas) are
        // in the baseline, not spread over the others.
        let first = proxy_ws::connect(&url, route.clone(), EXCHANGE, &options)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        let before = rss_bytes();
        let mut open = Vec::with_capacity(count);
        for _ in 0..count {
            let ws = proxy_ws::connect(&url, route.clone(), EXCHANGE, &options)
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            open.push(ws);
        }
        // Let the kernel and the tasks settle: the connections are idle now.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = rss_bytes();
        drop((first, open));
        Ok(after.saturating_sub(before) as f64 / count as f64)
    })
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let kib = line.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?;
                kib.trim().parse::<u64>().ok()
            })
        })
        .map_or(0, |kib| kib * 1024)
}

/// The table rows: bytes per idle connection, direct and SOCKS5, and their ratio.
pub(crate) fn run(options: &Options, table: &mut Table) -> io::Result<()> {
    let count = if options.quick { 200 } else { 1000 };
    let limit = raise_nofile();
    let exe = std::env::current_exe()?;
    let server = ServerProcess::start()?;
    let pem_arg = server.pem_path.clone();
    let [blaster, direct, socks5] = &server.addrs;
    let mut per_conn = Vec::new();
    let proxied_arm = if cfg!(feature = "socks") {
        "socks5"
    } else {
        "connect"
    };
    for (arm, relay) in [("direct", direct), (proxied_arm, socks5)] {
        let output = Command::new(&exe)
            .args([
                "--memory-client",
                arm,
                &count.to_string(),
                &pem_arg,
                blaster,
                relay,
            ])
            .stderr(Stdio::inherit())
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let bytes: f64 = text
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("{arm} client said {text:?}")))?;
        per_conn.push((arm, bytes));
    }
    drop(server);
    for (arm, bytes) in &per_conn {
        let proxied = *arm != "direct";
        table.push(Row {
            bench: "memory".to_owned(),
            arms: format!("idle WSS connection, {arm}"),
            figure: format!(
                "{:.1} KiB per connection (VmRSS growth over {count}; {limit})",
                bytes / 1024.0
            ),
            ratio: None,
            bar: if proxied {
                "<= 64 KiB (aim)"
            } else {
                "(baseline)"
            }
            .to_owned(),
            verdict: if proxied {
                verdict(*bytes <= 64.0 * 1024.0)
            } else {
                crate::table::Verdict::Report
            },
        });
    }
    if let [(_, direct), (_, socks5)] = per_conn.as_slice() {
        table.push(Row {
            bench: "memory".to_owned(),
            arms: format!("{proxied_arm} / direct per idle connection"),
            figure: format!("{:.1} KiB vs {:.1} KiB", socks5 / 1024.0, direct / 1024.0),
            ratio: Some(socks5 / direct),
            bar: "(report)".to_owned(),
            verdict: crate::table::Verdict::Report,
        });
    }
    Ok(())
}

/// Raises the soft open-files limit to the hard one (the client children inherit it); says what
/// it is now.
fn raise_nofile() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the pointer, which points at one; setrlimit
    // reads one from it.
    #[allow(unsafe_code)] // resource limits have no safe std API; two FFI calls
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return "open-files limit unknown".to_owned();
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
    };
    if raised {
        format!("open-files limit {}", limit.rlim_cur)
    } else {
        "open-files limit not raised".to_owned()
    }
}
