//! Fuzz target: Backpack (ccxt-style) markets parsing.
//! The body, and the contract it asserts, is `feed_fuzz::backpack_metadata`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feed_fuzz::backpack_metadata(data));
