//! Case-insensitive exchange-id keys: hashed and compared as ASCII lower case, looked up by the
//! caller's `&str` as it is, without copying or allocating.

use std::hash::{Hash, Hasher};

use hashbrown::Equivalent;

/// A configured exchange id, lower case, as stored in the exchange table.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct IdKey(Box<[u8]>);

impl IdKey {
    pub(crate) fn new(id: &str) -> Self {
        Self(id.to_ascii_lowercase().into_bytes().into_boxed_slice())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_ascii_lowercase(&self.0, state);
    }
}

/// An exchange id as a caller wrote it (`BINANCE`, `Binance`, `binance`), for lookups.
pub(crate) struct IdQuery<'a>(pub(crate) &'a [u8]);

impl Hash for IdQuery<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_ascii_lowercase(self.0, state);
    }
}

impl Equivalent<IdKey> for IdQuery<'_> {
    /// Equivalent ids lower-case to the same bytes, so they hash alike.
    fn equivalent(&self, key: &IdKey) -> bool {
        lowercase_eq(&key.0, self.0)
    }
}

/// Feeds `bytes`, ASCII-lower-cased, to `state` eight at a time, reading them in place.
/// Lower-casing into a stack buffer and hashing that would be simpler, but the hasher's wide
/// loads from bytes just written one at a time stall on store forwarding (measured in
/// benches/route.rs: it made an upper-case lookup about 1.5 times as slow).
fn hash_ascii_lowercase<H: Hasher>(bytes: &[u8], state: &mut H) {
    let (words, tail) = bytes.as_chunks::<8>();
    for word in words {
        state.write_u64(ascii_lowercase_word(u64::from_le_bytes(*word)));
    }
    // Zero padding lower-cases to itself; the length below tells "a" from "a\0".
    state.write_u64(ascii_lowercase_word(tail_word(tail)));
    state.write_usize(bytes.len());
}

/// `lower == query.to_ascii_lowercase()` for an already lower-case `lower`, eight bytes at a
/// time (`eq_ignore_ascii_case` goes byte by byte and was a third of a lookup's time).
fn lowercase_eq(lower: &[u8], query: &[u8]) -> bool {
    if lower.len() != query.len() {
        return false;
    }
    let (lower_words, lower_tail) = lower.as_chunks::<8>();
    let (query_words, query_tail) = query.as_chunks::<8>();
    lower_words
        .iter()
        .zip(query_words)
        .all(|(l, q)| u64::from_le_bytes(*l) == ascii_lowercase_word(u64::from_le_bytes(*q)))
        && tail_word(lower_tail) == ascii_lowercase_word(tail_word(query_tail))
}

/// The last 0 to 7 bytes as one little-endian word, zero-padded, built in a register.
fn tail_word(tail: &[u8]) -> u64 {
    tail.iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// `to_ascii_lowercase` on each of the eight bytes of `word` at once: `A..=Z` gain 0x20, every
/// other byte (including non-ASCII ones) is unchanged.
fn ascii_lowercase_word(word: u64) -> u64 {
    const LANES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Each lane's low seven bits plus a bias sets the lane's high bit exactly when the sum
    // crosses 0x80; lanes cannot carry into each other because 0x7f + bias < 0x100.
    let low = word & !HIGH;
    let at_least_a = low + (0x80 - u64::from(b'A')) * LANES;
    let above_z = low + (0x80 - u64::from(b'Z') - 1) * LANES;
    let upper = at_least_a & !above_z & !word & HIGH;
    word | (upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_eq_agrees_with_eq_ignore_ascii_case() {
        let ids = [
            "",
            "a",
            "okx",
            "binance",
            "binance_",
            "binance_futures",
            "binance_futures_x",
            "gate.io",
        ];
        for id in ids {
            let lower = id.as_bytes();
            let variants = [
                id.to_owned(),
                id.to_ascii_uppercase(),
                format!("{id}x"),
                format!("x{id}"),
                id.replace('a', "\u{e1}"),
                id.replace('_', "\u{7f}"),
                id.replace('e', "E"),
            ];
            for query in ids.iter().map(|s| s.to_string()).chain(variants) {
                assert_eq!(
                    lowercase_eq(lower, query.as_bytes()),
                    lower.eq_ignore_ascii_case(query.as_bytes()),
                    "{id:?} vs {query:?}"
                );
            }
        }
    }

    #[test]
    fn word_lowercase_matches_byte_lowercase_for_every_byte_in_every_lane() {
        for lane in 0..8 {
            for byte in 0..=255u8 {
                // Surround the byte with neighbours that are upper case, lower case and high.
                for filler in [b'A', b'z', b'Z', 0x80, 0xff, 0] {
                    let mut bytes = [filler; 8];
                    bytes[lane] = byte;
                    let expected = u64::from_le_bytes(bytes.map(|b| b.to_ascii_lowercase()));
                    let got = ascii_lowercase_word(u64::from_le_bytes(bytes));
                    assert_eq!(
                        got, expected,
                        "lane {lane} byte {byte:#04x} filler {filler:#04x}"
                    );
                }
            }
        }
    }
}
