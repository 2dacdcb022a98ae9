//! The HTML report opened in a real headless Chromium: the DOM it builds
//! holds the report's text (escaped paths as text, no injected elements),
//! and a screenshot shows an actual page.

use std::path::{Path, PathBuf};
use std::process::Command;

use mamori_report::{render, Format, Lang};

use crate::fixture::{case, MARKUP, SHA};

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(found) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
        {
            return found;
        }
    }
    panic!("no Chromium found: the HTML report is checked in a real browser; install it with `apt-get install -y chromium`");
}

/// Runs headless Chromium on `page` with extra arguments; returns stdout.
fn run(page: &Path, profile: &Path, args: &[&str]) -> String {
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

fn write_report(dir: &Path, lang: Lang) -> PathBuf {
    let page = dir.join("report.html");
    std::fs::write(&page, render(&case(), lang, Format::Html)).unwrap();
    page
}

fn dom_check(lang: Lang, tag: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(dir.path(), lang);
    let dom = run(&page, &dir.path().join("profile"), &["--dump-dom"]);
    assert!(dom.contains(tag), "lang attribute lost: {}", &dom[..dom.len().min(300)]);
    for text in expected {
        assert!(dom.contains(text), "{text:?} not in the DOM Chromium built");
    }
    // The path with markup stays text: serialised escaped, never an element.
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;|pipe|.docx"), "escaped path missing from the DOM");
    assert!(!dom.contains("<script"), "the case injected a script element");
    assert!(!dom.contains(MARKUP));
    assert!(!dom.contains("<b>not bold</b>"), "the note injected markup");
}

#[test]
fn chromium_builds_the_japanese_report() {
    dom_check(
        Lang::Ja,
        "<html lang=\"ja\">",
        &["ランサムウェア被害 インシデント報告書（INC-0007）", "初動対応チェックリスト", "⑨ その他参考となる事項", SHA],
    );
}

#[test]
fn chromium_builds_the_english_report() {
    dom_check(
        Lang::En,
        "<html lang=\"en\">",
        &["Ransomware incident report (INC-0007)", "First-response checklist", "⑨ Anything else of use", SHA],
    );
}

#[test]
fn chromium_renders_a_page_with_content() {
    let dir = tempfile::tempdir().unwrap();
    let page = write_report(dir.path(), Lang::Ja);
    let shot = dir.path().join("report.png");
    run(
        &page,
        &dir.path().join("profile"),
        &["--window-size=1000,1400", "--hide-scrollbars", &format!("--screenshot={}", shot.display())],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).expect("screenshot written")));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1000, 1400));
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let dark = pixels.chunks(channels).filter(|p| p[..3].iter().all(|c| *c < 96)).count();
    let total = (info.width * info.height) as usize;
    // Text covers a few percent of a page; a blank or failed page has none.
    assert!(dark * 200 > total, "only {dark} dark pixels of {total}: the page looks empty");
    // The heading rule is the report's red (#b00).
    let red = pixels.chunks(channels).filter(|p| p[0] > 150 && p[1] < 40 && p[2] < 40).count();
    assert!(red > 500, "no red heading rule drawn ({red} pixels)");
}

/// An audit with mamori's own findings and one whose evidence carries markup.
fn audit() -> mamori_audit::Audit {
    let mut findings = mamori_audit::own::own(&mamori_audit::own::OwnFacts {
        agent_running: false,
        protected: vec!["/srv/share".into()],
        data_folders: vec!["/home".into()],
        vault_on: true,
        vault_skipped: 2,
        decoys_on: true,
        decoys_missing: Vec::new(),
        vault_lock: Ok(()),
        alert_outputs: 0,
    });
    findings[0].detail = MARKUP.into();
    mamori_audit::Audit::new("fs01".into(), jiff::Timestamp::UNIX_EPOCH, findings)
}

#[test]
fn chromium_builds_the_audit_report_in_both_languages() {
    for (lang, tag, expected) in [
        (
            Lang::Ja,
            "<html lang=\"ja\">",
            ["ランサムウェア対策の点検結果: fs01", "mamori のエージェントが動いていない", "重要度 高(2 件)"],
        ),
        (
            Lang::En,
            "<html lang=\"en\">",
            ["Ransomware readiness audit: fs01", "The mamori agent is not running", "High (2)"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("audit.html");
        std::fs::write(&page, mamori_report::render_audit(&audit(), lang, Format::Html)).unwrap();
        let dom = run(&page, &dir.path().join("profile"), &["--dump-dom"]);
        assert!(dom.contains(tag), "lang attribute lost: {}", &dom[..dom.len().min(300)]);
        for text in expected {
            assert!(dom.contains(text), "{text:?} not in the DOM Chromium built");
        }
        assert!(!dom.contains(MARKUP), "the evidence injected markup");
        assert!(!dom.contains("<script"), "the evidence injected a script element");
    }
}
