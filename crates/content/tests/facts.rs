//! Facts of real content: hand-made formats, text, random and encoded data,
//! and files read from disk.

use std::io::{Cursor, Write};

use mamori_content::{
    entropy, facts, facts_of_bytes, plan, read_facts, read_facts_whole, region_change, similarity, ContentFacts, Depth,
    FileKind, Format,
};

/// Deterministic pseudo-random bytes (xorshift64*).
fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn base64(bytes: &[u8]) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for (i, c) in bytes.chunks(3).enumerate() {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            out.push(if k <= c.len() { A[(n >> (18 - 6 * k) & 63) as usize] } else { b'=' });
        }
        if i % 19 == 18 {
            out.push(b'\n');
        }
    }
    out
}

fn hex(bytes: &[u8]) -> Vec<u8> {
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        out.push_str(&format!("{b:02x}"));
        out.push(if i % 16 == 15 { '\n' } else { ' ' });
    }
    out.into_bytes()
}

/// Varied English-like prose, one numbered sentence a line.
fn prose(lines: usize, seed: u64) -> String {
    const WORDS: [&str; 24] = [
        "the",
        "server",
        "backup",
        "quarterly",
        "report",
        "shows",
        "that",
        "revenue",
        "grew",
        "in",
        "Osaka",
        "while",
        "costs",
        "fell",
        "after",
        "migration",
        "of",
        "our",
        "storage",
        "cluster",
        "to",
        "new",
        "disks",
        "and",
    ];
    let r = random(lines * 12, seed);
    (0..lines)
        .map(|l| {
            let words: Vec<&str> = r[l * 12..l * 12 + 8 + (r[l * 12] % 4) as usize]
                .iter()
                .map(|&b| WORDS[b as usize % WORDS.len()])
                .collect();
            format!("{l}. {}.\n", words.join(" "))
        })
        .collect()
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const PNG_1X1: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\
\0\0\0\nIDATx\x9cc\0\x01\0\0\x05\0\x01\r\n-\xb4\0\0\0\0IEND\xaeB`\x82";

fn known(format: Format, intact: bool) -> FileKind {
    FileKind::Known { format, intact }
}

#[test]
fn kinds_of_generated_content() {
    let body = prose(200, 7);
    let zip = zip_of(&[("a.txt", body.as_bytes()), ("b.bin", &random(5000, 3))]);
    let office = zip_of(&[("[Content_Types].xml", b"<Types/>"), ("word/document.xml", body.as_bytes())]);
    let odf = {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file("mimetype", stored).unwrap();
        w.write_all(b"application/vnd.oasis.opendocument.text").unwrap();
        w.start_file("content.xml", stored).unwrap();
        w.write_all(body.as_bytes()).unwrap();
        w.finish().unwrap().into_inner()
    };
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec();
    let mut jpeg = b"\xff\xd8\xff\xe0\0\x10JFIF\0".to_vec();
    jpeg.extend(random(3000, 9));
    jpeg.extend(b"\xff\xd9");
    let mut jpeg_padded = jpeg.clone();
    jpeg_padded.extend([0; 100]);
    let mut gzip = b"\x1f\x8b\x08\0\0\0\0\0\0\x03".to_vec();
    gzip.extend(random(500, 4));

    let cases: Vec<(&str, Vec<u8>, FileKind)> = vec![
        ("empty", vec![], FileKind::Empty),
        ("png", PNG_1X1.to_vec(), known(Format::Png, true)),
        ("png truncated", PNG_1X1[..PNG_1X1.len() - 12].to_vec(), known(Format::Png, false)),
        ("zip", zip.clone(), known(Format::Zip, true)),
        ("zip truncated", zip[..zip.len() - 30].to_vec(), known(Format::Zip, false)),
        ("ooxml", office.clone(), known(Format::Office, true)),
        ("ooxml truncated", office[..office.len() / 2].to_vec(), known(Format::Office, false)),
        ("odf", odf, known(Format::Office, true)),
        ("pdf", pdf.clone(), known(Format::Pdf, true)),
        ("pdf truncated", pdf[..pdf.len() - 7].to_vec(), known(Format::Pdf, false)),
        ("jpeg", jpeg.clone(), known(Format::Jpeg, true)),
        ("jpeg zero padded", jpeg_padded, known(Format::Jpeg, true)),
        ("jpeg truncated", jpeg[..jpeg.len() - 2].to_vec(), known(Format::Jpeg, false)),
        ("gzip", gzip, known(Format::Gzip, true)),
        ("english", body.clone().into_bytes(), FileKind::Text),
        ("japanese", "契約書の第三条を修正しました。\n担当者は田中です。\n".repeat(40).into_bytes(), FileKind::Text),
        ("text starting like a bmp", b"BMW fleet report\nall cars serviced\n".to_vec(), FileKind::Text),
        ("random", random(100_000, 5), FileKind::Unknown),
    ];
    for (name, bytes, kind) in cases {
        assert_eq!(facts_of_bytes(&bytes).kind, kind, "{name}");
    }
}

#[test]
fn random_bytes_are_dense_and_not_encoded() {
    let f = facts_of_bytes(&random(100_000, 5));
    assert!(f.entropy > 7.9, "{}", f.entropy);
    assert!(!f.encoded_random);
    assert!(!f.sampled);
    assert!(f.small_hash.is_none());
    assert_eq!(f.blocks.len(), 25);
}

#[test]
fn encoded_randomness_is_flagged() {
    for (name, bytes) in [("base64", base64(&random(30_000, 11))), ("hex", hex(&random(10_000, 12)))] {
        let f = facts_of_bytes(&bytes);
        assert!(f.encoded_random, "{name}");
        assert_eq!(f.kind, FileKind::Text, "{name}");
    }
}

#[test]
fn ordinary_text_is_not_flagged_as_encoded() {
    let csv: String = random(20_000, 13)
        .chunks(4)
        .map(|c| format!("{},{},{}\n", u32::from(c[0]) * 1000 + u32::from(c[1]), c[2], c[3]))
        .collect();
    let digits_only: String =
        random(20_000, 14).chunks(4).map(|c| format!("{}\n", u32::from_le_bytes(c.try_into().unwrap()))).collect();
    let mut zero_heavy = vec![0u8; 4000];
    for (i, b) in random(400, 15).into_iter().enumerate() {
        zero_heavy[i * 10] = b;
    }
    let source = include_str!("../src/blocks.rs");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("english", prose(300, 16).into_bytes()),
        ("japanese", "東京の倉庫から大阪へ荷物を送りました。明日の午後に到着予定です。\n".repeat(50).into_bytes()),
        ("csv of numbers", csv.into_bytes()),
        ("decimal digits only", digits_only.into_bytes()),
        ("source code", source.as_bytes().to_vec()),
        ("hex dump of a zero-heavy binary", hex(&zero_heavy)),
        ("base64 of a zero-heavy binary", base64(&zero_heavy)),
    ];
    for (name, bytes) in cases {
        let f = facts_of_bytes(&bytes);
        assert!(!f.encoded_random, "{name}");
        assert_eq!(f.kind, FileKind::Text, "{name}");
    }
}

#[test]
fn similarity_survives_an_edit_but_not_encryption() {
    let original = prose(400, 21);
    let edited = original.replacen("17. ", "17. the edited line now says something else entirely and ", 1);
    assert_ne!(original, edited);
    let encrypted: Vec<u8> = original.bytes().zip(random(original.len(), 22)).map(|(a, b)| a ^ b).collect();

    let before = facts_of_bytes(original.as_bytes()).digest;
    assert!(!before.0.is_empty());
    assert_eq!(similarity(&before, &before), Some(100));
    let edit = similarity(&before, &facts_of_bytes(edited.as_bytes()).digest).unwrap();
    assert!(edit >= 70, "edited: {edit}");
    let enc = similarity(&before, &facts_of_bytes(&encrypted).digest).unwrap();
    assert!(enc <= 20, "encrypted: {enc}");
}

#[test]
fn tiny_or_uniform_content_has_no_digest() {
    let empty = facts_of_bytes(b"");
    assert!(empty.digest.0.is_empty());
    assert_eq!(empty.entropy, 0.0);
    assert!(empty.blocks.is_empty());
    assert_eq!(similarity(&empty.digest, &facts_of_bytes(prose(50, 1).as_bytes()).digest), None);
    assert!(facts_of_bytes(b"short note").digest.0.is_empty());
    assert!(facts_of_bytes(&[b'a'; 10_000]).digest.0.is_empty());
}

#[test]
fn small_hash_identifies_small_files_only() {
    let note = b"Your files are encrypted. Contact us.".to_vec();
    let a = facts_of_bytes(&note).small_hash.unwrap();
    assert_eq!(a, facts_of_bytes(&note).small_hash.unwrap());
    assert_eq!(&a[..], &blake3::hash(&note).as_bytes()[..16]);
    assert_ne!(Some(a), facts_of_bytes(b"Your files are encrypted. Contact me.").small_hash);
    assert!(facts_of_bytes(&vec![1; 64 * 1024]).small_hash.is_some());
    assert!(facts_of_bytes(&vec![1; 64 * 1024 + 1]).small_hash.is_none());
}

fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

#[test]
fn read_facts_samples_a_large_file_as_planned() {
    let size = 5 << 20;
    let bytes = random(size, 31);
    let file = write_temp(&bytes);
    let f = read_facts(file.as_file(), Depth::Full).unwrap();
    assert_eq!(f.size, size as u64);
    assert!(f.sampled);
    let expected: Vec<u64> = plan(size as u64, Depth::Full)
        .into_iter()
        .flat_map(|(off, len)| (0..len.div_ceil(4096)).map(move |i| off + 4096 * i as u64))
        .collect();
    assert_eq!(f.blocks.iter().map(|b| b.offset).collect::<Vec<_>>(), expected);
    assert!(f.blocks.iter().all(|b| b.entropy > 7.9));
    assert_eq!(f, facts_of_bytes(&bytes), "disk and memory must agree");

    let light = read_facts(file.as_file(), Depth::Light).unwrap();
    assert!(light.sampled);
    assert!(light.entropy > 7.9, "the head and tail were read");
    assert_eq!(light.kind, FileKind::Unknown);
    // Digests and block samples are compared only before and after a
    // write, never with light facts: neither is computed for them.
    assert!(!f.digest.0.is_empty());
    assert!(light.digest.0.is_empty() && light.blocks.is_empty());
}

#[test]
fn the_entropy_counts_every_byte_read_kept_as_a_block_or_not() {
    // Past 256 chunks read whole (given whole here: the plan stops at
    // 1 MiB), every third is kept as a block. Laid out so those are all
    // zeros: the whole file's entropy must still be of all its bytes.
    let mut bytes = Vec::new();
    for i in 0..600u64 {
        bytes.extend(if i % 3 == 0 { vec![0u8; 4096] } else { random(4096, i + 1) });
    }
    let f = facts(bytes.len() as u64, &[(0, &bytes[..])], Depth::Full);
    assert!(!f.sampled);
    assert_eq!(f.blocks.len(), 200);
    assert!(f.blocks.iter().all(|b| b.entropy == 0.0), "every kept block is a zero block");
    assert_eq!(f.entropy, entropy(&bytes));
    assert!(f.entropy > 5.0);
    let small = random(40_000, 5);
    assert_eq!(facts_of_bytes(&small).entropy, entropy(&small));
}

#[test]
fn read_facts_of_a_small_file_reads_it_whole() {
    let zip = zip_of(&[("a.txt", prose(100, 2).as_bytes())]);
    let file = write_temp(&zip);
    let f = read_facts(file.as_file(), Depth::Full).unwrap();
    assert!(!f.sampled);
    assert_eq!(f.kind, known(Format::Zip, true));
    assert!(f.small_hash.is_some());
    let empty = write_temp(b"");
    assert_eq!(read_facts(empty.as_file(), Depth::Light).unwrap().kind, FileKind::Empty);
}

#[test]
fn a_file_read_whole_gives_its_bytes_and_blake3_with_the_same_facts() {
    for len in [1, 4096, 40_000, 64 * 1024 + 1, 1 << 20] {
        let bytes = random(len, len as u64);
        let file = write_temp(&bytes);
        let (f, whole) = read_facts_whole(file.as_file(), len as u64, Depth::Full).unwrap();
        assert_eq!(f, read_facts(file.as_file(), Depth::Full).unwrap(), "{len} bytes");
        let whole = whole.unwrap_or_else(|| panic!("{len} bytes are read whole"));
        assert_eq!(whole.bytes, bytes);
        assert_eq!(&whole.blake3, blake3::hash(&bytes).as_bytes(), "{len} bytes");
    }
    // Sampled, or shorter than the size asked for: no bytes to copy from.
    let big = write_temp(&random((1 << 20) + 1, 9));
    assert!(read_facts_whole(big.as_file(), (1 << 20) + 1, Depth::Full).unwrap().1.is_none());
    let shrunk = write_temp(&random(5000, 3));
    assert!(read_facts_whole(shrunk.as_file(), 6000, Depth::Full).unwrap().1.is_none());
}

#[test]
fn a_file_that_shrank_is_described_as_read() {
    // Facts given fewer bytes than the planned size: the last region does
    // not reach the end, so the trailer is unknown and counted as intact.
    let zip = zip_of(&[("a.txt", prose(100, 2).as_bytes())]);
    let f: ContentFacts = facts(zip.len() as u64 + 100, &[(0, &zip[..])], Depth::Full);
    assert!(f.sampled);
    assert_eq!(f.kind, known(Format::Zip, true));
}

#[test]
fn region_change_finds_exactly_the_overwritten_blocks() {
    let size = 32 << 20;
    let before = random(size, 41);
    let mut after = before.clone();
    let (start, len) = (8 << 20, 1 << 20);
    after[start..start + len].copy_from_slice(&random(len, 42));

    let b = facts_of_bytes(&before);
    let a = facts_of_bytes(&after);
    let expected = b.blocks.iter().filter(|s| s.offset >= start as u64 && s.offset < (start + len) as u64).count();
    assert_eq!(expected, 4);
    let change = region_change(&b.blocks, &a.blocks);
    assert_eq!(change.compared, b.blocks.len());
    assert_eq!(change.changed, expected);
    assert!(change.entropy_before > 7.9 && change.entropy_after > 7.9);

    let mut zeroed = before.clone();
    zeroed[start..start + len].fill(0);
    let change = region_change(&b.blocks, &facts_of_bytes(&zeroed).blocks);
    assert_eq!(change.changed, expected);
    assert_eq!(change.entropy_after, 0.0);
    assert_eq!(region_change(&b.blocks, &b.blocks).changed, 0);
}

/// The archivers themselves (installed by `.ci/run`), with and without a
/// password, read as the sensor reads a new file: light facts.
#[test]
fn archives_made_with_a_password_are_ciphertext_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("report.txt");
    std::fs::write(&doc, prose(400, 3)).unwrap();
    let archive = |name: &str, program: &str, args: &[&str]| {
        let out = dir.path().join(name);
        let status = std::process::Command::new(program)
            .args(args)
            .arg(&out)
            .arg(&doc)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{program}: {e} (install zip and p7zip-full)"));
        assert!(status.success(), "{program} {args:?}");
        let file = std::fs::File::open(&out).unwrap();
        read_facts(&file, Depth::Light).unwrap()
    };
    let sealed = [
        archive("z.zip", "zip", &["-q", "-j", "-P", "pw"]),
        archive("h.7z", "7z", &["a", "-bd", "-ppw", "-mhe=on"]),
        archive("p.7z", "7z", &["a", "-bd", "-ppw", "-mhe=off"]),
    ];
    for f in &sealed {
        assert!(f.encoded_random, "{f:?}");
        assert!(matches!(f.kind, FileKind::Known { .. }), "still an archive: {:?}", f.kind);
    }
    for f in [archive("o.zip", "zip", &["-q", "-j"]), archive("o.7z", "7z", &["a", "-bd"])] {
        assert!(!f.encoded_random, "no password: {f:?}");
    }
}
