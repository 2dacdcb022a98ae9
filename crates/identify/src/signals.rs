//! Weak structural signals of a note: which kinds of contact channel it
//! gives (Tox, Session, onion portals, mail providers) and how it labels the
//! victim's id. Another campaign of the same family changes the addresses
//! and ids themselves but seldom the kinds of channel or the id line, so
//! these survive where contacts do not; they are shared by many families,
//! which is why they only ever add to a family's other markers.
//!
//! Everything here is a single left-to-right pass over the normalized text,
//! or a bounded look after each label found: a hostile note costs no more
//! than its length.

use std::collections::BTreeSet;

use crate::text;

/// The channel kinds a catalog may list, besides `mail:DOMAIN`.
pub(crate) const CHANNEL_KINDS: [&str; 5] = ["onion", "onion-v2", "tox", "session", "telegram"];

/// The contact channel kinds a note's text uses, as `families.toml` writes
/// them in a family's `channels`: for deriving them from notes.
pub fn note_channels(note: &str) -> BTreeSet<String> {
    channels(&text::normalize(note))
}

/// The contact channel kinds used by a normalized note.
pub(crate) fn channels(normalized: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = normalized.as_bytes();
    let is_run = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'_' | b'+' | b'-');
    let mut at = 0;
    while at < bytes.len() {
        if !is_run(bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && is_run(bytes[at]) {
            at += 1;
        }
        // Runs are split at any other character, so one that is not ASCII
        // ends a run too: the text is sliced at ASCII bytes only.
        let run = normalized[start..at].trim_matches(|c| c == '.' || c == '-');
        let next = bytes.get(at).copied();
        if let Some(kind) = channel_of(run, next) {
            found.insert(kind);
        }
    }
    if normalized.match_indices("telegram").any(|(at, m)| text::whole_word(normalized, at, m.len())) {
        found.insert("telegram".to_owned());
    }
    found
}

/// What one run of address characters is, given the byte after it.
fn channel_of(run: &str, next: Option<u8>) -> Option<String> {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some((local, domain)) = run.rsplit_once('@') {
        return (!local.is_empty() && is_domain(domain)).then(|| format!("mail:{domain}"));
    }
    if let Some(host) = run.strip_suffix(".onion") {
        let label = host.rsplit('.').next().unwrap_or_default();
        let base32 = label.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
        return match label.len() {
            56 if base32 => Some("onion".into()),
            16 if base32 => Some("onion-v2".into()),
            _ => None,
        };
    }
    if run.len() == 76 && hex(run) {
        return Some("tox".into());
    }
    if run.len() == 66 && run.starts_with("05") && hex(run) {
        return Some("session".into());
    }
    ((run == "t.me" || run == "telegram.me") && next == Some(b'/')).then(|| "telegram".into())
}

/// Letters, digits and hyphens in two or more labels, the last alphabetic.
pub(crate) fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(label_ok)
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Characters between an id line's label and the id.
const LEAD: &str = " :=#>(\"'*-";
/// At most this many of them.
const MAX_LEAD: usize = 8;
/// The longest id an id shape describes.
const MAX_ID: usize = 256;

/// What follows the label of an id line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdShape {
    /// Any id: 6 to [`MAX_ID`] letters, digits and `-_+/=`, at least one a
    /// digit; or the id elided as `[word]`, as notes shared by analysts are.
    Any,
    /// Runs of characters of a class, and separators between them, e.g.
    /// `h32` or `a4-a4-a4`.
    Pieces(Vec<Piece>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Piece {
    /// `h`: hex digits, `d`: digits, `a`: letters or digits; how many.
    Run(u8, usize),
    Separator(u8),
}

impl IdShape {
    /// Parses `any`, or runs such as `h32`, `d4-d4`, `a8_a8` (class letter
    /// and count, separated by `-`, `_`, `.` or `:`).
    pub(crate) fn parse(shape: &str) -> Result<IdShape, String> {
        if shape == "any" {
            return Ok(IdShape::Any);
        }
        let bytes = shape.as_bytes();
        let mut pieces = Vec::new();
        let mut total = 0usize;
        let mut at = 0;
        while at < bytes.len() {
            let b = bytes[at];
            if matches!(b, b'h' | b'd' | b'a') {
                let digits = bytes[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                let count: usize = shape[at + 1..at + 1 + digits]
                    .parse()
                    .map_err(|_| format!("{shape:?}: '{}' needs a count, e.g. h32", b as char))?;
                if count == 0 {
                    return Err(format!("{shape:?}: a run of zero characters"));
                }
                total = total.saturating_add(count);
                pieces.push(Piece::Run(b, count));
                at += 1 + digits;
            } else if matches!(b, b'-' | b'_' | b'.' | b':') && matches!(pieces.last(), Some(Piece::Run(..))) {
                total += 1;
                pieces.push(Piece::Separator(b));
                at += 1;
            } else {
                return Err(format!("{shape:?}: expected `any` or runs like h32, d4-d4, a8_a8"));
            }
        }
        if !matches!(pieces.last(), Some(Piece::Run(..))) {
            return Err(format!("{shape:?}: must end in a run such as h32"));
        }
        if total > MAX_ID {
            return Err(format!("{shape:?}: longer than {MAX_ID} characters"));
        }
        Ok(IdShape::Pieces(pieces))
    }

    /// Whether the id the shape describes starts `rest` (normalized text
    /// just after a label) and stands alone there.
    pub(crate) fn follows(&self, rest: &str) -> bool {
        let lead = rest.bytes().take(MAX_LEAD).take_while(|b| LEAD.as_bytes().contains(b)).count();
        let rest = &rest.as_bytes()[lead..];
        let id_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'=');
        match self {
            IdShape::Any => {
                if let Some(inner) = rest.strip_prefix(b"[") {
                    let word = inner.iter().take(17).take_while(|b| b.is_ascii_lowercase() || **b == b'_').count();
                    return (1..=16).contains(&word) && inner.get(word) == Some(&b']');
                }
                let len = rest.iter().take(MAX_ID + 1).take_while(|b| id_char(**b)).count();
                (6..=MAX_ID).contains(&len) && rest[..len].iter().any(u8::is_ascii_digit)
            }
            IdShape::Pieces(pieces) => {
                let mut at = 0;
                for piece in pieces {
                    match *piece {
                        Piece::Separator(s) => {
                            if rest.get(at) != Some(&s) {
                                return false;
                            }
                            at += 1;
                        }
                        Piece::Run(class, count) => {
                            let fits = |b: &u8| match class {
                                b'h' => b.is_ascii_hexdigit(),
                                b'd' => b.is_ascii_digit(),
                                _ => b.is_ascii_alphanumeric(),
                            };
                            if rest.len() < at + count || !rest[at..at + count].iter().all(fits) {
                                return false;
                            }
                            at += count;
                        }
                    }
                }
                !rest.get(at).copied().is_some_and(id_char)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<String> {
        channels(&text::normalize(text)).into_iter().collect()
    }

    #[test]
    fn channel_kinds_are_told_apart() {
        let tox = "D6C324719AD0AA50A54E4F8DED8E8220D8698DD67B218B5429466C40E7F72657C015D86C7E4A";
        let session = "05cb63af9848ae85a0016581a14a9848d516ed2f9fcb4f98a081363c48ee7f570b";
        let onion = "http://basemmnnqwxevlymli5bs36o5ynti55xojzvn246spahniugwkff2pad.onion/chat";
        let text = format!("Tox: {tox}\nSession {session}\n{onion}\nmail Help.Desk@OnionMail.org. https://t.me/x");
        assert_eq!(kinds(&text), ["mail:onionmail.org", "onion", "session", "telegram", "tox"]);
        assert_eq!(kinds("old: http://promethw27cbrcot.onion/ticket"), ["onion-v2"]);
        // Neither a Tox id one digit short, nor an onion host of the wrong
        // length, nor an address without a domain.
        assert!(kinds(&format!("{} x.onion a@b root@localhost", &tox[1..])).is_empty());
        assert!(kinds("the telegrams of 1912").is_empty());
    }

    #[test]
    fn id_shapes_parse_and_match() {
        let hex = IdShape::parse("h32").unwrap();
        assert!(hex.follows(": 0123456789abcdef0123456789abcdef\nnext"));
        assert!(!hex.follows(": 0123456789abcdef0123456789abcdef0"));
        assert!(!hex.follows(": 0123456789abcdef0123456789abcdeg"));
        let groups = IdShape::parse("a4-a4").unwrap();
        assert!(!groups.follows(" [x7k2-9qpl]") && groups.follows(" x7k2-9qpl."));
        let any = IdShape::parse("any").unwrap();
        assert!(any.follows(": [snip]") && any.follows(" - 7f3a9c2e1b") && !any.follows(": please"));
        for bad in ["", "h", "h0", "x4", "-h4", "h4-", "h300", "h99999999999999999999"] {
            assert!(IdShape::parse(bad).is_err(), "{bad:?}");
        }
    }
}
