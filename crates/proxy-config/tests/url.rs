//! Table tests of proxy URL parsing: what is accepted, how it is normalized, and the exact message
//! of every rejection.

use proxy_config::{ProxyHost, ProxyScheme, ProxyUrl};
use rstest::rstest;
use std::net::{Ipv4Addr, Ipv6Addr};

fn domain(name: &str) -> ProxyHost {
    ProxyHost::Domain(name.to_owned())
}

#[rstest]
#[case(
    "http://proxy.example:8080",
    ProxyScheme::Http,
    domain("proxy.example"),
    8080,
    None,
    None
)]
#[case(
    "HTTP://Proxy.Example:3128/",
    ProxyScheme::Http,
    domain("proxy.example"),
    3128,
    None,
    None
)]
#[case(
    "https://proxy.example:443",
    ProxyScheme::Https,
    domain("proxy.example"),
    443,
    None,
    None
)]
#[case(
    "http://127.0.0.1:1",
    ProxyScheme::Http,
    ProxyHost::Ipv4(Ipv4Addr::LOCALHOST),
    1,
    None,
    None
)]
#[case(
    "http://[::1]:65535",
    ProxyScheme::Http,
    ProxyHost::Ipv6(Ipv6Addr::LOCALHOST),
    65535,
    None,
    None
)]
#[case(
    "https://[2001:db8::7]:8443",
    ProxyScheme::Https,
    ProxyHost::Ipv6("2001:db8::7".parse().expect("valid IPv6")),
    8443,
    None,
    None
)]
#[case(
    "http://us%40er:p%3Ass@host:8080",
    ProxyScheme::Http,
    domain("host"),
    8080,
    Some("us@er"),
    Some("p:ss")
)]
#[case(
    "http://user@host:8080",
    ProxyScheme::Http,
    domain("host"),
    8080,
    Some("user"),
    None
)]
#[case(
    "http://user:@host:8080",
    ProxyScheme::Http,
    domain("host"),
    8080,
    Some("user"),
    Some("")
)]
#[case(
    "http://a:b@c@host:8080",
    ProxyScheme::Http,
    domain("host"),
    8080,
    Some("a"),
    Some("b@c")
)]
#[case(
    "http://u:%F0%9F%94%91@host:1",
    ProxyScheme::Http,
    domain("host"),
    1,
    Some("u"),
    Some("\u{1f511}")
)]
#[case(
    "  http://host:8080\n",
    ProxyScheme::Http,
    domain("host"),
    8080,
    None,
    None
)]
#[case(
    "http://my_proxy-1.corp.:8080",
    ProxyScheme::Http,
    domain("my_proxy-1.corp"),
    8080,
    None,
    None
)]
#[case(
    "http://host:08080",
    ProxyScheme::Http,
    domain("host"),
    8080,
    None,
    None
)]
#[cfg_attr(
    feature = "socks",
    case(
        "socks4://10.0.0.1:1080",
        ProxyScheme::Socks4,
        ProxyHost::Ipv4(Ipv4Addr::new(10, 0, 0, 1)),
        1080,
        None,
        None
    )
)]
#[cfg_attr(
    feature = "socks",
    case(
        "socks4a://gw:1080",
        ProxyScheme::Socks4a,
        domain("gw"),
        1080,
        None,
        None
    )
)]
#[cfg_attr(
    feature = "socks",
    case(
        "socks5://u:p@[::1]:1080",
        ProxyScheme::Socks5,
        ProxyHost::Ipv6(Ipv6Addr::LOCALHOST),
        1080,
        Some("u"),
        Some("p")
    )
)]
#[cfg_attr(
    feature = "socks",
    case(
        "SOCKS5H://gw:1080",
        ProxyScheme::Socks5h,
        domain("gw"),
        1080,
        None,
        None
    )
)]
fn valid_urls(
    #[case] input: &str,
    #[case] scheme: ProxyScheme,
    #[case] host: ProxyHost,
    #[case] port: u16,
    #[case] user: Option<&str>,
    #[case] password: Option<&str>,
) {
    let url: ProxyUrl = input.parse().expect("valid URL");
    assert_eq!(url.scheme(), scheme);
    assert_eq!(url.host(), &host);
    assert_eq!(url.port(), port);
    assert_eq!(url.username().map(|s| s.expose()), user);
    assert_eq!(url.password().map(|s| s.expose()), password);
    // Display is scheme://host:port, nothing else.
    assert_eq!(url.to_string(), format!("{}://{}:{}", scheme, host, port));
    // Parsing the display form gives the same address without credentials.
    let again: ProxyUrl = url.to_string().parse().expect("display form parses");
    assert_eq!(
        (again.scheme(), again.host(), again.port()),
        (scheme, &host, port)
    );
}

#[cfg(feature = "socks")]
const SCHEMES: &str = "http, https, socks4, socks4a, socks5, socks5h";
#[cfg(not(feature = "socks"))]
const SCHEMES: &str = "http, https (socks4, socks4a, socks5 and socks5h need the `socks` feature)";

#[rstest]
#[case(
    "",
    "empty proxy URL; expected scheme://host:port with scheme one of {S}"
)]
#[case(
    "invalid-url",
    "missing scheme in proxy URL; expected scheme://host:port with scheme one of {S}"
)]
#[case(
    "proxy.example:8080",
    "missing scheme in proxy URL; expected scheme://host:port with scheme one of {S}"
)]
#[case(
    "user:secret@host:8080",
    "missing scheme in proxy URL; expected scheme://host:port with scheme one of {S}"
)]
#[case(
    "://host:8080",
    "malformed scheme in proxy URL; expected scheme://host:port with scheme one of {S}"
)]
#[case(
    "1http://host:8080",
    "malformed scheme in proxy URL; expected scheme://host:port with scheme one of {S}"
)]
#[case(
    "ftp://proxy.example:21",
    "unsupported proxy scheme \"ftp\"; expected one of {S}"
)]
#[case(
    "FTP://u:secret@proxy.example:21",
    "unsupported proxy scheme \"ftp\"; expected one of {S}"
)]
#[case(
    "socks6://gw:1080",
    "unsupported proxy scheme \"socks6\"; expected one of {S}"
)]
#[case(
    "http://proxy.example",
    "missing port in proxy URL; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case(
    "http://proxy.example:",
    "missing port in proxy URL; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case(
    "http://[::1]",
    "missing port in proxy URL; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case(
    "http://host:0",
    "port 0 out of range; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case(
    "http://host:65536",
    "port of 5 digits out of range; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case(
    "http://host:808080",
    "port of 6 digits out of range; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case(
    "http://host:99999999999999999999",
    "port of 20 digits out of range; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
// A numeric password whose `@host:port` is missing is not quoted, however short.
#[case(
    "http://alice:654321",
    "port of 6 digits out of range; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case(
    "http://alice:31415926535",
    "port of 11 digits out of range; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case(
    "http://host:80a",
    "invalid port in proxy URL: not a number; the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case(
    "http://:8080",
    "missing host in proxy URL; expected a DNS name, an IPv4 address or a bracketed IPv6 address such as [::1]"
)]
#[case(
    "http://u:secret@:8080",
    "missing host in proxy URL; expected a DNS name, an IPv4 address or a bracketed IPv6 address such as [::1]"
)]
#[case(
    "http://ho st:8080",
    "invalid proxy host \"ho st\"; expected a DNS name, an IPv4 address or a bracketed IPv6 address such as [::1]"
)]
#[case(
    "http://999.1.1.1:8080",
    "invalid proxy host \"999.1.1.1\"; expected a DNS name, an IPv4 address or a bracketed IPv6 address such as [::1]"
)]
#[case(
    "http://[::g]:8080",
    "invalid proxy host \"[::g]\"; expected a DNS name, an IPv4 address or a bracketed IPv6 address such as [::1]"
)]
#[case(
    "http://::1:8080",
    "IPv6 proxy host must be in brackets; write it as scheme://[2001:db8::1]:PORT"
)]
#[case(
    "http://host:8080/path",
    "unexpected path, query or fragment in proxy URL; a proxy URL is only scheme://[user:password@]host:port"
)]
#[case(
    "http://host:8080?x=1",
    "unexpected path, query or fragment in proxy URL; a proxy URL is only scheme://[user:password@]host:port"
)]
#[case(
    "http://user:pa/ss@host:8080",
    "credentials in proxy URL contain a reserved character; percent-encode '@', ':', '/', '?', '#' and '%' in the user name and password (e.g. %40 for '@')"
)]
#[case(
    "http://user:pa#ss@host:8080",
    "credentials in proxy URL contain a reserved character; percent-encode '@', ':', '/', '?', '#' and '%' in the user name and password (e.g. %40 for '@')"
)]
#[case(
    "http://u:%FF@host:8080",
    "credentials in proxy URL are not valid UTF-8 after percent-decoding; percent-encode '@', ':', '/', '?', '#' and '%' in the user name and password (e.g. %40 for '@')"
)]
#[case(
    "http://:secret@host:8080",
    "empty user name in proxy URL; write user:password@ before the host, or no @ at all"
)]
#[cfg_attr(
    feature = "socks",
    case(
        "socks4://user:secret@gw:1080",
        "socks4 proxies do not support credentials; use socks5:// or socks5h:// for user name and password authentication"
    )
)]
#[cfg_attr(
    feature = "socks",
    case(
        "socks4a://user@gw:1080",
        "socks4a proxies do not support credentials; use socks5:// or socks5h:// for user name and password authentication"
    )
)]
fn invalid_urls(#[case] input: &str, #[case] expected: &str) {
    let err = input.parse::<ProxyUrl>().expect_err("must be rejected");
    let expected = expected.replace("{S}", SCHEMES);
    let message = match err.hint() {
        Some(hint) => format!("{err}; {hint}"),
        None => err.to_string(),
    };
    assert_eq!(message, expected);
    assert!(!message.contains("secret"), "{message}");
}

#[cfg(not(feature = "socks"))]
#[rstest]
#[case("socks4://gw:1080", "socks4")]
#[case("socks4a://gw:1080", "socks4a")]
#[case("socks5://u:secret@gw:1080", "socks5")]
#[case("socks5h://gw:1080", "socks5h")]
fn socks_needs_the_feature(#[case] input: &str, #[case] scheme: &str) {
    let err = input.parse::<ProxyUrl>().expect_err("socks is off");
    assert_eq!(
        err.to_string(),
        format!(
            "proxy scheme \"{scheme}\" needs the `socks` feature, which this build does not enable"
        )
    );
    assert_eq!(
        err.hint().as_deref(),
        Some(
            "rebuild with the `socks` feature (on by default) or use an http:// or https:// proxy"
        )
    );
}

#[test]
fn debug_redacts_credentials() {
    let url: ProxyUrl = "http://alice:s3cr3t@host:8080".parse().expect("valid");
    let debug = format!("{url:?}");
    assert!(
        !debug.contains("alice") && !debug.contains("s3cr3t"),
        "{debug}"
    );
    assert!(debug.contains("***"), "{debug}");
    assert_eq!(url.to_string(), "http://host:8080");
    assert_eq!(
        serde_json::to_string(&url).expect("serializes"),
        "\"http://host:8080\""
    );
}

/// RFC 1929 carries at most 255 bytes of user name and of password, counted after
/// percent-decoding; http proxies have no such limit.
#[cfg(feature = "socks")]
#[test]
fn socks5_credentials_longer_than_255_bytes_are_rejected() {
    let long = "p".repeat(256);
    let encoded_255 = "%70".repeat(255);
    let encoded_256 = "%70".repeat(256);
    for (url, expected) in [
        (
            format!("socks5://{long}:pw@gw:1080"),
            Some("socks5 user name is longer than 255 bytes"),
        ),
        (
            format!("socks5h://user:{long}@gw:1080"),
            Some("socks5 password is longer than 255 bytes"),
        ),
        (
            format!("socks5h://user:{encoded_256}@gw:1080"),
            Some("socks5 password is longer than 255 bytes"),
        ),
        (
            format!("socks5h://{}:{}@gw:1080", &long[..255], &long[..255]),
            None,
        ),
        (format!("socks5h://user:{encoded_255}@gw:1080"), None),
        (format!("http://user:{long}{long}@proxy:8080"), None),
    ] {
        match (url.parse::<ProxyUrl>(), expected) {
            (Err(err), Some(expected)) => {
                let message = format!("{err}; {}", err.hint().unwrap_or_default());
                assert!(message.starts_with(expected), "{message}");
                assert!(message.contains("RFC 1929"), "{message}");
                assert!(!message.contains("pppp"), "{message}");
            }
            (Ok(_), None) => {}
            (result, expected) => panic!("{}: {result:?}, expected {expected:?}", &url[..20]),
        }
    }
}
