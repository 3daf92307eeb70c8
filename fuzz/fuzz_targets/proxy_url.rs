//! Fuzz target: proxy URL parsing (ProxyUrl::parse, ProxyConfig::parse, a URL setting).
//! The body, and the contract it asserts, is `feed_fuzz::proxy_url`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feed_fuzz::proxy_url(data));
