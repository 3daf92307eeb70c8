//! Fuzz target: Binance exchangeInfo parsing.
//! The body, and the contract it asserts, is `feed_fuzz::binance_metadata`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feed_fuzz::binance_metadata(data));
