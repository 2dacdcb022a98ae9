//! Turning the bytes of a note into the one form every text marker is
//! matched against: decoded, HTML tags dropped, lower case, curly quotes made
//! straight, runs of white space folded to one space. Markers in the catalog
//! go through the same [`normalize`], so the data can be written naturally.

/// Decodes a note's bytes, or `None` when they do not look like text (an
/// encrypted file, an image). `truncated` says the bytes are a prefix of a
/// longer file, so a character cut at the end is not a sign of binary data.
pub fn decode(bytes: &[u8], truncated: bool) -> Option<String> {
    if let Some(rest) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        return utf8(rest, truncated);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
        return utf16(rest, u16::from_be_bytes);
    }
    // Windows notes are often UTF-16 without a byte order mark: ASCII text
    // then has a zero in every other byte.
    let head = &bytes[..bytes.len().min(4096)];
    let zeros_at = |start: usize| head.iter().skip(start).step_by(2).filter(|&&b| b == 0).count();
    if head.len() >= 8 {
        if zeros_at(1) > head.len() / 4 && zeros_at(0) == 0 {
            return utf16(bytes, u16::from_le_bytes);
        }
        if zeros_at(0) > head.len() / 4 && zeros_at(1) == 0 {
            return utf16(bytes, u16::from_be_bytes);
        }
    }
    utf8(bytes, truncated).or_else(|| latin1(bytes))
}

/// Invalid sequences are replaced as long as they are rare: notes pasted
/// together from several sources carry the odd broken character.
fn utf8(bytes: &[u8], truncated: bool) -> Option<String> {
    let bytes = match std::str::from_utf8(bytes) {
        // A prefix may end inside a character; at most three bytes are lost.
        Err(e) if truncated && e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    };
    let text = String::from_utf8_lossy(bytes);
    let broken = text.matches(char::REPLACEMENT_CHARACTER).count();
    (broken * 100 <= text.len() && plausible(&text)).then(|| text.into_owned())
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    let text: String = char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect();
    plausible(&text).then_some(text)
}

/// Legacy single-byte notes (Windows-1252 and the like): accepted only when
/// nearly all bytes are printable ASCII, so random data never passes.
fn latin1(bytes: &[u8]) -> Option<String> {
    let printable =
        bytes.iter().filter(|&&b| b == b'\t' || b == b'\n' || b == b'\r' || (0x20..0x7f).contains(&b)).count();
    (!bytes.is_empty() && printable * 100 >= bytes.len() * 97).then(|| bytes.iter().map(|&b| char::from(b)).collect())
}

/// Text has no NULs and hardly any other control characters.
fn plausible(text: &str) -> bool {
    let mut chars = 0usize;
    let mut controls = 0usize;
    for c in text.chars() {
        chars += 1;
        if c == '\0' {
            return false;
        }
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c') {
            controls += 1;
        }
    }
    controls * 100 <= chars
}

/// The form text markers are matched in.
pub fn normalize(text: &str) -> String {
    let stripped;
    let text = if looks_like_html(text) {
        stripped = strip_html(text);
        stripped.as_str()
    } else {
        text
    };
    let lower = text.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for word in lower.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().map(|c| match c {
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            c => c,
        }));
    }
    out
}

const HTML_TAGS: [&str; 11] =
    ["html", "body", "div", "br", "p", "span", "head", "style", "script", "table", "!doctype"];

/// Only markup is stripped: a plain note may well contain `<name@host>`.
fn looks_like_html(text: &str) -> bool {
    text.match_indices('<').any(|(at, _)| {
        let after = &text[at + 1..];
        HTML_TAGS.iter().any(|tag| {
            after.len() >= tag.len()
                && after.is_char_boundary(tag.len())
                && after[..tag.len()].eq_ignore_ascii_case(tag)
                && !after[tag.len()..].chars().next().is_some_and(is_word)
        })
    })
}

/// Drops style sheets and tags, decodes the common entities. Script bodies
/// are kept: some HTML notes hold their whole text in a script.
///
/// One pass, so that a note made of millions of unclosed `<style` tags costs
/// no more than a plain one: each search for a tag's end starts where the
/// previous tag ended, and the one search that can reach further (a style
/// sheet's `</style`) is remembered for the tags after it.
fn strip_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut style_ends = StyleEnds::default();
    let mut at = 0;
    while let Some(open) = find_from(text, at, '<') {
        push_decoded(&mut out, &text[at..open]);
        let tag = &text[open..];
        let is_style = starts_with_ci(tag, "<style") && !tag[6..].chars().next().is_some_and(is_word);
        let skip_to = is_style
            .then(|| style_ends.after(text, open))
            .flatten()
            .or_else(|| find_from(text, open, '>').map(|gt| gt + 1));
        match skip_to {
            Some(end) => {
                out.push(' ');
                at = end;
            }
            // A '<' that opens no tag is text, and so is all after it: no
            // '>' follows.
            None => {
                push_decoded(&mut out, tag);
                at = text.len();
            }
        }
    }
    push_decoded(&mut out, &text[at..]);
    out
}

/// Where the style sheet opened at a given place ends: just past the first
/// `>` after the first `</style` that follows. The answer for one opening
/// holds for every later one before that `</style`, so it is kept.
#[derive(Default)]
struct StyleEnds {
    /// The first `</style` at or after the last place asked about (`None`:
    /// there is none), and the end past the `>` after it.
    known: Option<Option<(usize, Option<usize>)>>,
}

impl StyleEnds {
    fn after(&mut self, text: &str, open: usize) -> Option<usize> {
        let stale = match self.known {
            Some(Some((close, _))) => close < open,
            Some(None) => false,
            None => true,
        };
        if stale {
            let close = find_ci_from(text, open, "</style");
            self.known = Some(close.map(|close| (close, find_from(text, close, '>').map(|gt| gt + 1))));
        }
        self.known.flatten().and_then(|(_, end)| end)
    }
}

/// The common entities, decoded in one pass. None is a prefix of another,
/// and what they decode to cannot form a new one, so this gives what
/// replacing them one after the other would.
fn push_decoded(out: &mut String, text: &str) {
    const ENTITIES: [(&str, char); 7] = [
        ("&nbsp;", ' '),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&#39;", '\''),
        ("&apos;", '\''),
        ("&amp;", '&'),
    ];
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let from = &rest[amp..];
        match ENTITIES.iter().find(|(entity, _)| from.starts_with(entity)) {
            Some((entity, plain)) => {
                out.push(*plain);
                rest = &from[entity.len()..];
            }
            None => {
                out.push('&');
                rest = &from[1..];
            }
        }
    }
    out.push_str(rest);
}

fn find_from(text: &str, from: usize, c: char) -> Option<usize> {
    text[from..].find(c).map(|i| from + i)
}

fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.is_char_boundary(prefix.len())
        && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The first place at or after `from` where `needle`, which starts with an
/// ASCII character, is found ignoring ASCII case.
fn find_ci_from(text: &str, from: usize, needle: &str) -> Option<usize> {
    let first = needle.as_bytes()[0];
    let mut at = from;
    while let Some(i) = text.as_bytes()[at..].iter().position(|b| b.eq_ignore_ascii_case(&first)) {
        if starts_with_ci(&text[at + i..], needle) {
            return Some(at + i);
        }
        at += i + 1;
    }
    None
}

pub fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A match of `len` bytes at `start` of `hay` stands alone: it is not the
/// middle of a longer word (so "hive" is not found in "archive"). Edges of
/// the needle that are not word characters need no boundary.
pub fn whole_word(hay: &str, start: usize, len: usize) -> bool {
    let needle = &hay[start..start + len];
    let before = hay[..start].chars().next_back();
    let after = hay[start + len..].chars().next();
    let first = needle.chars().next();
    let last = needle.chars().next_back();
    let joined = |edge: Option<char>, next: Option<char>| edge.is_some_and(is_word) && next.is_some_and(is_word);
    !joined(first, before) && !joined(last, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_without_bom_is_decoded() {
        let bytes: Vec<u8> = "Your files are encrypted\r\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(decode(&bytes, false).as_deref(), Some("Your files are encrypted\r\n"));
    }

    #[test]
    fn html_is_stripped_but_angle_addresses_are_kept() {
        assert_eq!(normalize("<html><style>p{color:red}</style><p>Hello&nbsp;<b>World</b></p>"), "hello world");
        assert_eq!(normalize("Mail <Bob@Example.org>"), "mail <bob@example.org>");
    }

    /// Stripping as it was done before it was made one pass (quadratic in
    /// the number of unclosed `<style` tags), kept as the reference the
    /// one-pass code must agree with.
    fn strip_html_reference(text: &str) -> String {
        let find_ci = |text: &str, needle: &str| {
            text.char_indices().map(|(i, _)| i).find(|&i| starts_with_ci(&text[i..], needle))
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            let tag = &rest[open..];
            let is_style = starts_with_ci(tag, "<style") && !tag[6..].chars().next().is_some_and(is_word);
            let style_end = || find_ci(tag, "</style").and_then(|end| tag[end..].find('>').map(|gt| end + gt + 1));
            let skip = is_style.then(style_end).flatten().or_else(|| tag.find('>').map(|gt| gt + 1));
            match skip {
                Some(len) => {
                    out.push(' ');
                    rest = &tag[len..];
                }
                None => {
                    out.push_str(tag);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        [
            ("&nbsp;", " "),
            ("&lt;", "<"),
            ("&gt;", ">"),
            ("&quot;", "\""),
            ("&#39;", "'"),
            ("&apos;", "'"),
            ("&amp;", "&"),
        ]
        .iter()
        .fold(out, |acc, (entity, plain)| acc.replace(entity, plain))
    }

    fn xorshift(seed: u32) -> impl FnMut() -> u32 {
        let mut x = seed | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        }
    }

    #[test]
    fn one_pass_stripping_agrees_with_the_reference_on_the_collected_notes() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/ransomware-notes"));
        assert!(root.is_dir(), "ransom-note collection not found at {}", root.display());
        let (mut notes, mut html) = (0, 0);
        for family in std::fs::read_dir(root).unwrap().map(Result::unwrap).filter(|e| e.path().is_dir()) {
            for note in std::fs::read_dir(family.path()).unwrap() {
                let path = note.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                let Some(text) = decode(&bytes, false) else { continue };
                notes += 1;
                html += usize::from(looks_like_html(&text));
                assert_eq!(strip_html(&text), strip_html_reference(&text), "{}", path.display());
            }
        }
        assert!(notes >= 150 && html >= 10, "{notes} notes, {html} of them HTML");
    }

    /// Random runs of the pieces the stripper reacts to, so that every
    /// order of openings, closings, style sheets and entities is tried.
    #[test]
    fn one_pass_stripping_agrees_with_the_reference_on_random_markup() {
        const PIECES: [&str; 31] = [
            "<",
            ">",
            "<style",
            "<STYLE>",
            "<style type=x>",
            "<styles>",
            "<style_",
            "<style\u{e9}",
            "</style",
            "</style>",
            "</StYlE >",
            "</styles>",
            "<p>",
            "<!--",
            "-->",
            "<a",
            "&",
            "&amp;",
            "&lt;",
            "&gt;",
            "&nbsp;",
            "&quot;",
            "&#39;",
            "&apos;",
            "amp;",
            "lt;",
            "a",
            " ",
            "\u{e9}",
            "\u{65e5}",
            "\n",
        ];
        let mut next = xorshift(0x5eed);
        for _ in 0..20_000 {
            let len = next() % 40;
            let text: String = (0..len).map(|_| PIECES[next() as usize % PIECES.len()]).collect();
            assert_eq!(strip_html(&text), strip_html_reference(&text), "{text:?}");
        }
    }

    /// Shapes that cost the old stripper time quadratic in their length,
    /// and others that a hostile note could take, at a size the reference
    /// still handles quickly.
    fn pathological(size: usize) -> Vec<String> {
        let times = |piece: &str| piece.repeat(size / piece.len());
        vec![
            format!("<html>{}", times("<style>")),
            format!("<html>{}</style", times("<style>")),
            format!("<html>{}</style>x", times("<style>")),
            format!("<html>{}", times("<style")),
            format!("<html>{}", times("<")),
            format!("<html>{}", times("<a")),
            format!("<html>{}", times("<div><span>")),
            format!("<html><!--{}-->", times("-")),
            format!("<html>{}", times("&amp;")),
            format!("<html><style>{}", times("a")),
        ]
    }

    #[test]
    fn one_pass_stripping_agrees_with_the_reference_on_pathological_markup() {
        for text in pathological(8 * 1024) {
            assert_eq!(strip_html(&text), strip_html_reference(&text), "{:?}", &text[..40]);
        }
    }

    /// Each of these took the old stripper minutes (its time grew with the
    /// square of the number of `<style` tags); finishing at all is the test.
    #[test]
    fn a_mebibyte_of_hostile_markup_is_stripped() {
        for text in pathological(1 << 20) {
            let stripped = strip_html(&text);
            assert!(stripped.len() <= text.len() + 1, "{:?}", &text[..40]);
        }
        let styles = "<style>".repeat((1 << 20) / 7);
        assert_eq!(strip_html(&styles).len(), (1 << 20) / 7);
        assert!(normalize(&format!("<html>{styles}")).is_empty());
    }

    #[test]
    fn random_bytes_are_not_text() {
        let mut x: u32 = 0x1234_5678;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert_eq!(decode(&bytes, false), None);
    }

    #[test]
    fn words_are_not_found_inside_words() {
        assert!(!whole_word("archive", 3, 4));
        assert!(whole_word("the hive team", 4, 4));
        assert!(whole_word("x@y.com.", 0, 7));
    }
}
