//! Derives the weak structural signals of each family (`channels` and
//! `id_shapes` in `families.toml`) from a collection of real ransom notes,
//! one folder per family named by its catalog id.
//!
//! A signal is kept for a family only when every one of its notes shows it:
//! - channels: the contact channel kinds the catalog recognises in a note
//!   (`mamori_identify::note_channels`); a mail domain only when it is a
//!   public or anonymous provider (below), whose name another campaign of
//!   the family keeps while it changes the mailbox; a domain of the
//!   actor's own is a contact, not a channel;
//! - id shapes: the words that label the victim's id ("your personal
//!   decryption id: ..."). The collection elides the ids themselves
//!   (`[snip]`), so their shape cannot be learnt from it and every shape is
//!   written `any`. Each label is checked with the catalog's own matcher
//!   against every note of the family before it is printed.
//!
//! cargo run --release -p mamori-identify --example derive_signals -- NOTES_DIR
//! prints TOML: `[signals.ID]` with `channels` and `id_shapes` per family.

mod notes;

use std::collections::BTreeSet;
use std::path::Path;

use mamori_identify::{note_channels, Catalog, Sample};
use notes::{read_notes, strip_tags};

/// Public and anonymous mail (and Jabber) providers: many unrelated
/// actors open mailboxes there, and a family keeps to its habit.
const PROVIDERS: &[&str] = &[
    "airmail.cc",
    "aol.com",
    "armormail.net",
    "cock.li",
    "ctemplar.com",
    "cyberfear.com",
    "dnmx.org",
    "evilmail.to",
    "exploit.im",
    "firemail.cc",
    "gmail.com",
    "gmx.com",
    "jabb.im",
    "keemail.me",
    "mail.ch",
    "mail.com",
    "mailfence.com",
    "mexicomail.com",
    "msgsafe.io",
    "my.com",
    "onionmail.org",
    "outlook.com",
    "proton.me",
    "protonmail.ch",
    "protonmail.com",
    "tuta.io",
    "tutamail.com",
    "tutanota.com",
    "yandex.com",
];

/// The last word of an id line's label: what the label says it asks for.
const ID_WORDS: &[&str] = &["id", "uid", "key", "code", "token", "login", "password", "identifier"];
/// Words of a label at most, counted back from the id.
const LABEL_WORDS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [notes_dir] = args.as_slice() else {
        eprintln!("usage: derive_signals NOTES_DIR");
        std::process::exit(2);
    };
    for (id, notes) in read_notes(Path::new(notes_dir)) {
        let channels = notes
            .iter()
            .map(|text| {
                note_channels(text)
                    .into_iter()
                    .filter(|c| c.strip_prefix("mail:").is_none_or(|domain| PROVIDERS.contains(&domain)))
                    .collect::<BTreeSet<String>>()
            })
            .reduce(|all, one| &all & &one)
            .unwrap_or_default();
        let labels = notes
            .iter()
            .map(|text| id_labels(text))
            .reduce(|all, one| &all & &one)
            .unwrap_or_default()
            .into_iter()
            .filter(|label| notes.iter().all(|text| shows_id_line(label, text)))
            .collect::<Vec<_>>();
        if channels.is_empty() && labels.is_empty() {
            continue;
        }
        println!("[signals.{id:?}]");
        let quoted: Vec<String> = channels.iter().map(|c| format!("{c:?}")).collect();
        println!("channels = [{}]", quoted.join(", "));
        let shapes: Vec<String> = labels.iter().map(|l| format!("{{ label = {l:?}, id = \"any\" }}")).collect();
        println!("id_shapes = [{}]", shapes.join(", "));
    }
}

/// The labels of the ids a note asks for: up to four words before an id
/// (elided as `[word]`), within the line, ending in a word such as "id".
fn id_labels(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let plain = strip_tags(line).to_lowercase();
        let mut rest = plain.as_str();
        while let Some(open) = rest.find('[') {
            let before = &rest[..open];
            rest = &rest[open + 1..];
            let elided = rest
                .find(']')
                .is_some_and(|close| close > 0 && rest[..close].chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            if !elided {
                continue;
            }
            let lead = before.trim_end_matches(|c: char| " :=#>(\"'*-".contains(c));
            let words: Vec<&str> = lead.split_whitespace().collect();
            let label: Vec<&str> = words
                .iter()
                .rev()
                .take(LABEL_WORDS)
                .take_while(|w| w.chars().all(|c| c.is_alphabetic() || c == '-' || c == '\''))
                .copied()
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let asks_for_id = label.last().is_some_and(|w| ID_WORDS.contains(w));
            if label.len() >= 2 && asks_for_id {
                out.insert(label.join(" "));
            }
        }
    }
    out
}

/// Checked with the real matcher: the id line adds its weight to a family
/// that a name already points to.
fn shows_id_line(label: &str, text: &str) -> bool {
    let toml = format!(
        "[[family]]\nid = \"x\"\nname = \"X\"\nnames = [\"zzprobezz\"]\n\
         id_shapes = [{{ label = {label:?}, id = \"any\" }}]\n"
    );
    let Ok(catalog) = Catalog::from_toml(&toml) else { return false };
    let probe = Sample::Note { name: "n.txt".into(), text: format!("{text}\nzzprobezz") };
    catalog.identify(&[probe]).evidence.iter().any(|line| line.contains("id line"))
}
