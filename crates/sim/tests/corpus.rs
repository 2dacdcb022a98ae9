//! The corpus generator: real formats, reproducible, marked.

use std::fs;
use std::io::Read;
use std::path::Path;

mod common;
use common::files;
use mamori_sim::{check_target, make_corpus, CorpusSpec};

fn ext(path: &Path) -> String {
    path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default()
}

#[test]
fn default_corpus_has_real_formats_and_is_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    let spec = CorpusSpec { large_size: 32 << 20, ..CorpusSpec::default() };
    let summary = make_corpus(&dir, &spec).unwrap();
    check_target(&dir).unwrap();
    let all = files(&dir);
    assert_eq!(summary.files, all.len());
    assert_eq!(all.len(), spec.docs + spec.large);
    assert!(summary.dirs >= 8, "{summary:?}");
    assert!(all.iter().any(|p| p.starts_with(dir.join("経理"))));
    assert!(all.iter().any(|p| p.file_name().unwrap().to_string_lossy().starts_with('.')), "hidden files");

    for path in &all {
        let data = fs::read(path).unwrap();
        match ext(path).as_str() {
            "docx" | "xlsx" => {
                let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&data)).unwrap();
                let main = if ext(path) == "docx" { "word/document.xml" } else { "xl/worksheets/sheet1.xml" };
                let mut xml = String::new();
                zip.by_name(main).unwrap().read_to_string(&mut xml).unwrap();
                assert!(xml.len() > 200);
                zip.by_name("[Content_Types].xml").unwrap();
            }
            "pdf" => {
                assert!(data.starts_with(b"%PDF-1."));
                assert!(data.ends_with(b"%%EOF\n"));
                let text = String::from_utf8_lossy(&data);
                let at: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
                assert!(data[at..].starts_with(b"xref"), "{}: startxref points at the xref table", path.display());
            }
            "jpg" => {
                assert!(data.starts_with(&[0xFF, 0xD8, 0xFF]) && data.ends_with(&[0xFF, 0xD9]));
                assert!((20 << 10..=200 << 10).contains(&data.len()), "{}: {} bytes", path.display(), data.len());
            }
            "png" => {
                let decoder = png::Decoder::new(std::io::Cursor::new(&data));
                let mut reader = decoder.read_info().unwrap();
                let mut buf = vec![0; reader.output_buffer_size().unwrap()];
                reader.next_frame(&mut buf).unwrap();
            }
            "txt" | "md" | "csv" => {
                let text = String::from_utf8(data.clone()).unwrap();
                assert!(text.len() >= 200, "{}", path.display());
            }
            "img" => {
                assert_eq!(data.len() as u64, spec.large_size);
                assert_eq!(data[510..512], [0x55, 0xAA]);
                let zero_blocks = data.chunks(65536).filter(|b| b.iter().all(|x| *x == 0)).count();
                let blocks = data.len() / 65536;
                assert!(zero_blocks > blocks / 2 && zero_blocks < blocks, "{zero_blocks}/{blocks} zero blocks");
            }
            other => panic!("unexpected file type {other:?}: {}", path.display()),
        }
    }
    let sizes: Vec<usize> = all.iter().map(|p| fs::metadata(p).unwrap().len() as usize).collect();
    assert!(sizes.iter().filter(|s| (1 << 10..=2 << 20).contains(*s)).count() * 10 >= all.len() * 9);
}

#[test]
fn corpus_is_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = CorpusSpec { docs: 20, large: 1, large_size: 4 << 20 };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    make_corpus(&a, &spec).unwrap();
    make_corpus(&b, &spec).unwrap();
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.strip_prefix(&a).unwrap(), y.strip_prefix(&b).unwrap());
        assert_eq!(fs::read(x).unwrap(), fs::read(y).unwrap(), "{}", x.display());
    }
}
