//! A strict, borrowing reader of the flat JSON a feed's fast path reads: one object, plain
//! (unescaped, ASCII) strings, integers, `true`, `false`, `null`, and objects nested where the
//! caller asks for one.
//!
//! Every method returns `None` for anything it does not read, and a `None` means "leave this
//! message to the general path", never "this message is bad": the general path (a
//! `serde_json::Value`) then reads it and gives the exact error. So the scanner may refuse valid
//! JSON (an escaped string, a fraction, an array) but must never accept what the general path
//! rejects or reads differently: no trailing bytes, no leading zeros, no bytes above 0x7F or
//! below 0x20 in a string, no integer the general path would read as a float (but `-0`, only
//! ever skipped, which serde_json reads as the float -0.0, a valid value).

/// A position in one message.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// `None` if `message` is not UTF-8 (validated once here, so strings are slices of it).
    pub(crate) fn new(message: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(message).ok()?;
        Some(Self { text, at: 0 })
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return).
    fn blank(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.blank();
        self.bytes().get(self.at).copied()
    }

    /// Consumes `byte` after whitespace.
    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Consumes `word` (a literal) after whitespace.
    fn literal(&mut self, word: &[u8]) -> bool {
        self.blank();
        let found = self.bytes()[self.at..].starts_with(word);
        if found {
            self.at += word.len();
        }
        found
    }

    /// Nothing but whitespace is left.
    pub(crate) fn end(mut self) -> Option<()> {
        self.blank();
        (self.at == self.bytes().len()).then_some(())
    }

    /// A string of ASCII 0x20-0x7F without escapes.
    pub(crate) fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match *self.bytes().get(self.at)? {
                b'"' => break,
                b'\\' => return None,
                0x20..=0x7f => self.at += 1,
                _ => return None,
            }
        }
        // Only ASCII bytes between two quotes: the slice is on character boundaries.
        let text = self.text.get(start..self.at)?;
        self.at += 1;
        Some(text)
    }

    /// A non-negative integer in JSON's form (no sign, no leading zero, no fraction or
    /// exponent: those leave the next byte unread, which the caller's next `expect` refuses).
    pub(crate) fn uint(&mut self) -> Option<u64> {
        self.blank();
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(&digit @ b'0'..=b'9') = self.bytes().get(self.at) {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes()[start] == b'0';
        (digits > 0 && !leading_zero).then_some(value)
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&mut self) -> Option<bool> {
        if self.literal(b"true") {
            Some(true)
        } else if self.literal(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// Any value this scanner reads, discarded: a string, an integer (negative ones down to
    /// `i64::MIN`, as the general path reads them exactly), `true`, `false` or `null`.
    pub(crate) fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'-' => {
                self.at += 1;
                if !matches!(self.bytes().get(self.at), Some(b'0'..=b'9')) {
                    return None;
                }
                (self.uint()? <= 1 << 63).then_some(())
            }
            b'0'..=b'9' => self.uint().map(drop),
            _ if self.literal(b"true") || self.literal(b"false") || self.literal(b"null") => {
                Some(())
            }
            _ => None,
        }
    }

    /// An object: `field` is called with each key and must consume that key's value.
    pub(crate) fn object(
        &mut self,
        mut field: impl FnMut(&'a str, &mut Self) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            field(key, self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// Sets `slot` to `value` unless it is already set: a repeated key (which the general path reads
/// as its last value) leaves the message to the general path.
pub(crate) fn once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::Scanner;

    /// Reads a whole message the way a fast path does: one object of any keys, values skipped.
    fn flat(text: &str) -> Option<()> {
        let mut scan = Scanner::new(text.as_bytes())?;
        scan.object(|_, scan| scan.skip_value())?;
        scan.end()
    }

    #[test]
    fn reads_flat_objects_with_any_whitespace() {
        for text in [
            "{}",
            " { } ",
            r#"{"a":1,"b":"x","c":true,"d":false,"e":null,"f":-5,"g":0}"#,
            "{\n\t\"a\" : 1 ,\r\n \"b\":\"x\"\n}\n",
            r#"{"big":18446744073709551615,"low":-9223372036854775808}"#,
        ] {
            assert_eq!(flat(text), Some(()), "{text}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_read_exactly() {
        for text in [
            "",
            "{",
            r#"{"a":1}x"#,
            r#"{"a":1}{}"#,
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            r#"{"a" 1}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":-01}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":+1}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":"\u0041"}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"caf\u{e9}\"}",
            r#"{"a":[1]}"#,
            r#"{"a":{}}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{a:1}"#,
            r#"["a",1]"#,
        ] {
            assert_eq!(flat(text), None, "{text}");
        }
        assert!(Scanner::new(b"{\"a\":\"\xff\"}").is_none(), "not UTF-8");
    }

    /// Texts near the scanner's edges: JSON tokens, valid and not, in any order.
    fn near_json() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("{"),
            Just("}"),
            Just("\"a\""),
            Just("\"b\""),
            Just(":"),
            Just(","),
            Just("1"),
            Just("0"),
            Just("01"),
            Just("-1"),
            Just("-"),
            Just("1.5"),
            Just("e5"),
            Just("true"),
            Just("fals"),
            Just("null"),
            Just(" "),
            Just("\n"),
            Just("\"x\\\""),
            Just("["),
            Just("]"),
            Just("18446744073709551616"),
            Just("\"\u{e9}\""),
        ];
        prop_oneof![
            proptest::collection::vec(token, 0..16).prop_map(|tokens| tokens.concat()),
            r#"[ {}":,0-9a-z\-.e\\]{0,40}"#,
        ]
    }

    proptest! {
        /// Whatever the scanner reads, serde_json reads too, to the same keys and values (the
        /// last of a repeated key, as serde_json keeps it).
        #[test]
        fn what_it_reads_serde_json_reads_the_same(text in near_json()) {
            let mut fields = Vec::new();
            let mut scan = Scanner::new(text.as_bytes()).expect("a String is UTF-8");
            let read = scan
                .object(|key, scan| {
                    let value = match scan.peek()? {
                        b'"' => Value::from(scan.string()?),
                        b't' | b'f' => Value::from(scan.boolean()?),
                        b'0'..=b'9' => Value::from(scan.uint()?),
                        _ => {
                            scan.skip_value()?;
                            Value::Null
                        }
                    };
                    fields.push((key.to_owned(), value));
                    Some(())
                })
                .and_then(|()| scan.end());
            if read.is_some() {
                let parsed: Value = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                let object = parsed.as_object().expect("an object");
                let mut seen = std::collections::HashSet::new();
                for (key, value) in fields.into_iter().rev() {
                    if seen.insert(key.clone()) && !value.is_null() {
                        prop_assert_eq!(object.get(&key), Some(&value), "{}", text);
                    }
                }
            }
        }
    }
}
