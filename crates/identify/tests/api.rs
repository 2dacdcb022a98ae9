//! Identification of texts and files that belong to no family, of encrypted
//! files by extension and trailer, and the handling of catalog files.

use std::io::Write;

use mamori_identify::{looks_like_ransom_note, Catalog, Confidence, IdentifyError, Kind, Sample};

fn note(name: &str, text: &str) -> Sample {
    Sample::Note { name: name.into(), text: text.into() }
}

/// Bytes that look like ciphertext (xorshift), so no marker can hide in them.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

const README: &str = "# tidy\n\nA small command-line tool that formats TOML files.\n\n\
## Building\n\nRun `cargo build --release`. The binary is written to target/release/tidy.\n\n\
## Usage\n\n    tidy --check Cargo.toml\n\nTidy never changes your files unless you pass --write; \
a backup copy is kept next to each file. Please report bugs on the issue tracker. Pull requests \
are welcome; do not forget to add a test.\n";

const BACKUP_README: &str = "# vaultkeeper\n\nVaultkeeper makes nightly backups of your data. \
Backups are encrypted with AES-256-GCM before they leave the machine, and each snapshot can be \
restored on its own: `vaultkeeper restore --snapshot latest /srv`. Keys are derived from a \
passphrase; keep it safe, without it nothing can be recovered.\n";

const LETTER: &str = "Dear Margaret,\n\nThank you for the lovely weekend. The children still talk \
about the boat trip and the picnic by the lake. I have enclosed the photographs you asked for; \
the one of the lighthouse came out best. Do let us know when you are next in town so that we \
can return the favour.\n\nWith love,\nHelen\n";

const JAPANESE: &str = "株式会社山田商事\n経理部 御中\n\nいつもお世話になっております。\
先日ご依頼いただきました部品の見積書と請求書を添付いたしますので、ご確認のほどよろしくお願い\
いたします。お支払いは月末までに指定の口座へお振込みください。\n\
ご不明な点がございましたら、担当の佐藤までご連絡ください。\n\n今後ともよろしくお願い申し上げます。\n";

const SOURCE: &str = r#"use std::fs;

/// Restores the file from its backup copy; returns false when there is none.
fn restore(path: &str) -> std::io::Result<bool> {
    let backup = format!("{path}.bak");
    if fs::metadata(&backup).is_err() {
        return Ok(false);
    }
    fs::rename(&backup, path)?;
    Ok(true)
}
"#;

#[test]
fn ordinary_texts_belong_to_no_family_and_are_not_notes() {
    let catalog = Catalog::builtin();
    for (name, text) in [
        ("README.md", README),
        ("README.md", BACKUP_README),
        ("letter.txt", LETTER),
        ("請求書送付.txt", JAPANESE),
        ("restore.rs", SOURCE),
    ] {
        let found = catalog.identify(&[note(name, text)]);
        assert_eq!(found.family, None, "{name}: {:?}", found.evidence);
        assert_eq!(found.confidence, Confidence::None);
        assert!(!looks_like_ransom_note(name, text), "{name} taken for a ransom note");
    }
}

#[test]
fn a_generic_note_is_a_note_of_no_known_family() {
    let text = "YOUR FILES ARE ENCRYPTED. Contact us to decrypt.";
    assert!(looks_like_ransom_note("README.txt", text));
    let found = Catalog::builtin().identify(&[note("README.txt", text)]);
    assert_eq!(found.family, None);
    assert_eq!(found.evidence, ["no marker of any known family found"]);
}

#[test]
fn a_japanese_note_is_a_note() {
    let text = "あなたのファイルはすべて暗号化されました。復号するにはビットコインで身代金を支払い、\
                以下のアドレスまでメールで連絡してください。期限を過ぎるとデータは公開されます。";
    assert!(looks_like_ransom_note("readme.txt", text));
}

#[test]
fn encrypted_files_are_identified_by_extension_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("budget-2024.xlsx.akira");
    std::fs::write(&path, noise(20_000, 7)).unwrap();
    let sample = Sample::from_path(&path).unwrap();
    assert!(matches!(sample, Sample::Encrypted { .. }), "{sample:?}");
    let found = Catalog::builtin().identify(&[sample]);
    assert_eq!(found.family.as_deref(), Some("Akira"));
    assert_eq!(found.confidence, Confidence::Medium);
    assert_eq!(found.evidence[1], "budget-2024.xlsx.akira: file name ends in extension '.akira'");
    let decryptor = found.decryptor.expect("Avast's Akira decryptor is listed");
    assert!(decryptor.url.starts_with("https://www.nomoreransom.org/"));
}

#[test]
fn a_trailer_near_the_end_of_a_large_file_identifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.jpg.qwer");
    let mut file = std::fs::File::create(&path).unwrap();
    // Larger than the note prefix, so the tail is read with a seek.
    file.write_all(&noise(600_000, 11)).unwrap();
    file.write_all(b"{36A698B9-D67C-4E07-BE82-0EC5B14B4DF5}").unwrap();
    file.write_all(&noise(100, 13)).unwrap();
    drop(file);
    let found = Catalog::builtin().identify(&[Sample::from_path(&path).unwrap()]);
    assert_eq!(found.family.as_deref(), Some("STOP (Djvu)"), "{:?}", found.evidence);
}

#[test]
fn a_note_and_an_encrypted_file_together_raise_confidence() {
    let dir = tempfile::tempdir().unwrap();
    let note_path = dir.path().join("read_me.txt");
    std::fs::write(&note_path, "Your files are encrypted by LockBit. Restore-My-Files.").unwrap();
    let file_path = dir.path().join("db.sql.lockbit");
    std::fs::write(&file_path, noise(9000, 3)).unwrap();
    let catalog = Catalog::builtin();
    let note = Sample::from_path(&note_path).unwrap();
    assert!(matches!(note, Sample::Note { .. }));
    let alone = catalog.identify(std::slice::from_ref(&note));
    assert_eq!(alone.family.as_deref(), Some("LockBit"));
    assert_eq!(alone.confidence, Confidence::Medium);
    let both = catalog.identify(&[note, Sample::from_path(&file_path).unwrap()]);
    assert_eq!(both.family.as_deref(), Some("LockBit"));
    assert_eq!(both.confidence, Confidence::High);
    assert_eq!(both.decryptor, None, "no general LockBit decryptor is claimed");
    // What matched, for a report to say in its own language: each marker
    // once, with the sample that showed it.
    let shown: Vec<(Kind, &str)> = both.matched.iter().map(|m| (m.kind, m.sample.as_str())).collect();
    assert!(shown.contains(&(Kind::Name, "read_me.txt")), "{shown:?}");
    assert!(shown.contains(&(Kind::Extension, "db.sql.lockbit")), "{shown:?}");
    assert_eq!(both.matched.len(), both.evidence.len() - 1, "one line per marker after the summary: {both:?}");
}

#[test]
fn utf16_notes_from_disk_are_read_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("HOW_TO_DECRYPT.txt");
    let text = "All your files are encrypted by Rhysida. Pay in Bitcoin.\r\n";
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(&path, bytes).unwrap();
    let sample = Sample::from_path(&path).unwrap();
    assert_eq!(sample, note("HOW_TO_DECRYPT.txt", text));
    let found = Catalog::builtin().identify(&[sample]);
    assert_eq!(found.family.as_deref(), Some("Rhysida"));
}

const TWO_FAMILIES: &str = r#"
[[family]]
id = "alpha"
name = "Alpha"
names = ["alphalocker"]
contacts = ["alpha@example.org"]
phrases = ["pay the alpha tax"]

[[family]]
id = "beta"
name = "Beta"
names = ["betalocker"]
phrases = ["the beta way"]
"#;

#[test]
fn a_close_second_family_makes_the_verdict_unknown() {
    let catalog = Catalog::from_toml(TWO_FAMILIES).unwrap();
    let found = catalog.identify(&[note("n.txt", "AlphaLocker and BetaLocker were here")]);
    assert_eq!(found.family, None);
    assert_eq!(found.evidence[0], "ambiguous: Alpha (weight 3) and Beta (weight 3)");
    let candidates: Vec<(&str, u32)> = found.candidates.iter().map(|c| (c.family.as_str(), c.weight)).collect();
    assert_eq!(candidates, [("Alpha", 3), ("Beta", 3)], "both, for a responder to confirm");
}

#[test]
fn a_far_second_family_lowers_confidence_and_is_named() {
    let catalog = Catalog::from_toml(TWO_FAMILIES).unwrap();
    let text = "alphalocker: write to alpha@example.org. It is the beta way.";
    let found = catalog.identify(&[note("n.txt", text)]);
    assert_eq!(found.family.as_deref(), Some("Alpha"));
    assert_eq!(found.confidence, Confidence::Medium);
    assert!(found.evidence.last().unwrap().starts_with("also matched Beta with weight 2"));
    assert!(found.candidates.is_empty(), "a named family has no candidates");
}

#[test]
fn one_phrase_is_only_a_hint() {
    let catalog = Catalog::from_toml(TWO_FAMILIES).unwrap();
    let found = catalog.identify(&[note("n.txt", "Do it the beta way.")]);
    assert_eq!(found.family, None);
    assert!(found.evidence[0].starts_with("too little to name a family: best is Beta"));
    assert_eq!(found.candidates.len(), 1);
    assert_eq!((found.candidates[0].family.as_str(), found.candidates[0].weight), ("Beta", 2));
    let json = serde_json::to_value(&found).unwrap();
    assert_eq!(json["candidates"][0]["family"], "Beta");
}

#[test]
fn names_match_whole_words_only() {
    let catalog = Catalog::from_toml(TWO_FAMILIES).unwrap();
    let found = catalog.identify(&[note("n.txt", "superalphalockers")]);
    assert_eq!(found.family, None);
}

#[test]
fn the_verdict_serializes_for_the_command_line() {
    let catalog = Catalog::from_toml(TWO_FAMILIES).unwrap();
    let found = catalog.identify(&[note("n.txt", "alphalocker, alpha@example.org")]);
    let json = serde_json::to_value(&found).unwrap();
    assert_eq!(json["family"], "Alpha");
    assert_eq!(json["confidence"], "high");
    assert_eq!(json["evidence"][1], "n.txt: note text contains the family name 'alphalocker'");
    assert_eq!(json["matched"][0], serde_json::json!({"kind": "name", "text": "alphalocker", "sample": "n.txt"}));
    let unknown = serde_json::to_value(catalog.identify(&[])).unwrap();
    assert_eq!(unknown["family"], serde_json::Value::Null);
    assert_eq!(unknown["confidence"], "none");
    assert!(unknown.get("matched").is_none(), "nothing named, nothing listed: {unknown}");
}

#[test]
fn malformed_catalogs_are_rejected_with_their_place() {
    let err = Catalog::from_toml("[[family]]\nid = \"x\"\nname = \n").unwrap_err();
    assert!(matches!(err, IdentifyError::Parse(_)));
    assert!(err.to_string().contains("line 3"), "{err}");

    let err = Catalog::from_toml("[[family]]\nid = \"x\"\nname = \"X\"\nphrase = [\"y\"]\n").unwrap_err();
    assert!(err.to_string().contains("phrase"), "unknown field not named: {err}");

    let bad_extension = "[[family]]\nid = \"a\"\nname = \"A\"\nnames = [\"aa\"]\n\n\
                         [[family]]\nid = \"b\"\nname = \"B\"\nextensions = [\"bbb\"]\n";
    match Catalog::from_toml(bad_extension).unwrap_err() {
        IdentifyError::Invalid { line, family, field, .. } => {
            assert_eq!((line, family.as_str(), field), (6, "b", "extensions"));
        }
        other => panic!("{other}"),
    }

    let duplicate = "[[family]]\nid = \"a\"\nname = \"A\"\nnames = [\"aa\"]\n\
                     [[family]]\nid = \"a\"\nname = \"A2\"\nnames = [\"ab\"]\n";
    let err = Catalog::from_toml(duplicate).unwrap_err();
    assert!(matches!(err, IdentifyError::Invalid { field: "id", .. }), "{err}");

    let no_markers = "[[family]]\nid = \"a\"\nname = \"A\"\n";
    assert!(matches!(Catalog::from_toml(no_markers), Err(IdentifyError::Invalid { .. })));
    assert!(matches!(Catalog::from_toml(""), Err(IdentifyError::Empty)));
}

#[test]
fn an_updated_catalog_loads_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("families.toml");
    std::fs::write(&path, TWO_FAMILIES).unwrap();
    let catalog = Catalog::load(&path).unwrap();
    assert_eq!(catalog.families().len(), 2);
    assert_eq!(catalog.family("beta").unwrap().name, "Beta");
    let huge = dir.path().join("huge.toml");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(mamori_identify::CATALOG_LIMIT + 1).unwrap();
    assert!(matches!(Catalog::load(&huge), Err(IdentifyError::TooLarge { .. })));
    let missing = Catalog::load(&dir.path().join("absent.toml")).unwrap_err();
    assert!(matches!(missing, IdentifyError::Read { .. }));
    assert!(missing.to_string().contains("absent.toml"));
}

#[test]
fn the_builtin_catalog_is_the_shipped_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/families.toml");
    let loaded = Catalog::load(std::path::Path::new(path)).unwrap();
    assert_eq!(loaded.families().len(), Catalog::builtin().families().len());
    assert!(loaded.families().len() >= 132);
}

const WEAK: &str = r#"
[[family]]
id = "gamma"
name = "Gamma"
phrases = ["the gamma way", "gamma knows best", "trust in gamma"]
channels = ["tox", "mail:onionmail.org"]
id_shapes = [{ label = "your gamma id", id = "h32" }]

[[family]]
id = "delta"
name = "Delta"
contacts = ["delta@example.org"]
channels = ["tox"]
"#;

const TOX: &str = "D6C324719AD0AA50A54E4F8DED8E8220D8698DD67B218B5429466C40E7F72657C015D86C7E4A";

#[test]
fn weak_signals_tip_a_phrase_but_never_name_alone() {
    let catalog = Catalog::from_toml(WEAK).unwrap();
    let signals = format!("Tox {TOX}, or mail ab12@onionmail.org. Your Gamma ID: 0123456789abcdef0123456789abcdef");
    let alone = catalog.identify(&[note("n.txt", &signals)]);
    assert_eq!(alone.family, None, "{:?}", alone.evidence);
    assert!(alone.candidates.is_empty(), "weak signals make no candidate: {:?}", alone.candidates);

    let phrase = catalog.identify(&[note("n.txt", "Do it the gamma way.")]);
    assert_eq!(phrase.family, None, "one phrase is a hint");
    let tipped = catalog.identify(&[note("n.txt", &format!("Do it the gamma way. {signals}"))]);
    assert_eq!(tipped.family.as_deref(), Some("Gamma"), "{:?}", tipped.evidence);
    assert_eq!(tipped.confidence, Confidence::Medium);
    assert_eq!(tipped.evidence[0], "Gamma: weight 5, 3 kinds of marker agreed: phrases, channels, id line");
    assert!(tipped.evidence.iter().any(|l| l == "n.txt: note gives a contact of the channel kind 'tox'"));
    assert!(tipped.evidence.iter().any(|l| l == "n.txt: note has the id line 'your gamma id <h32>'"));

    // An id of another shape is not the family's id line.
    let other_id = catalog.identify(&[note("n.txt", "the gamma way. Your Gamma ID: 12-34")]);
    assert_eq!(other_id.family, None, "{:?}", other_id.evidence);
}

#[test]
fn high_confidence_needs_two_kinds_of_strong_marker() {
    let catalog = Catalog::from_toml(WEAK).unwrap();
    let phrases = "the gamma way; gamma knows best; trust in gamma";
    let one_kind = catalog.identify(&[note("n.txt", &format!("{phrases}. Tox {TOX}"))]);
    assert_eq!(one_kind.family.as_deref(), Some("Gamma"));
    assert_eq!(one_kind.confidence, Confidence::Medium, "{:?}", one_kind.evidence);

    let two_families = Catalog::from_toml(TWO_FAMILIES).unwrap();
    let found = two_families.identify(&[note("n.txt", "alphalocker, alpha@example.org")]);
    assert_eq!(found.confidence, Confidence::High);
    assert_eq!(found.evidence[0], "Alpha: weight 6, 2 kinds of marker agreed: family name, contacts");
}

#[test]
fn weak_signals_are_checked_when_the_catalog_loads() {
    let family = |extra: &str| format!("[[family]]\nid = \"a\"\nname = \"A\"\nnames = [\"aa\"]\n{extra}\n");
    for (extra, field) in [
        ("channels = [\"skype\"]", "channels"),
        ("channels = [\"mail:Not A Domain\"]", "channels"),
        ("channels = [\"TOX\"]", "channels"),
        ("id_shapes = [{ label = \"id\", id = \"any\" }]", "id_shapes"),
        ("id_shapes = [{ label = \"your id\", id = \"h0\" }]", "id_shapes"),
        ("id_shapes = [{ label = \"your id\", id = \"h4-\" }]", "id_shapes"),
        ("id_shapes = [{ label = \"your id\", id = \"h999\" }]", "id_shapes"),
        ("id_shapes = [{ label = \"your id\", id = \"(a+)+\" }]", "id_shapes"),
    ] {
        match Catalog::from_toml(&family(extra)) {
            Err(IdentifyError::Invalid { field: f, .. }) => assert_eq!(f, field, "{extra}"),
            other => panic!("{extra}: {other:?}"),
        }
    }
    let err =
        Catalog::from_toml(&family("id_shapes = [{ label = \"your id\", id = \"any\", regex = \".*\" }]")).unwrap_err();
    assert!(err.to_string().contains("regex"), "unknown key not named: {err}");
    let weak_only = "[[family]]\nid = \"a\"\nname = \"A\"\nchannels = [\"tox\"]\n";
    assert!(matches!(Catalog::from_toml(weak_only), Err(IdentifyError::Invalid { .. })), "weak signals alone");
    assert!(Catalog::from_toml(&family("channels = [\"onion\", \"mail:cock.li\"]")).is_ok());
}
