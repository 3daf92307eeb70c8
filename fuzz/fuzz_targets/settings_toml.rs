//! Fuzz target: settings loaded from TOML text.
//! The body, and the contract it asserts, is `feed_fuzz::settings_toml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feed_fuzz::settings_toml(data));
