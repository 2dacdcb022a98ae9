//! Is a head sample human-readable text?
//!
//! Accepts UTF-8 and the two common legacy Japanese encodings (Shift_JIS,
//! EUC-JP), judged by their byte grammar alone: a decoder would be heavier
//! and a grammar check already rejects binary, which is what matters here.

/// At most this share of control characters (in percent) is still text.
const MAX_CONTROL_PERCENT: usize = 1;

pub(crate) fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    let control = head.iter().filter(|&&b| is_control(b)).count();
    if control * 100 > head.len() * MAX_CONTROL_PERCENT {
        return false;
    }
    is_utf8(head) || is_shift_jis(head) || is_euc_jp(head)
}

fn is_control(b: u8) -> bool {
    // Tab, LF, FF, CR and ESC (ISO-2022-JP, terminal colours) occur in text.
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) || b == 0x7f
}

/// Valid UTF-8, allowing one character cut off by the end of the sample.
fn is_utf8(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fn is_shift_jis(head: &[u8]) -> bool {
    let mut i = 0;
    while i < head.len() {
        let b = head[i];
        match b {
            0x00..=0x7f | 0xa1..=0xdf => i += 1,
            0x81..=0x9f | 0xe0..=0xfc => match head.get(i + 1) {
                None => return true,
                Some(0x40..=0x7e | 0x80..=0xfc) => i += 2,
                Some(_) => return false,
            },
            _ => return false,
        }
    }
    true
}

fn is_euc_jp(head: &[u8]) -> bool {
    let trail = |j: usize| head.get(j).map(|&t| (0xa1..=0xfe).contains(&t));
    let mut i = 0;
    while i < head.len() {
        let b = head[i];
        let width = match b {
            0x00..=0x7f => 1,
            // Half-width katakana: SS2 then one byte.
            0x8e => match head.get(i + 1) {
                None => return true,
                Some(0xa1..=0xdf) => 2,
                Some(_) => return false,
            },
            // JIS X 0212: SS3 then two bytes.
            0x8f => 3,
            0xa1..=0xfe => 2,
            _ => return false,
        };
        if width > 1 && b != 0x8e {
            for j in i + 1..i + width {
                match trail(j) {
                    None => return true,
                    Some(false) => return false,
                    Some(true) => {}
                }
            }
        }
        i += width;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_text_in_the_usual_encodings() {
        assert!(looks_like_text(b"Hello, world.\nSecond line\twith tab\r\n"));
        assert!(looks_like_text("日本語のテキストです。\n".as_bytes()));
        // 「日本語」 in Shift_JIS and in EUC-JP.
        assert!(looks_like_text(&[0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea, b'\n']));
        assert!(looks_like_text(&[0xc6, 0xfc, 0xcb, 0xdc, 0xb8, 0xec, b'\n']));
        // A UTF-8 character cut by the sample's end.
        let s = "テキスト".as_bytes();
        assert!(looks_like_text(&s[..s.len() - 1]));
    }

    #[test]
    fn rejects_binary() {
        assert!(!looks_like_text(b"text\0with nul"));
        assert!(!looks_like_text(&[0x01, 0x02, b'a', b'b', 0x03, 0x04]));
        assert!(!looks_like_text(&[0xff, 0xfe, 0xfd, 0x80, 0x80]));
        assert!(!looks_like_text(b""));
    }
}
