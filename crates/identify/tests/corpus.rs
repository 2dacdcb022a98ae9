//! Identification against the real ransom notes the catalog was derived from
//! (threatlabz/ransomware_notes, kept outside the repository).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mamori_identify::{looks_like_ransom_note, Catalog, Confidence, Sample};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/ransomware-notes");

/// Notes no text marker can name, with why.
const KNOWN_UNKNOWN: &[(&str, &str)] =
    &[("darkpower/readme.pdf", "a PDF of images: its text is not extractable without rendering")];

/// Notes that do not read like ransom notes to the family-independent
/// heuristic, with why.
const NOT_NOTE_LIKE: &[(&str, &str)] = &[
    ("azov/RESTORE_FILES.txt", "a wiper's political pamphlet that never says encrypted or pay"),
    ("darkpower/readme.pdf", "a PDF of images, not text"),
    ("grief/grief.txt", "a password and an onion link, no word of encryption or payment"),
    ("hunters/Contact Us2.txt", "ASCII art, Tor log-in steps and a leak-site link only"),
    ("play/play.txt", "the whole note is the word PLAY and an e-mail address"),
];

/// Every note of the collection as (family folder, "family/file", path).
fn notes() -> Vec<(String, String, PathBuf)> {
    let root = Path::new(DATA);
    assert!(
        root.is_dir(),
        "ransom-note collection not found at {} (expected /work/shared/data/ransomware-notes \
         next to the repository)",
        root.display()
    );
    let mut notes = Vec::new();
    for family in std::fs::read_dir(root).unwrap() {
        let family = family.unwrap();
        if !family.file_type().unwrap().is_dir() {
            continue;
        }
        let folder = family.file_name().to_string_lossy().into_owned();
        for note in std::fs::read_dir(family.path()).unwrap() {
            let note = note.unwrap();
            let file = note.file_name().to_string_lossy().into_owned();
            notes.push((folder.clone(), format!("{folder}/{file}"), note.path()));
        }
    }
    notes.sort();
    notes
}

/// The note's text under a neutral name, so only the text can identify it.
fn neutral(path: &Path) -> Sample {
    match Sample::from_path(path).unwrap() {
        Sample::Note { text, .. } => Sample::Note { name: "note.txt".into(), text },
        Sample::Encrypted { tail, .. } => Sample::Encrypted { name: "note.bin".into(), tail },
    }
}

#[test]
fn every_family_is_identified_from_the_text_of_each_of_its_notes() {
    let catalog = Catalog::builtin();
    let notes = notes();
    let mut families: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut wrong = Vec::new();
    let mut confidences: BTreeMap<String, usize> = BTreeMap::new();
    for (folder, label, path) in &notes {
        let expected = catalog.family(folder).unwrap_or_else(|| panic!("families.toml has no family {folder:?}"));
        let found = catalog.identify(&[neutral(path)]);
        let entry = families.entry(folder).or_default();
        entry.0 += 1;
        match &found.family {
            Some(name) if *name == expected.name => {
                entry.1 += 1;
                assert_ne!(found.confidence, Confidence::None, "{label}");
                *confidences.entry(format!("{:?}", found.confidence)).or_default() += 1;
            }
            Some(name) => wrong.push(format!("{label}: {name} instead of {}", expected.name)),
            None => misses.push((label.clone(), found.evidence.join(" | "))),
        }
    }
    let identified = families.values().filter(|(notes, hits)| notes == hits).count();
    println!(
        "{} notes of {} families: {} families identified from every note, {} misses, {} wrong",
        notes.len(),
        families.len(),
        identified,
        misses.len(),
        wrong.len()
    );
    println!("confidence of the identified notes: {confidences:?}");
    for (label, evidence) in &misses {
        println!("miss  {label:50} {evidence}");
    }
    assert!(families.len() >= 132, "only {} family folders", families.len());
    assert!(wrong.is_empty(), "wrong family: {wrong:#?}");
    let missed: Vec<&str> = misses.iter().map(|(label, _)| label.as_str()).collect();
    let expected: Vec<&str> = KNOWN_UNKNOWN.iter().map(|(label, _)| *label).collect();
    assert_eq!(missed, expected, "misses differ from the known-unknown list");
}

#[test]
fn note_names_never_lead_to_a_wrong_family() {
    let catalog = Catalog::builtin();
    for (folder, label, path) in notes() {
        let found = catalog.identify(&[Sample::from_path(&path).unwrap()]);
        if let Some(name) = found.family {
            assert_eq!(name, catalog.family(&folder).unwrap().name, "{label}: {:?}", found.evidence);
        }
    }
}

#[test]
fn the_notes_read_like_ransom_notes() {
    let mut not_like = Vec::new();
    for (_, label, path) in notes() {
        let like = match Sample::from_path(&path).unwrap() {
            Sample::Note { name, text } => looks_like_ransom_note(&name, &text),
            Sample::Encrypted { .. } => false,
        };
        if !like {
            not_like.push(label);
        }
    }
    let expected: Vec<&str> = NOT_NOTE_LIKE.iter().map(|(label, _)| *label).collect();
    assert_eq!(not_like, expected);
}

#[test]
fn every_family_of_the_collection_has_markers_in_the_catalog() {
    let catalog = Catalog::builtin();
    let folders: std::collections::BTreeSet<String> = notes().into_iter().map(|(f, _, _)| f).collect();
    let ids: std::collections::BTreeSet<String> = catalog.families().iter().map(|f| f.id.clone()).collect();
    assert_eq!(folders, ids);
}
