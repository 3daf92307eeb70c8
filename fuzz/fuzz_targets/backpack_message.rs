//! Fuzz target: Backpack (ccxt-style) WebSocket message parsing.
//! The body, and the contract it asserts, is `feed_fuzz::backpack_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feed_fuzz::backpack_message(data));
