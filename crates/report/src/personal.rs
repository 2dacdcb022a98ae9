//! Whether the damaged files may hold personal data, judged from names only:
//! document-like file types in folders (or files) named for customers,
//! staff, pay, patients, applicants or people in general. Contents are never
//! read, so the answer is a count to start a check, not a finding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::timeline::extension;

/// Why a file was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Customers,
    Employees,
    Payroll,
    Medical,
    Applicants,
    /// Rosters, address books, "personal", My Number.
    People,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalData {
    pub likely: bool,
    /// Files counted (each once, whatever the number of reasons).
    pub files: usize,
    /// Files per reason; a file named for two reasons counts under both.
    pub by_reason: BTreeMap<Reason, usize>,
}

/// Spreadsheets, documents, exports, databases and mail: where lists of people
/// live. JSON and XML are left out: they are mostly configuration
/// (`client.json`), and counting them would cry wolf.
const DOCUMENT_EXTENSIONS: &[&str] = &[
    "xlsx", "xlsm", "xls", "ods", "csv", "tsv", "docx", "doc", "odt", "rtf", "pdf", "txt", "pptx", "ppt", "mdb",
    "accdb", "db", "sqlite", "sqlite3", "dbf", "vcf", "msg", "eml", "pst", "zip",
];

/// Japanese words match anywhere; ASCII words must start a word (after a
/// separator or at a camel-case hump), and short ones must be whole words.
const KEYWORDS: &[(Reason, &[&str])] = &[
    (Reason::Customers, &["顧客", "お客様", "会員", "customer", "client", "member", "crm"]),
    (Reason::Employees, &["社員", "従業員", "職員", "人事", "employee", "staff", "personnel", "hr"]),
    (Reason::Payroll, &["給与", "給料", "賞与", "源泉", "年末調整", "payroll", "salary", "salaries", "wage"]),
    (Reason::Medical, &["患者", "カルテ", "診療", "医療", "健康診断", "medical", "patient", "health"]),
    (Reason::Applicants, &["履歴書", "職務経歴", "応募", "採用", "resume", "cv", "applicant", "recruit"]),
    (
        Reason::People,
        &[
            "個人",
            "名簿",
            "住所録",
            "連絡先",
            "マイナンバー",
            "個人番号",
            "personal",
            "roster",
            "addressbook",
            "contacts",
            "pii",
        ],
    ),
];

/// Counts the paths that look like documents about people. Only names are
/// looked at; each path counts once in `files` and once per reason.
pub fn personal_data<'a>(paths: impl IntoIterator<Item = &'a str>) -> PersonalData {
    let mut result = PersonalData::default();
    for path in paths {
        let is_document =
            extension(path).is_some_and(|e| DOCUMENT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !is_document {
            continue;
        }
        let mut counted = false;
        for (reason, words) in KEYWORDS {
            if words.iter().any(|w| mentions(path, w)) {
                *result.by_reason.entry(*reason).or_default() += 1;
                counted = true;
            }
        }
        result.files += usize::from(counted);
    }
    result.likely = result.files > 0;
    result
}

fn mentions(path: &str, word: &str) -> bool {
    if !word.is_ascii() {
        return path.contains(word);
    }
    let bytes = path.as_bytes();
    let lower = path.to_ascii_lowercase();
    lower.match_indices(word).any(|(i, _)| {
        let starts = i == 0 || {
            let prev = bytes[i - 1];
            !prev.is_ascii_alphanumeric() || (prev.is_ascii_lowercase() && bytes[i].is_ascii_uppercase())
        };
        let mut end = i + word.len();
        if word.len() >= 4 {
            return starts;
        }
        if bytes.get(end) == Some(&b's') {
            end += 1;
        }
        starts && bytes.get(end).is_none_or(|b| !b.is_ascii_alphanumeric() || b.is_ascii_uppercase())
    })
}
