//! Telling a ransom note from the other files an actor created, whatever the
//! family: notes threaten, demand and instruct, in few words and in any of a
//! handful of fixed themes. Used where the catalog knows no family.

use crate::text;

/// The themes a ransom note touches. A note is text touching at least four
/// of them (a note-like file name counts as one), one of which is broken-into
/// data or payment: a manual for encryption software speaks of encryption and
/// restoring, but seldom also of payment, contact and threats.
const THEMES: [&[&str]; 6] = [
    // The victim's data was encrypted, stolen or broken into.
    &[
        "encrypted",
        "encrypting",
        "encryption",
        "crypted",
        "locked",
        "locking",
        "stolen",
        "stole",
        "hacked",
        "exfiltrated",
        "breached",
        "penetrated",
        "compromised",
        "暗号化",
        "盗",
    ],
    // Payment.
    &[
        "bitcoin",
        "bitcoins",
        "btc",
        "monero",
        "xmr",
        "ransom",
        "payment",
        "pay",
        "price",
        "wallet",
        "身代金",
        "支払",
        "ビットコイン",
        "暗号資産",
        "仮想通貨",
    ],
    // A contact channel.
    &[
        ".onion",
        "tor browser",
        "torproject",
        "tox",
        "qtox",
        "telegram",
        "jabber",
        "contact us",
        "write to us",
        "write us",
        "email",
        "e-mail",
        "mail us",
        "連絡",
    ],
    // Decryption or recovery.
    &[
        "decrypt",
        "decrypted",
        "decryption",
        "decryptor",
        "decrypter",
        "restore",
        "recover",
        "recovery",
        "unlock",
        "復号",
        "復元",
    ],
    // A threat or warning.
    &[
        "publish",
        "published",
        "leak",
        "leaked",
        "sell",
        "sold",
        "auction",
        "permanent",
        "permanently",
        "deadline",
        "do not try",
        "don't try",
        "do not rename",
        "do not modify",
        "will be lost",
        "will be deleted",
        "公開",
        "削除",
        "期限",
    ],
    // The victim addressed.
    &[
        "your files",
        "your data",
        "your network",
        "your company",
        "your computer",
        "your servers",
        "your systems",
        "your documents",
        "your personal",
        "all your",
        "あなたの",
        "御社",
        "貴社",
    ],
];

/// Whether a file with this name and text reads like a ransom note of any
/// family.
pub fn looks_like_ransom_note(name: &str, text: &str) -> bool {
    let normalized = text::normalize(text);
    let mut themes = [false; THEMES.len()];
    for (seen, words) in themes.iter_mut().zip(THEMES.iter()) {
        *seen = words.iter().any(|w| contains_word(&normalized, w));
    }
    let count = themes.iter().filter(|&&t| t).count() + usize::from(note_like_name(name));
    (themes[0] || themes[1]) && count >= 4
}

/// Note names announce themselves: README, RECOVER, DECRYPT, HOW_TO... but
/// so do project documents, which come as Markdown and the like.
fn note_like_name(name: &str) -> bool {
    let lower = name.to_lowercase();
    let documentation = [".md", ".markdown", ".rst", ".adoc", ".org", ".pod"].iter().any(|ext| lower.ends_with(ext));
    !documentation
        && [
            "readme",
            "read_me",
            "read me",
            "recover",
            "restore",
            "decrypt",
            "how_to",
            "how to",
            "instruction",
            "unlock",
            "ransom",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

/// Japanese runs words together, so only Latin needles need word edges.
fn contains_word(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(at, _)| !needle.is_ascii() || text::whole_word(hay, at, needle.len()))
}
