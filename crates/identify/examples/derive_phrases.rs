//! Derives phrase markers from a collection of real ransom notes (one
//! folder per family, named by its catalog id), for `families.toml`.
//!
//! A phrase is a run of six words of one family's notes that no other
//! family's note and no ordinary text (the benign folders given) contains,
//! not even four of its words in a row (so it is the family's own wording,
//! not the common wording of ransom notes), with nothing in it that changes
//! between campaigns (digits, addresses, links, long ids). Phrases shown by several of a family's notes come
//! first; the rest are taken spread over the note, so that a note missing
//! half of its paragraphs still shows some. Each phrase is checked with the
//! catalog's own matcher against the note it came from and every other
//! family's notes before it is printed.
//!
//! cargo run --release -p mamori-identify --example derive_phrases -- NOTES_DIR PER_FAMILY BENIGN_DIR...
//! prints TOML: `[phrases]` with one `id = [..]` line per family.

mod notes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use mamori_identify::{Catalog, Sample};
use notes::{files, read_notes, strip_tags};

const WORDS: usize = 6;
const MIN_CHARS: usize = 28;
/// No run of this many of a phrase's words may be in another family's notes.
const SHORT: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [notes_dir, per_family, benign @ ..] = args.as_slice() else {
        eprintln!("usage: derive_phrases NOTES_DIR PER_FAMILY BENIGN_DIR...");
        std::process::exit(2);
    };
    let per_family: usize = per_family.parse().expect("PER_FAMILY is a number");
    let families = read_notes(Path::new(notes_dir));
    // Every six words of ordinary text, and which families' notes hold each.
    let mut ordinary: HashSet<String> = HashSet::new();
    for dir in benign {
        for path in files(Path::new(dir)) {
            if let Ok(bytes) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(1 << 20)]).into_owned();
                ordinary.extend(grams(&words(&text)));
            }
        }
    }
    let mut owners: HashMap<String, HashSet<&str>> = HashMap::new();
    for (id, notes) in &families {
        for text in notes {
            let ws = words(text);
            for g in grams(&ws).into_iter().chain(ws.windows(SHORT).map(|w| w.join(" "))) {
                owners.entry(g).or_default().insert(id);
            }
        }
    }
    let own = |g: &String| {
        owners[g].len() == 1
            && g.split(' ')
                .collect::<Vec<_>>()
                .windows(SHORT)
                .all(|w| owners.get(&w.join(" ")).is_none_or(|o| o.len() == 1))
    };
    println!("[phrases]");
    for (id, notes) in &families {
        // Each note's usable phrases, in the order they come.
        let usable: Vec<Vec<String>> = notes
            .iter()
            .map(|text| {
                grams(&words(text))
                    .into_iter()
                    .filter(|g| own(g) && !ordinary.contains(g) && campaign_free(g))
                    .collect()
            })
            .collect();
        let mut shared: BTreeMap<&String, usize> = BTreeMap::new();
        for g in usable.iter().flatten() {
            *shared.entry(g).or_default() += 1;
        }
        // Shown by several notes of the family first, then spread over each note.
        let mut chosen: Vec<String> = Vec::new();
        for (g, _) in shared.iter().filter(|(_, n)| **n > 1) {
            if chosen.len() < per_family && !overlaps(&chosen, g) {
                chosen.push((*g).clone());
            }
        }
        for note in &usable {
            let step = (note.len() / per_family.saturating_sub(chosen.len()).max(1)).max(1);
            for g in note.iter().step_by(step) {
                if chosen.len() < per_family && !overlaps(&chosen, g) {
                    chosen.push(g.clone());
                }
            }
        }
        let checked: Vec<String> = chosen.into_iter().filter(|g| matches_only_family(g, id, &families)).collect();
        let quoted: Vec<String> = checked.iter().map(|g| format!("{g:?}")).collect();
        println!("{id:?} = [{}]", quoted.join(", "));
    }
}

/// Lower-case words, markup dropped (a crude pass: every phrase is checked
/// with the catalog's own normalisation before it is printed).
fn words(text: &str) -> Vec<String> {
    let mut plain = String::with_capacity(text.len());
    for c in strip_tags(text).chars() {
        match c {
            '\u{2018}' | '\u{2019}' => plain.push('\''),
            '\u{201c}' | '\u{201d}' => plain.push('"'),
            c => plain.extend(c.to_lowercase()),
        }
    }
    plain.split_whitespace().map(str::to_owned).collect()
}

fn grams(words: &[String]) -> Vec<String> {
    words.windows(WORDS).map(|w| w.join(" ")).filter(|g| g.len() >= MIN_CHARS).collect()
}

/// Nothing in it that another campaign of the family would change.
fn campaign_free(gram: &str) -> bool {
    gram.split(' ').all(|w| {
        !w.chars().any(|c| c.is_ascii_digit())
            && !w.contains('@')
            && !w.contains(".onion")
            && !w.contains("http")
            && !w.contains("www.")
            && w.chars().count() <= 20
            && w.chars().all(|c| c.is_alphanumeric() || ".,;:'\"!?()-".contains(c))
    })
}

/// Whether `gram` shares words with a phrase already chosen.
fn overlaps(chosen: &[String], gram: &str) -> bool {
    chosen.iter().any(|c| {
        let a: Vec<&str> = c.split(' ').collect();
        let b: Vec<&str> = gram.split(' ').collect();
        (1..WORDS).any(|k| a[a.len() - k..] == b[..k] || b[b.len() - k..] == a[..k]) || c == gram
    })
}

/// Checked with the real matcher: it names `id` in one of its notes, and
/// no other family in any of theirs.
fn matches_only_family(gram: &str, id: &str, families: &BTreeMap<String, Vec<String>>) -> bool {
    let toml = format!("[[family]]\nid = \"x\"\nname = \"X\"\ncontacts = [{gram:?}]\n");
    let Ok(catalog) = Catalog::from_toml(&toml) else { return false };
    let hit =
        |text: &String| catalog.identify(&[Sample::Note { name: "n.txt".into(), text: text.clone() }]).family.is_some();
    families.iter().all(|(other, notes)| if other == id { notes.iter().any(hit) } else { !notes.iter().any(hit) })
}
