//! Running the built `feedproxy` binary, and searching what it printed for a secret.
#![allow(dead_code, unreachable_pub)] // each test file uses part of it

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

/// How long one run may take before the test kills it (by PID) and fails: a hang is a failure,
/// not a stuck suite.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `feedproxy args` with only `env` set (the developer's own CRYPTOFEED_PROXY_* must not
/// leak in), killing it and failing if it runs past the deadline.
pub fn feedproxy(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedproxy"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run feedproxy");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for feedproxy") {
            break status;
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("feedproxy {args:?} still running after {RUN_DEADLINE:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// [`feedproxy`] on a blocking thread, so the test's own servers and proxies keep running.
pub async fn feedproxy_async(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        feedproxy(&args, &env)
    })
    .await
    .expect("feedproxy thread")
}

/// stdout and stderr as text, after checking neither holds `password` in any form a proxy
/// credential takes: plain, percent-encoded, or inside `Basic base64(user:password)`.
pub fn text_without(output: &Output, user: &str, password: &str) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let encoded = feed_sim::secrets::percent_encode(password, true);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    for (name, stream) in [("stdout", &stdout), ("stderr", &stderr)] {
        for form in [password, encoded.as_str(), basic.as_str()] {
            assert!(
                !stream.contains(form),
                "the password appears ({form}) in {name}:\n{stream}"
            );
        }
    }
    (stdout, stderr)
}

/// Writes `body` to `dir/name`; returns the path as a string.
pub fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write file");
    path.to_string_lossy().into_owned()
}

/// The cells of the table row whose first cells are `first` (cells are separated by two or
/// more spaces).
pub fn row<'a>(stdout: &'a str, first: &[&str]) -> Vec<&'a str> {
    stdout
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.len() >= first.len() && cells[..first.len()] == *first)
        .unwrap_or_else(|| panic!("no row starting {first:?} in:\n{stdout}"))
}

/// A test CA, and its root certificate in a PEM file for `--ca-file` (in `dir`, which lives as
/// long as this).
pub struct Trust {
    pub ca: feed_sim::TestCa,
    pub ca_file: String,
    pub dir: tempfile::TempDir,
}

impl Trust {
    pub fn new() -> Self {
        let ca = feed_sim::TestCa::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = write(dir.path(), "ca.pem", &ca.root_pem());
        Self { ca, ca_file, dir }
    }
}

pub use feed_sim::secrets::assert_no_secret;

/// stdout and stderr as text, after [`assert_no_secret`] on each (a stricter
/// [`text_without`]: the user name too, lower-case hex, the `user:password` pair).
pub fn text_without_secret(
    output: &Output,
    what: &str,
    user: &str,
    password: &str,
) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_no_secret(&format!("the stdout of {what}"), &stdout, user, password);
    assert_no_secret(&format!("the stderr of {what}"), &stderr, user, password);
    (stdout, stderr)
}

/// `text` percent-encoded as URL userinfo carries it (everything but RFC 3986 unreserved
/// characters as upper-case `%XX`).
pub fn userinfo_encode(text: &str) -> String {
    feed_sim::secrets::percent_encode(text, true)
}
