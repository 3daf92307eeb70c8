//! Fuzz target: the WebSocket upgrade answer check.
//! The body, and the contract it asserts, is `feed_fuzz::ws_upgrade`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| feed_fuzz::ws_upgrade(data));
