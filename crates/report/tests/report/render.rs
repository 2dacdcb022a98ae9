//! What the report says, in both languages and both formats.

use mamori_report::{render, Decryptor, Family, FileOutcome, Format, Lang, Matched, Restored};
use mamori_store::FileOp;

use crate::fixture::{case, CUSTOMERS, EXE, MARKUP, SHA};

const BOTH: [Format; 2] = [Format::Markdown, Format::Html];

fn all_of(text: &str, needles: &[&str]) {
    let missing: Vec<&&str> = needles.iter().filter(|n| !text.contains(**n)).collect();
    assert!(missing.is_empty(), "missing {missing:?} in:\n{text}");
}

#[test]
fn japanese_report_states_the_key_facts() {
    for format in BOTH {
        let text = render(&case(), Lang::Ja, format);
        all_of(
            &text,
            &[
                "ランサムウェア被害 インシデント報告書（INC-0007）",
                "fileserver-01",
                EXE,
                SHA,
                "4242, 4243",
                "830 µs",
                "一時停止（SIGSTOP）",
                "JST",
                "影響を受けたファイルは 5 件です",
                "復元済み 3 件",
                "復元に失敗 1 件",
                "no copy in the vault",
                "含まれる可能性あり（2 件）",
                "顧客・会員",
                "給与",
                "/var/lib/mamori/evidence/INC-0007",
                "mamori restore INC-0007",
                "ファイルの中身は一切見ていません",
            ],
        );
    }
}

#[test]
fn english_report_states_the_key_facts() {
    for format in BOTH {
        let text = render(&case(), Lang::En, format);
        all_of(
            &text,
            &[
                "Ransomware incident report (INC-0007)",
                "fileserver-01",
                EXE,
                SHA,
                "4242, 4243",
                "830 µs",
                "suspended (SIGSTOP)",
                "JST",
                "The attack touched 5 files",
                "restored: 3",
                "restore failed: 1",
                "may be involved (2 files)",
                "customers, members",
                "payroll",
                "mamori restore INC-0007",
                "no file content was read",
            ],
        );
    }
}

#[test]
fn both_languages_list_the_nine_ppc_items_and_deadlines() {
    let ja = render(&case(), Lang::Ja, Format::Markdown);
    all_of(
        &ja,
        &[
            "個人情報保護委員会への報告事項",
            "① 概要",
            "② 漏えい等が発生し、又は発生したおそれがある個人データの項目",
            "③ 漏えい等が発生し、又は発生したおそれがある個人データに係る本人の数",
            "④ 原因",
            "⑤ 二次被害又はそのおそれの有無及びその内容",
            "⑥ 本人への対応の実施状況",
            "⑦ 公表の実施状況",
            "⑧ 再発防止のための措置",
            "⑨ その他参考となる事項",
            "本人が 1 人だけでも",
            "速報",
            "3〜5 日以内",
            "確報は 60 日以内",
            "（要記入）",
            // Prefilled from what mamori knows.
            "最初の変更は",
            "盗んだデータの公開をほのめかす文言があります",
        ],
    );
    let en = render(&case(), Lang::En, Format::Markdown);
    all_of(
        &en,
        &[
            "Personal Information Protection Commission",
            "① Overview",
            "② Items of personal data",
            "③ Number of people",
            "④ Cause",
            "⑤ Secondary damage",
            "⑥ What has been done for the people concerned",
            "⑦ Public announcement",
            "⑧ Measures against recurrence",
            "⑨ Anything else of use",
            "even if only one person",
            "3 to 5 days",
            "within 60 days",
            "(to fill in)",
            "hints that stolen data will be published",
        ],
    );
}

#[test]
fn both_languages_carry_the_checklist_and_contacts() {
    let ja = render(&case(), Lang::Ja, Format::Html);
    all_of(
        &ja,
        &[
            "初動対応チェックリスト",
            "今から 30 分以内",
            "24 時間以内",
            "電源を切らない",
            "ネットワークから切り離す",
            "初期化",
            "経営層",
            "IPA",
            "JPCERT/CC",
            "サイバー犯罪相談窓口",
            "保険会社",
            "弁護士",
            "報告で伝えること",
            "class=\"checklist\"",
        ],
    );
    let en = render(&case(), Lang::En, Format::Markdown);
    all_of(
        &en,
        &[
            "First-response checklist",
            "In the next 30 minutes",
            "In the next 24 hours",
            "- [ ] Do not power off or reboot fileserver-01",
            "Do not wipe",
            "management",
            "IPA",
            "JPCERT/CC",
            "cybercrime consultation desk",
            "insurer",
            "lawyer",
            "What to report",
        ],
    );
}

#[test]
fn the_incident_form_fields_come_from_the_case() {
    let ja = render(&case(), Lang::Ja, Format::Markdown);
    all_of(
        &ja,
        &[
            "ランサムウェア事案共通様式",
            "暗号化されたファイルの拡張子**: .locked 4 件",
            "公開の脅迫: 脅迫文にあり",
            "侵入経路**: 不明（要記入）",
            "recover@example.org",
            "http://abcdefghijklmnop.onion/chat",
            "203.0.113.9:443",
            "ツール名: /tmp/.cache/enc",
        ],
    );
    let en = render(&case(), Lang::En, Format::Markdown);
    all_of(
        &en,
        &["Extension of the encrypted files**: .locked: 4", "leak threat: in the note", "unknown (to fill in)"],
    );
}

#[test]
fn an_unknown_family_is_called_unknown_and_a_known_one_is_named() {
    let ja = render(&case(), Lang::Ja, Format::Markdown);
    assert!(ja.contains("ランサムウェアの種類は不明です"));
    assert!(ja.contains("ランサムウェアの種類**: 不明"));
    let en = render(&case(), Lang::En, Format::Html);
    assert!(en.contains("The ransomware family is unknown"));
    // Candidates are shown as such, never as the family, in the report's words.
    assert!(ja.contains("候補(未確定") && ja.contains("LockBit(一致の重み 2、特定には 3 以上が必要)"), "{ja}");
    assert!(en.contains("Candidates, not confirmed") && en.contains("LockBit (weight 2 of the 3 that name a family)"));

    let mut known = case();
    let matched =
        |kind: &str, text: &str, sample: &str| Matched { kind: kind.into(), text: text.into(), sample: sample.into() };
    known.family = Some(Family {
        name: "STOP/Djvu".into(),
        confidence: "high".into(),
        evidence: vec!["STOP/Djvu: weight 5, 2 kinds of marker agreed: phrases, extension".into()],
        matched: vec![
            matched("phrase", "ATTENTION! Don't worry", "_readme.txt"),
            matched("extension", ".djvu", "report.docx.djvu"),
        ],
        decryptor: Some(Decryptor {
            name: "Emsisoft Decryptor for STOP Djvu".into(),
            url: "https://www.nomoreransom.org/".into(),
        }),
    });
    let ja = render(&known, Lang::Ja, Format::Markdown);
    all_of(
        &ja,
        &[
            "STOP/Djvu",
            "Emsisoft Decryptor for STOP Djvu",
            "確度**: 高",
            "2 種類の手がかりが一致: 脅迫文に特有の文言、暗号化後に付ける拡張子",
            "\\_readme.txt: 脅迫文に特有の文言「ATTENTION\\! Don't worry」",
            "report.docx.djvu: 暗号化後に付ける拡張子「.djvu」",
        ],
    );
    assert!(!ja.contains("weight 5") && !ja.contains("kinds of marker"), "the identifier's English stays out: {ja}");
    let en = render(&known, Lang::En, Format::Markdown);
    all_of(
        &en,
        &[
            "confidence**: high",
            "2 kind(s) of marker agreed: a phrase of its notes, the extension it appends",
            "report.docx.djvu: the extension it appends “.djvu”",
        ],
    );
    for text in [&ja, &en] {
        assert!(!text.contains("種類は不明です") && !text.contains("family is unknown"), "{text}");
    }
    // A bundle from before the matches were kept: its evidence lines stand.
    known.family.as_mut().unwrap().matched.clear();
    let old = render(&known, Lang::Ja, Format::Markdown);
    assert!(old.contains("STOP/Djvu: weight 5, 2 kinds of marker agreed"), "{old}");
}

#[test]
fn the_text_report_is_plain_and_keeps_the_facts() {
    let text = render(&case(), Lang::En, Format::Text);
    assert!(text.starts_with("Ransomware incident report (INC-0007)\n===="), "{text}");
    assert!(text.contains(MARKUP), "paths are shown as they are, not escaped for markup: {text}");
    assert!(!text.contains("**") && !text.contains("<p>"), "{text}");
}

#[test]
fn html_escapes_paths_and_sets_the_language() {
    for (lang, tag) in [(Lang::Ja, "<html lang=\"ja\">"), (Lang::En, "<html lang=\"en\">")] {
        let html = render(&case(), lang, Format::Html);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains(tag));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;|pipe|.docx"), "path escaped");
        assert!(!html.contains("<script"), "no markup from the case");
        assert!(!html.contains("<b>"), "note excerpt escaped");
        assert!(html.contains("memo\\x0anext line.txt"), "newline in a name shown, not obeyed");
        assert!(html.contains("@media print"));
        assert!(!html.contains("http-equiv") && !html.contains("<link") && !html.contains("src="), "self-contained");
    }
}

#[test]
fn markdown_tables_keep_their_shape_whatever_the_paths() {
    for lang in [Lang::Ja, Lang::En] {
        let md = render(&case(), lang, Format::Markdown);
        assert!(md.contains("\\<script\\>alert(1)\\</script\\>\\|pipe\\|.docx"), "{md}");
        assert_tables_keep_their_shape(&md);
        // The note's own code fence cannot close the verbatim block.
        assert!(md.contains("````text\nYOUR FILES ARE ENCRYPTED."));
    }
}

#[test]
fn long_file_lists_are_capped_with_a_count_and_failures_first() {
    let mut big = case();
    for i in 0..120 {
        big.files.push(FileOutcome {
            path: format!("/srv/share/docs/file{i:03}.odt"),
            op: FileOp::Write,
            to: None,
            restored: Some(Restored::Restored),
        });
    }
    let total = big.files.len();
    let ja = render(&big, Lang::Ja, Format::Markdown);
    assert!(ja.contains(&format!("ほか {} 件", total - 50)));
    let en = render(&big, Lang::En, Format::Markdown);
    assert!(en.contains(&format!("{} more", total - 50)));
    let rows = en.lines().filter(|l| l.starts_with("| /srv/share/")).count();
    assert_eq!(rows, 50);
    let first = en.lines().find(|l| l.starts_with("| /srv/share/")).unwrap();
    assert!(first.contains("restore failed"), "failures first: {first}");
    assert!(!en.contains("file119.odt"), "rows past the cap are counted, not listed");
}

#[test]
fn a_failed_stop_is_flagged_and_no_personal_data_is_said_plainly() {
    let mut failed = case();
    failed.incident.action = mamori_store::Action::Failed;
    failed.files.retain(|f| f.path != CUSTOMERS && !f.path.contains("社員"));
    let ja = render(&failed, Lang::Ja, Format::Markdown);
    all_of(
        &ja,
        &["停止に失敗", "暗号化がまだ続いているおそれがあります", "個人データを含むファイルは見当たりませんでした"],
    );
    let en = render(&failed, Lang::En, Format::Html);
    all_of(&en, &["could not be stopped", "No file or folder name suggests personal data"]);
    assert!(!en.contains(MARKUP), "raw path never appears in HTML");
}

#[test]
fn a_bare_case_says_what_is_not_known() {
    let mut bare = case();
    bare.timeline.clear();
    bare.files.clear();
    bare.notes.clear();
    bare.evidence = None;
    bare.exe_sha256 = None;
    bare.remote_addrs.clear();
    bare.timezone = None;
    bare.incident.stop_latency_us = None;
    bare.incident.actor.exe.clear();
    bare.incident.actor.uid = u32::MAX;
    bare.incident.notes.clear();
    let ja = render(&bare, Lang::Ja, Format::Markdown);
    all_of(
        &ja,
        &[
            "検知から停止まで**: 不明",
            "検知したプログラム**: 不明",
            "UTC",
            "記録された操作はありません",
            "変更されたファイルは記録されていません",
            "脅迫文は見つかっていません",
            "証拠の保全先**: 保全していません",
            "身代金の要求・連絡手段**: 脅迫文からは読み取れませんでした",
            "インディケータ情報（ハッシュ値・通信先・ツール名）**: （要記入）",
        ],
    );
    assert!(!ja.contains("12. mamori からの補足"), "no empty remarks section");
    let en = render(&bare, Lang::En, Format::Markdown);
    all_of(&en, &["Detection to stop**: unknown", "No operations were recorded", "No ransom note was found", "UTC"]);
}

/// The lines under a Markdown report's sub-heading, up to the next heading.
fn under<'a>(md: &'a str, heading: &str) -> Vec<&'a str> {
    let start = md.find(&format!("### {heading}")).unwrap_or_else(|| panic!("no {heading} in {md}"));
    md[start..].lines().skip(1).take_while(|l| !l.starts_with('#')).filter(|l| l.starts_with("- ")).collect()
}

#[test]
fn a_japanese_report_gives_its_reasons_in_japanese() {
    let ja = render(&case(), Lang::Ja, Format::Markdown);
    let reasons = under(&ja, "検知の根拠");
    assert_eq!(reasons.len(), 3, "{ja}");
    assert!(reasons[0].contains("暗号文のような判別できないデータに書き換えられた（4 件）"), "{reasons:?}");
    assert!(reasons[0].contains("給与明細.xlsx ほか 2 件"), "{reasons:?}");
    assert!(reasons[1].contains("拡張子") && reasons[2].contains("ほかに 2 件"), "{reasons:?}");
    for line in &reasons {
        for english in ["files", "file)", "rewritten", "renamed", "further", " and "] {
            assert!(!line.contains(english), "English under 検知の根拠: {line}");
        }
    }
    let en = render(&case(), Lang::En, Format::Markdown);
    let reasons = under(&en, "Why mamori decided");
    assert!(
        reasons[0].contains("recognised files rewritten into unrecognisable ciphertext-like data (4 files): "),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("(1 file): ") && reasons[2].contains("2 further file operations"), "{reasons:?}");
}

/// Incidents and cases written before reasons and operations were typed:
/// reasons are English sentences, operations their names.
#[test]
fn a_case_of_the_prose_format_still_renders() {
    let mut old = serde_json::to_value(case()).unwrap();
    let sentence = "recognised files rewritten into unrecognisable ciphertext-like data (2 files): /srv/a, /srv/b";
    old["incident"]["reasons"] = serde_json::json!([sentence]);
    old["incident"]["files"] = serde_json::json!([{ "path": "/srv/a", "op": "write" }]);
    old["files"] = serde_json::json!([
        { "path": "/srv/a", "op": "write", "restored": null },
        { "path": "/srv/b", "op": "rename", "to": "/srv/b.locked", "restored": "restored" },
    ]);
    let old: mamori_report::Case = serde_json::from_value(old).expect("an old case loads");
    for (lang, heading, renamed) in
        [(Lang::Ja, "検知の根拠", "名前の変更"), (Lang::En, "Why mamori decided", "renamed")]
    {
        let md = render(&old, lang, Format::Markdown);
        assert_eq!(under(&md, heading), [format!("- {sentence}")], "the old sentence is shown as it was");
        assert!(md.contains(&format!("| /srv/b | {renamed} | /srv/b.locked |")), "{md}");
    }
}

#[test]
fn a_case_survives_a_json_round_trip() {
    let case = case();
    let json = serde_json::to_string(&case).unwrap();
    assert!(json.contains("\"failed\":\"no copy in the vault\""), "restore outcomes readable: {json}");
    let back: mamori_report::Case = serde_json::from_str(&json).unwrap();
    assert_eq!(back, case);
}

#[test]
fn a_timeline_across_midnight_dates_its_rows() {
    let mut late = case();
    // The first event moves to the day before the detection.
    late.timeline[0].time_ns -= 86_400 * 1_000_000_000;
    let md = render(&late, Lang::En, Format::Markdown);
    assert!(md.contains("| Time (JST) | PID |"), "zone in the header");
    assert!(md.contains("| 2026-11-17 20:06:40.000 | 4242 |"), "{md}");
    let same_day = render(&case(), Lang::En, Format::Markdown);
    assert!(same_day.contains("| 20:06:40.000 | 4242 |"));
}

/// Every Markdown table line has as many unescaped pipes as its header.
pub fn assert_tables_keep_their_shape(md: &str) {
    let mut width = None;
    for line in md.lines() {
        if !line.starts_with('|') {
            width = None;
            continue;
        }
        let pipes = line.len() - line.replace('|', "").len() - line.matches("\\|").count();
        match width {
            None => width = Some(pipes),
            Some(w) => assert_eq!(pipes, w, "broken table row: {line}"),
        }
    }
}
