//! The family catalog: the TOML data file, checked and compiled into
//! matchers once so that identification is a single pass over each sample.

use std::io::Read;
use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use crate::error::IdentifyError;
use crate::signals::{self, IdShape};
use crate::text;

/// The catalog shipped with mamori (`families.toml` next to this crate's
/// manifest), compiled into the binary.
const BUILTIN: &str = include_str!("../families.toml");

/// The largest catalog file read: the shipped one is some 60 KiB, and a huge
/// file put in the state directory must not exhaust the agent's memory.
pub const CATALOG_LIMIT: u64 = 16 * 1024 * 1024;

/// A free decryption tool for a family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decryptor {
    pub name: String,
    pub url: String,
    /// Which versions or victims the tool helps, when not all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One family of the catalog.
#[derive(Debug, Clone)]
pub struct Family {
    pub id: String,
    pub name: String,
    pub decryptor: Option<Decryptor>,
}

/// What kind of marker matched; decides its weight and how evidence reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Name,
    Phrase,
    Contact,
    NoteName,
    Extension,
    Trailer,
    /// Weak: a kind of contact channel the family's notes use.
    Channel,
    /// Weak: how the family's notes label the victim's id.
    IdShape,
}

impl Kind {
    pub(crate) fn weight(self) -> u32 {
        match self {
            Kind::Channel | Kind::IdShape => 1,
            Kind::Phrase | Kind::NoteName => 2,
            Kind::Name | Kind::Contact | Kind::Extension | Kind::Trailer => 3,
        }
    }

    /// Weak kinds are shared by many families (most notes give an onion
    /// portal), so they count only for a family the wording pointed to.
    pub(crate) fn is_weak(self) -> bool {
        matches!(self, Kind::Channel | Kind::IdShape)
    }

    /// How the kind is listed among the kinds that agreed.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Name => "family name",
            Kind::Phrase => "phrases",
            Kind::Contact => "contacts",
            Kind::NoteName => "note name",
            Kind::Extension => "extension",
            Kind::Trailer => "trailer",
            Kind::Channel => "channels",
            Kind::IdShape => "id line",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Name => "the family name",
            Kind::Phrase => "the phrase",
            Kind::Contact => "the contact",
            Kind::NoteName => "note name",
            Kind::Extension => "extension",
            Kind::Trailer => "trailer",
            Kind::Channel => "channel",
            Kind::IdShape => "id line",
        }
    }
}

/// A marker as the catalog wrote it, with its family.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    pub family: usize,
    pub kind: Kind,
    pub text: String,
}

/// The compiled catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    families: Vec<Family>,
    /// Names, phrases and contacts, normalized, in one automaton over note
    /// text; `text_markers[pattern id]` says whose each pattern is.
    text_matcher: AhoCorasick,
    text_markers: Vec<Marker>,
    trailer_matcher: AhoCorasick,
    trailer_markers: Vec<Marker>,
    /// Lower-case globs and extensions: few enough to test one by one.
    note_names: Vec<Marker>,
    extensions: Vec<Marker>,
    /// Channel kinds as written (`tox`, `mail:onionmail.org`).
    channels: Vec<Marker>,
    /// Id-line labels, normalized, in one automaton; `id_shapes[pattern
    /// id]` says whose each is and what must follow it.
    id_matcher: AhoCorasick,
    id_shapes: Vec<(Marker, IdShape)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    family: Vec<toml::Spanned<RawFamily>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFamily {
    id: String,
    name: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    contacts: Vec<String>,
    #[serde(default)]
    note_names: Vec<String>,
    #[serde(default)]
    extensions: Vec<String>,
    #[serde(default)]
    trailers: Vec<String>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    id_shapes: Vec<RawIdShape>,
    decryptor: Option<Decryptor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdShape {
    label: String,
    id: String,
}

impl Catalog {
    /// The catalog built into the binary. It is checked by this crate's
    /// tests, so it always parses.
    pub fn builtin() -> Catalog {
        Catalog::from_toml(BUILTIN).expect("the built-in families.toml is valid")
    }

    /// Reads a catalog file, e.g. an updated `families.toml`, of at most
    /// [`CATALOG_LIMIT`] bytes.
    pub fn load(path: &Path) -> Result<Catalog, IdentifyError> {
        let read = |source| IdentifyError::Read { path: path.to_owned(), source };
        let mut data = String::new();
        std::fs::File::open(path).map_err(read)?.take(CATALOG_LIMIT + 1).read_to_string(&mut data).map_err(read)?;
        if data.len() as u64 > CATALOG_LIMIT {
            return Err(IdentifyError::TooLarge { path: path.to_owned(), limit: CATALOG_LIMIT });
        }
        Catalog::from_toml(&data)
    }

    pub fn from_toml(data: &str) -> Result<Catalog, IdentifyError> {
        let raw: RawCatalog = toml::from_str(data)?;
        if raw.family.is_empty() {
            return Err(IdentifyError::Empty);
        }
        let mut families = Vec::with_capacity(raw.family.len());
        let mut text_markers = Vec::new();
        let mut trailer_markers = Vec::new();
        let mut note_names = Vec::new();
        let mut extensions = Vec::new();
        let mut channels = Vec::new();
        let mut id_shapes = Vec::new();
        for spanned in &raw.family {
            let line = 1 + data[..spanned.span().start].matches('\n').count();
            let raw = spanned.get_ref();
            let index = families.len();
            let invalid = |field: &'static str, reason: String| IdentifyError::Invalid {
                line,
                family: raw.id.clone(),
                field,
                reason,
            };
            let id_ok =
                !raw.id.is_empty() && raw.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok {
                return Err(invalid("id", "must be non-empty lower-case letters, digits and '-'".into()));
            }
            if families.iter().any(|f: &Family| f.id == raw.id) {
                return Err(invalid("id", "appears twice".into()));
            }
            if raw.name.trim().is_empty() {
                return Err(invalid("name", "is empty".into()));
            }
            if let Some(d) = &raw.decryptor {
                if d.name.trim().is_empty() || !d.url.starts_with("https://") {
                    return Err(invalid("decryptor", "needs a name and an https:// url".into()));
                }
            }
            let add = |list: &[String], kind: Kind, field: &'static str, out: &mut Vec<Marker>| {
                for item in list {
                    let text = match kind {
                        Kind::Trailer => item.clone(),
                        Kind::NoteName | Kind::Extension => item.to_lowercase(),
                        _ => text::normalize(item),
                    };
                    if text.is_empty() {
                        return Err(invalid(field, "has an empty entry".into()));
                    }
                    if kind == Kind::Extension && (!text.starts_with('.') || text.len() < 2) {
                        return Err(invalid(field, format!("{item:?} must be a dot and a name")));
                    }
                    if kind == Kind::NoteName && text.chars().all(|c| c == '*') {
                        return Err(invalid(field, format!("{item:?} would match every file")));
                    }
                    out.push(Marker { family: index, kind, text });
                }
                Ok(())
            };
            add(&raw.names, Kind::Name, "names", &mut text_markers)?;
            add(&raw.phrases, Kind::Phrase, "phrases", &mut text_markers)?;
            add(&raw.contacts, Kind::Contact, "contacts", &mut text_markers)?;
            add(&raw.note_names, Kind::NoteName, "note_names", &mut note_names)?;
            add(&raw.extensions, Kind::Extension, "extensions", &mut extensions)?;
            add(&raw.trailers, Kind::Trailer, "trailers", &mut trailer_markers)?;
            for channel in &raw.channels {
                let known = match channel.strip_prefix("mail:") {
                    Some(domain) => signals::is_domain(domain),
                    None => signals::CHANNEL_KINDS.contains(&channel.as_str()),
                };
                if !known {
                    return Err(invalid(
                        "channels",
                        format!(
                            "{channel:?} is none of {} or mail:DOMAIN (lower case)",
                            signals::CHANNEL_KINDS.join(", ")
                        ),
                    ));
                }
                channels.push(Marker { family: index, kind: Kind::Channel, text: channel.clone() });
            }
            for shape in &raw.id_shapes {
                let label = text::normalize(&shape.label);
                // A label of one short word ("id", "key") is in too many texts.
                if label.len() < 6 || !label.contains(' ') {
                    return Err(invalid("id_shapes", format!("label {:?} needs two words or more", shape.label)));
                }
                let parsed = IdShape::parse(&shape.id).map_err(|reason| invalid("id_shapes", reason))?;
                let text = format!("{label} <{}>", shape.id);
                id_shapes.push((Marker { family: index, kind: Kind::IdShape, text }, parsed));
            }
            let has_markers = [&text_markers, &note_names, &extensions, &trailer_markers]
                .iter()
                .any(|list| list.iter().any(|m| m.family == index));
            if !has_markers {
                return Err(invalid(
                    "names",
                    "the family has no markers at all (channels and id shapes alone name none)".into(),
                ));
            }
            families.push(Family { id: raw.id.clone(), name: raw.name.clone(), decryptor: raw.decryptor.clone() });
        }
        Ok(Catalog {
            families,
            text_matcher: automaton(&text_markers),
            text_markers,
            trailer_matcher: automaton(&trailer_markers),
            trailer_markers,
            note_names,
            extensions,
            channels,
            id_matcher: AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(id_shapes.iter().map(|(m, _)| label_of(&m.text)))
                .expect("id labels of a catalog stay far below the automaton's size limits"),
            id_shapes,
        })
    }

    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The family with this id.
    pub fn family(&self, id: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.id == id)
    }

    pub(crate) fn family_at(&self, index: usize) -> &Family {
        &self.families[index]
    }

    /// Markers found in normalized note text, each once per occurrence.
    pub(crate) fn text_hits(&self, normalized: &str) -> Vec<&Marker> {
        self.text_matcher
            .find_overlapping_iter(normalized)
            .filter(|m| text::whole_word(normalized, m.start(), m.len()))
            .map(|m| &self.text_markers[m.pattern().as_usize()])
            .collect()
    }

    /// Channel kinds and id lines of the families found in normalized note
    /// text, each once.
    pub(crate) fn weak_hits(&self, normalized: &str) -> Vec<&Marker> {
        let used = signals::channels(normalized);
        let mut found: Vec<&Marker> = self.channels.iter().filter(|m| used.contains(&m.text)).collect();
        found.extend(
            self.id_matcher
                .find_overlapping_iter(normalized)
                .filter(|m| text::whole_word(normalized, m.start(), m.len()))
                .map(|m| (m.end(), &self.id_shapes[m.pattern().as_usize()]))
                .filter(|(end, (_, shape))| shape.follows(&normalized[*end..]))
                .map(|(_, (marker, _))| marker),
        );
        found
    }

    pub(crate) fn trailer_hits(&self, tail: &[u8]) -> Vec<&Marker> {
        self.trailer_matcher
            .find_overlapping_iter(tail)
            .map(|m| &self.trailer_markers[m.pattern().as_usize()])
            .collect()
    }

    pub(crate) fn note_name_hits(&self, file_name: &str) -> Vec<&Marker> {
        let lower = file_name.to_lowercase();
        self.note_names.iter().filter(|m| glob(&m.text, &lower)).collect()
    }

    pub(crate) fn extension_hits(&self, file_name: &str) -> Vec<&Marker> {
        let lower = file_name.to_lowercase();
        self.extensions.iter().filter(|m| lower.len() > m.text.len() && lower.ends_with(&m.text)).collect()
    }
}

fn automaton(markers: &[Marker]) -> AhoCorasick {
    AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(markers.iter().map(|m| m.text.as_bytes()))
        .expect("marker sets of a catalog stay far below the automaton's size limits")
}

/// The label of an id-shape marker's text (`label <shape>`).
fn label_of(text: &str) -> &str {
    text.rsplit_once(" <").map_or(text, |(label, _)| label)
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        assert!(glob("*.readme_to_restore", "report.xlsx.readme_to_restore"));
        assert!(glob("restore-files-*.txt", "restore-files-q7ilknn7k.txt"));
        assert!(glob("bb_readme*.txt", "bb_readme.txt"));
        assert!(!glob("bb_readme*.txt", "bb_readme.txt.bak"));
        assert!(!glob("akira_readme.txt", "xakira_readme.txt"));
        assert!(glob("_read_this_file_*_.txt", "_read_this_file_hbe8_.txt"));
    }
}
