//! Hostile input to everything that parses: the families file (loaded at run
//! time from `STATE/families.toml`), note bytes and note text. None may
//! panic, and what comes out is bounded by what went in.

use std::io::Write;
use std::sync::OnceLock;

use mamori_identify::{looks_like_ransom_note, Catalog, Confidence, Identification, Sample, NOTE_LIMIT, TAIL_LIMIT};
use proptest::prelude::*;

/// Catalogs in the file's own shape with hostile values (any text, quoted
/// as TOML), so that most get past the parser and reach the checks and
/// matchers behind it; sometimes a raw piece is spliced in.
fn toml_ish() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        3 => "\\.?[a-z0-9*.<>&; -]{1,12}",
        1 => "(tox|session|onion|telegram|mail:[a-z-]{1,5}\\.[a-z]{1,3})",
        1 => any::<String>(),
    ];
    let list = prop::collection::vec(value.clone(), 1..4);
    let field = "(names|phrases|contacts|note_names|extensions|trailers|channels)";
    // Id shapes: the label any value, the shape mostly of the grammar's pieces.
    let shape = prop_oneof![3 => "(any|[hda][0-9]{1,3}([-_.:][hda][0-9]{1,3}){0,3})", 1 => "\\PC{0,8}"];
    let id_shapes = prop::option::of((value.clone(), shape));
    let family = (
        prop_oneof![9 => "[a-z][a-z0-9-]{2,8}", 1 => any::<String>()],
        value.clone(),
        prop::collection::vec((field, list), 1..4),
        id_shapes,
        prop::option::of((value, prop_oneof![3 => Just("https://example.org".to_owned()), 1 => any::<String>()])),
    );
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let splice = prop::option::weighted(0.25, (any::<prop::sample::Index>(), "[\\[\\]{}=\",\n#'.]{1,4}|\\PC{0,8}"));
    (prop::collection::vec(family, 0..5), splice).prop_map(move |(families, splice)| {
        let mut text = String::new();
        for (id, name, fields, id_shapes, decryptor) in families {
            text += &format!("[[family]]\nid = {}\nname = {}\n", quote(&id), quote(&name));
            for (field, values) in fields {
                let values: Vec<String> = values.iter().map(|v| quote(v)).collect();
                text += &format!("{field} = [{}]\n", values.join(", "));
            }
            if let Some((label, shape)) = id_shapes {
                text += &format!("id_shapes = [{{ label = {}, id = {} }}]\n", quote(&label), quote(&shape));
            }
            if let Some((name, url)) = decryptor {
                text += &format!("[family.decryptor]\nname = {}\nurl = {}\n", quote(&name), quote(&url));
            }
        }
        if let Some((at, piece)) = splice {
            let mut at = at.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, &piece);
        }
        text
    })
}

/// Note text: markup, entities and the catalog's words, in any order.
fn note_ish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "<(style|STYLE|/style|html|p|a|!--|br)?[ >]?".prop_map(String::from),
        "&(amp|lt|gt|nbsp|quot|#39|apos)?;?".prop_map(String::from),
        "(encrypted|bitcoin|decrypt|your files|lockbit|\\.onion|readme)".prop_map(String::from),
        // What the weak signals look for: channels and labelled ids.
        "([0-9a-f]{64,76}|[a-z2-7]{16,56}\\.onion|@onionmail\\.org|t\\.me/|your (personal )?id: ?|\\[snip\\])"
            .prop_map(String::from),
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..200).prop_map(|pieces| pieces.concat())
}

fn builtin() -> &'static Catalog {
    static BUILTIN: OnceLock<Catalog> = OnceLock::new();
    BUILTIN.get_or_init(Catalog::builtin)
}

/// A family is named exactly when the verdict claims some confidence.
fn consistent(found: &Identification) -> bool {
    found.family.is_none() == (found.confidence == Confidence::None)
}

proptest! {
    #[test]
    fn any_catalog_text_loads_or_is_refused(text in toml_ish()) {
        if let Ok(catalog) = Catalog::from_toml(&text) {
            let found = catalog.identify(&[
                Sample::Note { name: "README.txt".into(), text: text.clone() },
                Sample::Encrypted { name: "a.b.c".into(), tail: text.into_bytes() },
            ]);
            prop_assert!(consistent(&found), "{found:?}");
        }
    }

    #[test]
    fn any_bytes_as_a_catalog_are_refused_or_loaded(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Catalog::from_toml(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn any_note_text_is_weighed(name in "\\PC{0,40}", text in note_ish()) {
        let _ = looks_like_ransom_note(&name, &text);
        let found = builtin().identify(&[Sample::Note { name, text }]);
        prop_assert!(consistent(&found), "{found:?}");
    }

    /// Bytes on disk decode to at most three bytes of text for each byte
    /// read (a lone invalid byte becomes a three-byte replacement
    /// character), and no more than the limits are read.
    #[test]
    fn any_file_becomes_a_bounded_sample(
        bytes in prop::collection::vec(any::<u8>(), 0..8192),
        utf16 in any::<bool>(),
        padding in 0usize..2,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("README.txt");
        let mut file = std::fs::File::create(&path).unwrap();
        if utf16 {
            file.write_all(b"\xff\xfe").unwrap();
        }
        file.write_all(&bytes).unwrap();
        // Past the note limit, so a cut inside a character is exercised.
        file.write_all(&vec![b'a'; padding * NOTE_LIMIT as usize]).unwrap();
        drop(file);
        match Sample::from_path(&path).unwrap() {
            Sample::Note { text, .. } => prop_assert!(text.len() as u64 <= 3 * NOTE_LIMIT),
            Sample::Encrypted { tail, .. } => prop_assert!(tail.len() as u64 <= TAIL_LIMIT),
        }
    }
}
