//! Fuzz target: settings loaded from YAML text.
//! The body, and the contract it asserts, is `feed_fuzz::settings_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feed_fuzz::settings_yaml(data));
