//! One pass over a JSON array payload: checks that it is valid JSON no deeper than the limit and
//! finds where its top-level elements start and end, without building anything.
//!
//! Every EVENT and ACK goes through here, so this replaces what used to be two passes (a depth
//! scan, then serde_json walking each element as a `RawValue`) by one. It accepts exactly what
//! serde_json accepts when it skips a value (`IgnoredAny`): the JSON grammar of RFC 8259, with
//! `\u` escapes checked for four hex digits but not for surrogate pairing (that is checked when
//! a handler deserialises the argument into a string). Non-ASCII bytes are only valid inside
//! strings, and the payload must be UTF-8.

use super::DecodeError;

/// Where the elements of a JSON array are.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Start and end of the first element.
    pub(crate) first: Option<(usize, usize)>,
    /// Start of the second element.
    pub(crate) second_start: Option<usize>,
    /// End of the last element.
    pub(crate) last_end: usize,
    /// How many elements.
    pub(crate) count: usize,
    /// Index just after the opening `[`.
    pub(crate) open: usize,
}

/// Scans `json`, which must be one array, nested at most `max_depth` deep (the array itself
/// is depth 1).
pub(crate) fn array(json: &[u8], max_depth: usize) -> Result<Layout, DecodeError> {
    let mut s = Scanner {
        b: json,
        pos: 0,
        stack: Vec::new(),
        max_depth,
    };
    s.skip_ws();
    if s.peek() != Some(b'[') {
        return Err(DecodeError::PayloadNotArray);
    }
    if max_depth == 0 {
        return Err(DecodeError::TooDeep { max: max_depth });
    }
    s.pos += 1;
    let mut layout = Layout {
        open: s.pos,
        last_end: s.pos,
        ..Layout::default()
    };
    s.skip_ws();
    if s.peek() == Some(b']') {
        s.pos += 1;
    } else {
        loop {
            s.skip_ws();
            let start = s.pos;
            s.value()?;
            let end = s.pos;
            match layout.count {
                0 => layout.first = Some((start, end)),
                1 => layout.second_start = Some(start),
                _ => {}
            }
            layout.last_end = end;
            layout.count += 1;
            s.skip_ws();
            match s.peek() {
                Some(b',') => s.pos += 1,
                Some(b']') => {
                    s.pos += 1;
                    break;
                }
                _ => return Err(s.error("`,` or `]` after an array element")),
            }
        }
    }
    s.skip_ws();
    if s.pos != json.len() {
        return Err(s.error("the end of the payload after its array"));
    }
    // Outside strings only ASCII passed the grammar, so this checks the strings' contents.
    if !json.is_ascii() && std::str::from_utf8(json).is_err() {
        return Err(DecodeError::InvalidUtf8);
    }
    Ok(layout)
}

/// The contents of the JSON string `quoted` (with its quotes), when it has no escapes: the
/// common case of an event name, taken without a decoder.
pub(crate) fn plain_string(quoted: &[u8]) -> Option<&[u8]> {
    let inner = quoted.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (!inner.contains(&b'\\')).then_some(inner)
}

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    /// The containers open inside the top-level array: `[` or `{`. Empty (no allocation) for
    /// a flat array of scalars, the common payload.
    stack: Vec<u8>,
    max_depth: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn error(&self, expected: &str) -> DecodeError {
        DecodeError::InvalidPayload(format!(
            "invalid JSON at byte {}: expected {expected}",
            self.pos
        ))
    }

    /// Opens a container: the array itself plus those on the stack give its depth.
    fn open(&mut self, kind: u8) -> Result<(), DecodeError> {
        if self.stack.len() + 2 > self.max_depth {
            return Err(DecodeError::TooDeep {
                max: self.max_depth,
            });
        }
        self.stack.push(kind);
        self.pos += 1;
        Ok(())
    }

    /// One whole value, nested containers included, iteratively (hostile nesting cannot
    /// exhaust the stack; the depth limit bounds `stack`).
    fn value(&mut self) -> Result<(), DecodeError> {
        let base = self.stack.len();
        'value: loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => self.string()?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'[') => {
                    self.open(b'[')?;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        self.stack.pop();
                    } else {
                        continue 'value;
                    }
                }
                Some(b'{') => {
                    self.open(b'{')?;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        self.stack.pop();
                    } else {
                        self.key()?;
                        continue 'value;
                    }
                }
                _ => return Err(self.error("a JSON value")),
            }
            // A value ended: close what it ended, or go on to the next value of its container.
            loop {
                if self.stack.len() == base {
                    return Ok(());
                }
                self.skip_ws();
                match (self.peek(), self.stack.last()) {
                    (Some(b','), Some(b'[')) => {
                        self.pos += 1;
                        continue 'value;
                    }
                    (Some(b','), Some(b'{')) => {
                        self.pos += 1;
                        self.key()?;
                        continue 'value;
                    }
                    (Some(b']'), Some(b'[')) | (Some(b'}'), Some(b'{')) => {
                        self.pos += 1;
                        self.stack.pop();
                    }
                    (_, Some(b'[')) => return Err(self.error("`,` or `]`")),
                    _ => return Err(self.error("`,` or `}`")),
                }
            }
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> Result<(), DecodeError> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.error("a string key"));
        }
        self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.error("`:` after an object key"));
        }
        self.pos += 1;
        Ok(())
    }

    fn string(&mut self) -> Result<(), DecodeError> {
        self.pos += 1;
        loop {
            self.pos += plain_run(self.b.get(self.pos..).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1;
                        }
                        Some(b'u') => {
                            let hex = self.b.get(self.pos + 1..self.pos + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.error("four hex digits after `\\u`"));
                            }
                            self.pos += 5;
                        }
                        _ => return Err(self.error("an escape character after `\\`")),
                    }
                }
                Some(_) => return Err(self.error("no control character inside a string")),
                None => return Err(self.error("the `\"` that ends the string")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let n = self
            .b
            .get(self.pos..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        self.pos += n;
        n
    }

    fn number(&mut self) -> Result<(), DecodeError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("a digit after the decimal point"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("a digit in the exponent"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), DecodeError> {
        if self.b.get(self.pos..self.pos + word.len()) != Some(word) {
            return Err(self.error("`true`, `false` or `null`"));
        }
        self.pos += word.len();
        Ok(())
    }
}

/// How many bytes at the start of `bytes` can be skipped inside a string: neither `"`, a
/// backslash nor a control character.
///
/// Eight bytes per step, tested as one `u64` (string contents are most of a payload's bytes,
/// and a byte-at-a-time loop made this scan the costliest step of decoding an event).
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    /// Whether some byte of `x` is below `n` (`n` at most 128): exact for the word as a whole.
    const fn has_less(x: u64, n: u64) -> bool {
        x.wrapping_sub(ONES.wrapping_mul(n)) & !x & HIGH != 0
    }
    const fn has_byte(x: u64, b: u64) -> bool {
        has_less(x ^ ONES.wrapping_mul(b), 1)
    }
    let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    let mut run = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        if has_less(x, 0x20) || has_byte(x, u64::from(b'"')) || has_byte(x, u64::from(b'\\')) {
            break;
        }
        run += 8;
    }
    let rest = bytes.get(run..).unwrap_or_default();
    run + rest.iter().position(|&b| special(b)).unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json says of the same payload, as `array` must say it: the elements read as
    /// raw values (skipped, then checked for UTF-8), which is what this scanner replaced.
    fn serde_accepts(json: &[u8]) -> bool {
        serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(json).is_ok()
    }

    fn agrees(json: &[u8]) {
        let ours = array(json, 1000);
        let theirs = serde_accepts(json);
        // A non-array is refused by both, ours with its own error.
        assert_eq!(
            ours.is_ok(),
            theirs,
            "{:?}: {ours:?}",
            String::from_utf8_lossy(json)
        );
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        let cases: &[&[u8]] = &[
            b"[]",
            b" [ ] ",
            b"[1]",
            b"[\"echo\",\"hello\"]",
            b"[\"a\",{\"k\":[1,2,{\"x\":null}],\"t\":true,\"f\":false},-0.5e+10,0,1E3]",
            b"[\"\\u00e9\\n\\t\\\"\\\\\\/\\b\\f\\r\"]",
            b"[\"\\ud800\"]",
            b"[\"caf\xc3\xa9\"]",
            b"[\"\xff\"]",
            b"[\"\xc3\"]",
            b"[\xc3\xa9]",
            b"[",
            b"]",
            b"[1,]",
            b"[,1]",
            b"[1 2]",
            b"[01]",
            b"[1.]",
            b"[.5]",
            b"[1e]",
            b"[-]",
            b"[+1]",
            b"[tru]",
            b"[truex]",
            b"[nul]",
            b"[\"a\nb\"]",
            b"[\"a\x01\"]",
            b"[\"\\x\"]",
            b"[\"\\u12\"]",
            b"[\"\\u12g4\"]",
            b"[\"unterminated]",
            b"[{]",
            b"[{}]",
            b"[{\"a\"}]",
            b"[{\"a\":}]",
            b"[{\"a\":1,}]",
            b"[{1:2}]",
            b"[[1],[2,[3]]]",
            b"[[1}]",
            b"[{\"a\":1]}",
            b"[1]x",
            b"[1] ",
            b"[1]\x0c",
            b"\x0c[1]",
            b"[\x0c1]",
            b"{}",
            b"\"s\"",
            b"",
        ];
        for case in cases {
            agrees(case);
        }
    }

    #[test]
    fn finds_the_elements() {
        let json = br#" [ "echo" , {"a":[1]} ,3 ] "#;
        let layout = array(json, 10).unwrap();
        assert_eq!(layout.count, 3);
        assert_eq!(layout.first, Some((3, 9)));
        assert_eq!(layout.second_start, Some(12));
        assert_eq!(&json[12..layout.last_end], br#"{"a":[1]} ,3"#);
        let empty = array(b"[]", 1).unwrap();
        assert_eq!((empty.count, empty.open, empty.last_end), (0, 1, 1));
    }

    #[test]
    fn depth_counts_the_array_itself() {
        assert!(array(b"[1]", 1).is_ok());
        assert_eq!(array(b"[1]", 0), Err(DecodeError::TooDeep { max: 0 }));
        assert!(array(b"[[1],{\"a\":1}]", 2).is_ok());
        assert_eq!(array(b"[[[1]]]", 2), Err(DecodeError::TooDeep { max: 2 }));
        assert_eq!(
            array(b"[{\"a\":{\"b\":1}}]", 2),
            Err(DecodeError::TooDeep { max: 2 })
        );
        // Brackets inside strings are not nesting.
        assert!(array(b"[\"[[[[{{{{\"]", 1).is_ok());
        // Hostile nesting is refused at the limit, without recursion.
        let deep = "[".repeat(100_000);
        assert_eq!(
            array(deep.as_bytes(), 32),
            Err(DecodeError::TooDeep { max: 32 })
        );
    }

    #[test]
    fn string_runs_stop_at_every_offset() {
        // Quotes, escapes and control characters on every offset around the 16-byte steps.
        for before in 0..40 {
            for tail in ["\\\"", "\\\\", "\\u0041", "\n", "\"", "\x1f"] {
                let json = format!("[\"{}{tail}x\"]", "a".repeat(before));
                agrees(json.as_bytes());
            }
        }
    }

    #[test]
    fn random_payloads_get_the_same_verdict_as_serde_json() {
        // Short strings over JSON's own alphabet reach every state of the scanner; an
        // xorshift generator keeps the run the same on every machine.
        const ALPHABET: &[&[u8]] = &[
            b"[",
            b"]",
            b"{",
            b"}",
            b"\"",
            b",",
            b":",
            b"\\",
            b"u",
            b"0",
            b"1",
            b"9",
            b"a",
            b"e",
            b"E",
            b"t",
            b"r",
            b"f",
            b"n",
            b"l",
            b"s",
            b".",
            b"-",
            b"+",
            b" ",
            b"\n",
            b"\x01",
            b"\xc3\xa9",
            b"\xc3",
            b"true",
            b"null",
            b"\"k\":",
            b"[\"",
            b"\"]",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..200_000 {
            let mut json = vec![b'['];
            for _ in 0..next() % 12 {
                let piece = ALPHABET[usize::try_from(next()).unwrap_or(0) % ALPHABET.len()];
                json.extend_from_slice(piece);
            }
            if next() % 4 != 0 {
                json.push(b']');
            }
            let ours = array(&json, 1000).is_ok();
            assert_eq!(
                ours,
                serde_accepts(&json),
                "{:?}",
                String::from_utf8_lossy(&json)
            );
            accepted += usize::from(ours);
        }
        // The generator must reach both verdicts, or the comparison proves little.
        assert!(accepted > 5_000, "only {accepted} valid payloads generated");
    }

    #[test]
    fn plain_strings_are_taken_without_decoding() {
        assert_eq!(plain_string(b"\"echo\""), Some(&b"echo"[..]));
        assert_eq!(plain_string(b"\"e\\u0063ho\""), None);
        assert_eq!(plain_string(b"1"), None);
    }
}
