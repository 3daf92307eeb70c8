//! Fuzz target: settings loaded from a map of environment variables.
//! The body, and the contract it asserts, is `feed_fuzz::settings_env`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feed_fuzz::settings_env(data));
