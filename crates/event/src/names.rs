//! File names as the kernel has them (bytes) carried in `String`s without loss.
//!
//! Linux names are bytes, not text: a share that outlived older systems holds
//! names in Shift-JIS or EUC-JP. A lossy conversion turns those into U+FFFD,
//! and a path that no longer names its file cannot be put back by restore.
//! Events, incidents and vault entries keep paths as `String` (old data stays
//! loadable, traces stay JSON), so every path from the OS is [`encode`]d on
//! the way in and [`decode`]d before anything acts on it.
//!
//! The escape: a byte that is not part of valid UTF-8 becomes `\xNN` (two
//! lower-case hex digits), a literal backslash becomes `\\`; everything else
//! is itself. So a UTF-8 name without backslashes (almost every name) is
//! stored as it is, and the encoded form is printable where the raw bytes
//! would not be. [`decode`] keeps any other backslash literally, so paths
//! stored before this encoding (lossy, never holding `\xNN`) decode to
//! themselves.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// `name`'s bytes as a string that [`decode`] turns back into the same bytes.
pub fn encode(name: impl AsRef<OsStr>) -> String {
    let bytes = name.as_ref().as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The path whose bytes [`encode`] wrote as `text`.
pub fn decode(text: &str) -> PathBuf {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'x') {
                if let Some(b) = bytes.get(i + 2..i + 4).and_then(hex_byte) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

fn hex_byte(digits: &[u8]) -> Option<u8> {
    let [hi, lo] = digits else { return None };
    let digit = |d: &u8| char::from(*d).to_digit(16);
    u8::try_from(digit(hi)? * 16 + digit(lo)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// "請求書.txt" in Shift-JIS.
    const SJIS: &[u8] = b"\x90\xbf\x8b\x81\x8f\x91.txt";

    #[test]
    fn shift_jis_is_escaped_and_comes_back() {
        let name = OsStr::from_bytes(SJIS);
        let text = encode(name);
        assert_eq!(text, "\\x90\\xbf\\x8b\\x81\\x8f\\x91.txt");
        assert_eq!(decode(&text).as_os_str(), name);
    }

    #[test]
    fn backslashes_are_unambiguous() {
        // A name that is literally `\x41` must not come back as `A`.
        let name = OsStr::new("a\\x41\\b");
        assert_eq!(encode(name), "a\\\\x41\\\\b");
        assert_eq!(decode(&encode(name)).as_os_str(), name);
    }

    #[test]
    fn paths_stored_before_decode_to_themselves() {
        let stored = ["/srv/share/請求書.pdf", "/d/\u{fffd}\u{fffd}.txt", "C:\\dir", "/d/a\\", "/d/a\\xZZ", "/d/\\x4"];
        for old in stored {
            assert_eq!(decode(old).as_os_str(), OsStr::new(old), "{old}");
        }
    }

    proptest! {
        #[test]
        fn any_name_round_trips(bytes in proptest::collection::vec(1u8..=255, 0..64)) {
            let name = OsStr::from_bytes(&bytes);
            prop_assert_eq!(decode(&encode(name)), PathBuf::from(name));
        }

        #[test]
        fn text_and_stray_bytes_round_trip(parts in proptest::collection::vec(
            prop_oneof!["[^\u{0}]{0,8}".prop_map(String::into_bytes), proptest::collection::vec(1u8..=255, 0..4)],
            0..8,
        )) {
            let bytes = parts.concat();
            let name = OsStr::from_bytes(&bytes);
            prop_assert_eq!(decode(&encode(name)), PathBuf::from(name));
        }

        #[test]
        fn utf8_without_backslashes_is_itself(text in "[^\\\\\u{0}]{0,32}") {
            prop_assert_eq!(encode(OsStr::new(&text)), text);
        }
    }
}
