//! What the incident-report forms ask about the attack itself, read from what
//! mamori saw: the extension the encryptor appended, and from the notes'
//! excerpts the contact addresses and any threat to publish stolen data.

use std::collections::BTreeMap;

use crate::timeline::extension;
use crate::Case;

/// Extensions of renamed files that their old names did not have, most frequent first.
pub(crate) fn new_extensions(case: &Case) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for file in &case.files {
        let Some(to) = file.to.as_deref() else { continue };
        if let Some(ext) = extension(to).filter(|e| extension(&file.path) != Some(*e)) {
            *counts.entry(ext.to_string()).or_default() += 1;
        }
    }
    let mut list: Vec<(String, usize)> = counts.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list
}

/// E-mail addresses, web and onion addresses, in the order first seen.
pub(crate) fn contacts(case: &Case) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for note in &case.notes {
        for token in note.excerpt.split(|c: char| c.is_whitespace() || "<>()[]\"'、。「」".contains(c)) {
            let token = token.trim_end_matches(['.', ',', ';', ':', '!', '?']);
            if (is_email(token) || is_web(token)) && !found.iter().any(|f| f == token) {
                found.push(token.to_string());
            }
        }
    }
    found
}

fn is_email(s: &str) -> bool {
    s.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    })
}

fn is_web(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.contains(".onion")
}

/// Words with which notes threaten to publish or sell stolen data.
const LEAK_WORDS: &[&str] = &[
    "leak",
    "publish",
    "exfiltrat",
    "stolen",
    "downloaded your",
    "sell your data",
    "blog",
    "公開",
    "流出",
    "漏えい",
    "漏洩",
    "盗",
    "窃取",
];

/// Whether any note threatens to publish data (double extortion).
pub(crate) fn leak_threat(case: &Case) -> bool {
    case.notes.iter().any(|n| {
        let lower = n.excerpt.to_lowercase();
        LEAK_WORDS.iter().any(|w| lower.contains(w))
    })
}
