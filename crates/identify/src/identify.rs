//! Weighing the markers found in samples into one verdict. The rule is
//! conservative: a family is named only on enough weight, and only when no
//! other family comes close, because a wrong name sends responders after the
//! wrong decryptor and the wrong leak site.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Decryptor, Kind, Marker};
use crate::sample::Sample;
use crate::text;

/// The least weight that names a family: one name, contact, extension or
/// trailer, or two phrases (a phrase may be common beyond the notes it was
/// taken from; two from the same family rarely are), or one phrase and a
/// weak signal (a channel kind, an id line) of the same family. Weak
/// signals weigh 1 and count only where the note's wording (a name, phrase
/// or contact) already points, so they never name a family alone.
const NAME_AT: u32 = 3;
/// Weight from which the verdict is "high", when at least two kinds of
/// strong marker agree: two strong markers, or two phrases and a note name.
const HIGH_AT: u32 = 6;
/// Candidates listed at most when no family is named.
const MAX_CANDIDATES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// No family named.
    None,
    Low,
    Medium,
    High,
}

impl Confidence {
    fn lower(self) -> Confidence {
        match self {
            Confidence::High => Confidence::Medium,
            Confidence::Medium | Confidence::Low => Confidence::Low,
            Confidence::None => Confidence::None,
        }
    }
}

/// A family the samples point to without naming it: too little matched,
/// or another family matched about as much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub family: String,
    /// The weight of its markers that matched (a family is named from 3).
    pub weight: u32,
}

/// One marker of the named family that matched, for a report to put in
/// its own words (the `evidence` lines are English).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    pub kind: Kind,
    /// The marker as the catalog writes it.
    pub text: String,
    /// The name of the note or file that showed it.
    pub sample: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identification {
    /// Display name of the family, `None` when unknown or ambiguous.
    pub family: Option<String>,
    pub confidence: Confidence,
    /// Why, one human line each: what matched in which sample, and what
    /// else came close.
    pub evidence: Vec<String>,
    /// A free decryptor for the family, when one is known.
    pub decryptor: Option<Decryptor>,
    /// When no family is named: the families that matched something, most
    /// first, for a responder to confirm by other means; never a verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    /// When a family is named: its markers that matched, in the order the
    /// evidence lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<Match>,
}

impl Catalog {
    /// Names the family behind the samples (the notes and encrypted files of
    /// one incident), or says it does not know.
    pub fn identify(&self, samples: &[Sample]) -> Identification {
        // Each marker counts once, however many samples show it; the first
        // sample that showed it is the one cited.
        let mut seen = BTreeSet::new();
        let mut hits: Vec<(&Marker, &str)> = Vec::new();
        for sample in samples {
            let found = match sample {
                Sample::Note { name, text } => {
                    let normalized = text::normalize(text);
                    let mut found = self.text_hits(&normalized);
                    found.extend(self.weak_hits(&normalized));
                    found.extend(self.note_name_hits(name));
                    found
                }
                Sample::Encrypted { name, tail } => {
                    let mut found = self.extension_hits(name);
                    found.extend(self.trailer_hits(tail));
                    found
                }
            };
            for marker in found {
                if seen.insert((marker.family, marker.kind, marker.text.as_str())) {
                    hits.push((marker, sample.name()));
                }
            }
        }
        // Weak signals count only for a family the note's own wording
        // points to. Not a note name: "HOW_TO_RECOVER_FILES.txt" and an
        // onion link and a Tox id are what any note may have.
        let pointed_to: BTreeSet<usize> = hits
            .iter()
            .filter(|(m, _)| matches!(m.kind, Kind::Name | Kind::Phrase | Kind::Contact))
            .map(|(m, _)| m.family)
            .collect();
        hits.retain(|(m, _)| !m.kind.is_weak() || pointed_to.contains(&m.family));
        let mut scores: Vec<(usize, u32)> = Vec::new();
        for (marker, _) in &hits {
            match scores.iter_mut().find(|(family, _)| *family == marker.family) {
                Some((_, score)) => *score += marker.kind.weight(),
                None => scores.push((marker.family, marker.kind.weight())),
            }
        }
        // Equal weights are ambiguous anyway; catalog order keeps the message stable.
        scores.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let describe = |family: usize| -> Vec<String> {
            hits.iter()
                .filter(|(marker, _)| marker.family == family)
                .map(|(marker, sample)| evidence_line(marker, sample))
                .collect()
        };
        let name = |family: usize| self.family_at(family).name.as_str();

        let Some(&(top, top_score)) = scores.first() else {
            return unknown(vec!["no marker of any known family found".into()], Vec::new());
        };
        let candidates = |above: u32| -> Vec<Candidate> {
            scores
                .iter()
                .filter(|&&(_, score)| score > above)
                .take(MAX_CANDIDATES)
                .map(|&(family, weight)| Candidate { family: name(family).to_owned(), weight })
                .collect()
        };
        let runner_up = scores.get(1).copied();
        if top_score < NAME_AT {
            let mut evidence = vec![format!(
                "too little to name a family: best is {} with weight {top_score} of the {NAME_AT} needed",
                name(top)
            )];
            evidence.extend(describe(top).into_iter().map(|line| format!("{}: {line}", name(top))));
            return unknown(evidence, candidates(0));
        }
        if let Some((other, other_score)) = runner_up.filter(|&(_, s)| s * 2 > top_score) {
            let mut evidence = vec![format!(
                "ambiguous: {} (weight {top_score}) and {} (weight {other_score})",
                name(top),
                name(other)
            )];
            for family in [top, other] {
                evidence.extend(describe(family).into_iter().map(|line| format!("{}: {line}", name(family))));
            }
            return unknown(evidence, candidates(top_score / 2));
        }
        let kinds: BTreeSet<Kind> = hits.iter().filter(|(m, _)| m.family == top).map(|(m, _)| m.kind).collect();
        // Weight from one kind of marker alone, however much, can be copied
        // wholesale: a leaked builder's note template carries all of its
        // phrases (and its id line and channels) to every affiliate and
        // copycat. High needs a second, independent kind besides: a
        // contact, a note name, an extension or trailer of the files. The
        // weak kinds ride along with the template, so they are not one.
        let strong_kinds = kinds.iter().filter(|k| !k.is_weak()).count();
        let mut confidence =
            if top_score >= HIGH_AT && strong_kinds >= 2 { Confidence::High } else { Confidence::Medium };
        let agreed: Vec<&str> = kinds.iter().map(|k| k.plural()).collect();
        let mut evidence = vec![format!(
            "{}: weight {top_score}, {} agreed: {}",
            name(top),
            match agreed.len() {
                1 => "1 kind of marker".to_owned(),
                n => format!("{n} kinds of marker"),
            },
            agreed.join(", ")
        )];
        evidence.extend(describe(top));
        if let Some((other, other_score)) = runner_up {
            confidence = confidence.lower();
            evidence.push(format!(
                "also matched {} with weight {other_score}, less than half: {}",
                name(other),
                describe(other).join("; ")
            ));
        }
        let matched = hits
            .iter()
            .filter(|(marker, _)| marker.family == top)
            .map(|(marker, sample)| Match {
                kind: marker.kind,
                text: marker.text.clone(),
                sample: (*sample).to_owned(),
            })
            .collect();
        let family = self.family_at(top);
        Identification {
            family: Some(family.name.clone()),
            confidence,
            evidence,
            decryptor: family.decryptor.clone(),
            candidates: Vec::new(),
            matched,
        }
    }
}

impl Identification {
    /// No family named, for the reasons given.
    pub fn unknown(evidence: Vec<String>) -> Identification {
        Identification {
            family: None,
            confidence: Confidence::None,
            evidence,
            decryptor: None,
            candidates: Vec::new(),
            matched: Vec::new(),
        }
    }
}

fn unknown(evidence: Vec<String>, candidates: Vec<Candidate>) -> Identification {
    Identification { candidates, ..Identification::unknown(evidence) }
}

fn evidence_line(marker: &Marker, sample: &str) -> String {
    let what = marker.kind.label();
    match marker.kind {
        Kind::Name | Kind::Phrase | Kind::Contact => {
            format!("{sample}: note text contains {what} '{}'", marker.text)
        }
        Kind::NoteName => format!("{sample}: file name matches {what} '{}'", marker.text),
        Kind::Extension => format!("{sample}: file name ends in {what} '{}'", marker.text),
        Kind::Trailer => format!("{sample}: end of file holds {what} '{}'", marker.text.escape_default()),
        Kind::Channel => format!("{sample}: note gives a contact of the {what} kind '{}'", marker.text),
        Kind::IdShape => format!("{sample}: note has the {what} '{}'", marker.text),
    }
}
