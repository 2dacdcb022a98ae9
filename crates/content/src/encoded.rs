//! Ciphertext wearing a text encoding: base64 or hex of random bytes.
//!
//! Some ransomware writes its output base64- or hex-encoded, which keeps the
//! byte entropy near 6 or 4 bits and makes the file look like text. What
//! gives it away is that every symbol of the alphabet is about equally
//! likely, which no natural text, number table or hex dump of structured
//! data achieves.

use crate::entropy::shannon;

/// Shortest sample on which the symbol distribution means something.
const MIN_LEN: usize = 256;
/// How far below log2(alphabet size) the symbol entropy may fall.
const SLACK_BITS: f32 = 0.25;

pub(crate) fn encoded_random(head: &[u8]) -> bool {
    head.len() >= MIN_LEN && (is_random_base64(head) || is_random_hex(head))
}

fn is_random_base64(head: &[u8]) -> bool {
    let mut counts = [0u64; 256];
    let mut symbols = 0;
    for &b in head {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'-' | b'_' => {
                counts[b as usize] += 1;
                symbols += 1;
            }
            b'=' | b'\r' | b'\n' => {}
            _ => return false,
        }
    }
    symbols >= MIN_LEN as u64 && shannon(counts.into_iter(), symbols) >= 6.0 - SLACK_BITS
}

fn is_random_hex(head: &[u8]) -> bool {
    let mut counts = [0u64; 16];
    let mut symbols = 0;
    for &b in head {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return false,
        };
        counts[digit as usize] += 1;
        symbols += 1;
    }
    symbols >= MIN_LEN as u64 && shannon(counts.into_iter(), symbols) >= 4.0 - SLACK_BITS
}
