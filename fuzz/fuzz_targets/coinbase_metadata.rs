//! Fuzz target: Coinbase products parsing.
//! The body, and the contract it asserts, is `feed_fuzz::coinbase_metadata`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feed_fuzz::coinbase_metadata(data));
