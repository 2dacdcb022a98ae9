//! The audit report (`mamori audit --format md|html`): findings worst
//! first, what to fix as a checklist, and each finding's evidence, why it
//! matters for ransomware and its fix, in the reader's language. A check's
//! words come from `mamori_audit::check_text`; a finding whose check is not
//! known there (an audit saved by another version) keeps its English words.

use mamori_audit::{Audit, Finding, Severity};

use crate::doc::{Block, Doc, Section};
use crate::Lang;

struct Words {
    lang: &'static str,
    title: &'static str,
    summary: &'static str,
    host: &'static str,
    time: &'static str,
    counts: &'static str,
    clean: &'static str,
    urgent: &'static str,
    todo: &'static str,
    found: &'static str,
    why: &'static str,
    fix: &'static str,
    severities: [&'static str; 4],
    /// A severity's section: its name and how many.
    section: fn(&str, usize) -> String,
    check: &'static str,
    footer: &'static str,
}

const EN: Words = Words {
    lang: "en",
    title: "Ransomware readiness audit",
    summary: "Summary",
    host: "Host",
    time: "Audited at (UTC)",
    counts: "Findings",
    clean: "Nothing above information was found.",
    urgent: "problem(s) to fix now: each is a way in for ransomware or a reason the backups would not save you.",
    todo: "What to fix, most urgent first",
    found: "Found",
    why: "Why it matters",
    fix: "Fix",
    severities: ["Information", "Low", "Medium", "High"],
    section: |severity, n| format!("{severity} ({n})"),
    check: "Check id",
    footer: "mamori audit. The same findings as JSON: mamori audit --json. Run it again after each fix.",
};

const JA: Words = Words {
    lang: "ja",
    title: "ランサムウェア対策の点検結果",
    summary: "概要",
    host: "ホスト",
    time: "点検日時 (UTC)",
    counts: "指摘",
    clean: "情報以上の指摘はありません。",
    urgent:
        "件の問題を今すぐ直してください。どれもランサムウェアの侵入口か、バックアップで復旧できない原因になります。",
    todo: "対応すること(緊急度の高い順)",
    found: "見つかったもの",
    why: "なぜ問題か",
    fix: "対処",
    severities: ["情報", "低", "中", "高"],
    section: |severity, n| format!("重要度 {severity}({n} 件)"),
    check: "点検 ID",
    footer: "mamori audit。同じ内容の JSON: mamori audit --json。対処のたびに再実行してください。",
};

fn severity(w: &Words, s: Severity) -> &'static str {
    w.severities[s as usize]
}

/// The title, why and fix of `f` in `lang`.
fn said(f: &Finding, lang: Lang) -> (String, String, String) {
    match mamori_audit::check_text(&f.check) {
        Some(t) => {
            let words = if lang == Lang::Ja { &t.ja } else { &t.en };
            (words.title.to_owned(), words.why.to_owned(), words.fix_for(&f.target))
        }
        None => (f.check.clone(), f.why.clone(), f.fix.clone()),
    }
}

pub(crate) fn compose(audit: &Audit, lang: Lang) -> Doc {
    let w = if lang == Lang::Ja { &JA } else { &EN };
    let s = &audit.summary;
    let counts = [Severity::High, Severity::Medium, Severity::Low, Severity::Info]
        .iter()
        .zip([s.high, s.medium, s.low, s.info])
        .map(|(sev, n)| format!("{} {n}", severity(w, *sev)))
        .collect::<Vec<_>>()
        .join(" / ");
    let mut summary = vec![Block::Facts(vec![
        (w.host.to_owned(), audit.host.clone()),
        (w.time.to_owned(), audit.time.clone()),
        (w.counts.to_owned(), counts),
    ])];
    if s.high > 0 {
        summary.push(Block::Important(format!("{} {}", s.high, w.urgent)));
    } else if s.medium == 0 && s.low == 0 {
        summary.push(Block::Para(w.clean.to_owned()));
    }
    let mut sections = vec![Section { heading: w.summary.to_owned(), blocks: summary }];
    let todo: Vec<String> = audit
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .map(|f| format!("[{}] {}: {}", severity(w, f.severity), f.target, said(f, lang).2))
        .collect();
    if !todo.is_empty() {
        sections.push(Section { heading: w.todo.to_owned(), blocks: vec![Block::Checklist(todo)] });
    }
    for sev in [Severity::High, Severity::Medium, Severity::Low, Severity::Info] {
        let mut blocks = Vec::new();
        let of_sev: Vec<&Finding> = audit.findings.iter().filter(|f| f.severity == sev).collect();
        for f in &of_sev {
            let (title, why, fix) = said(f, lang);
            blocks.push(Block::Sub(format!("{title} — {}", f.target)));
            blocks.push(Block::Facts(vec![
                (w.found.to_owned(), f.detail.clone()),
                (w.why.to_owned(), why),
                (w.fix.to_owned(), fix),
                (w.check.to_owned(), f.check.clone()),
            ]));
        }
        if !blocks.is_empty() {
            sections.push(Section { heading: (w.section)(severity(w, sev), of_sev.len()), blocks });
        }
    }
    Doc { lang: w.lang, title: format!("{}: {}", w.title, audit.host), sections, footer: w.footer.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    fn audit() -> Audit {
        let own = mamori_audit::own::own(&mamori_audit::own::OwnFacts {
            agent_running: false,
            protected: vec!["/srv".into()],
            data_folders: vec!["/home".into()],
            vault_on: true,
            vault_skipped: 0,
            decoys_on: true,
            decoys_missing: Vec::new(),
            vault_lock: Err("no BPF LSM <here>".into()),
            alert_outputs: 1,
        });
        Audit::new("fs01".into(), jiff::Timestamp::UNIX_EPOCH, own)
    }

    #[test]
    fn japanese_words_come_from_the_checks_and_evidence_is_kept_as_found() {
        let md = crate::render_audit(&audit(), Lang::Ja, Format::Markdown);
        assert!(md.contains("mamori のエージェントが動いていない"), "{md}");
        assert!(md.contains("\"/home\" を加え"), "{md}");
        assert!(md.contains("- [ ] \\[高\\]"), "the fixes are a checklist: {md}");
        let en = crate::render_audit(&audit(), Lang::En, Format::Markdown);
        assert!(en.contains("The mamori agent is not running") && !en.contains("エージェント"), "{en}");
    }

    #[test]
    fn the_html_escapes_what_was_found() {
        let html = crate::render_audit(&audit(), Lang::En, Format::Html);
        assert!(html.contains("no BPF LSM &lt;here&gt;"), "{html}");
        assert!(html.contains("<html lang=\"en\">"));
    }

    #[test]
    fn an_unknown_check_keeps_its_english_words() {
        let mut a = audit();
        a.findings[0].check = "future.check".into();
        a.findings[0].why = "because".into();
        let md = crate::render_audit(&a, Lang::Ja, Format::Markdown);
        assert!(md.contains("future.check") && md.contains("because"), "{md}");
    }
}
