//! What the engine found against an actor, as data: the sensor's events go
//! in, these come out in verdicts and are kept in incidents, and each
//! reader (the report in either language, the terminal, the exports) words
//! them itself.

use serde::{Deserialize, Serialize};

/// The kinds of evidence the engine weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Indicator {
    /// Recognised files rewritten into unrecognisable ciphertext-like data.
    FormatLost,
    /// Recognised files overwritten with one repeated byte or emptied.
    ContentDestroyed,
    /// Files rewritten into base64/hex text of random bytes.
    EncodedCiphertext,
    /// Files whose header was kept but whose structure was destroyed.
    StructureBroken,
    /// Regions of files overwritten with ciphertext (intermittent encryption).
    RegionsEncrypted,
    /// Files rewritten into content unlike the original and more random.
    SimilarityLost,
    /// Originals read, then deleted or replaced by ciphertext-like files.
    ReplacedByCiphertext,
    /// Files renamed to the same new, unknown extension.
    ExtensionRename,
    /// The same new text file dropped in many folders.
    RansomNote,
    /// Decoy files changed, renamed or deleted.
    Canary,
    /// mamori's vault of before-images opened, deleted or renamed.
    VaultTouched,
    /// Damage spread across several folders.
    Breadth,
}

/// What happened to a file. The names are those incidents have always
/// stored, so incidents written before the type existed still load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileOp {
    Write,
    Truncate,
    Create,
    Delete,
    Rename,
}

impl FileOp {
    /// The serde name, for exports that print it as a plain string.
    pub fn as_str(self) -> &'static str {
        match self {
            FileOp::Write => "write",
            FileOp::Truncate => "truncate",
            FileOp::Create => "create",
            FileOp::Delete => "delete",
            FileOp::Rename => "rename",
        }
    }
}

/// One file an actor touched. For a rename, `path` is the old name and `to` the new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTouch {
    pub path: String,
    pub op: FileOp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub to: Option<String>,
}

/// One indicator as the engine saw it: on how many files, and a few of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub indicator: Indicator,
    /// Distinct files it was seen on.
    pub files: usize,
    /// The first of those files (at most a handful), as examples.
    pub examples: Vec<String>,
}

/// Why a verdict was reached: one line of an incident's reasons.
///
/// Untagged, so an incident body keeps the shape each variant had: a
/// finding is its fields, and the English sentences incidents held before
/// reasons were typed still load, as [`Reason::Text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reason {
    Found(Finding),
    /// File operations past the number an actor's list keeps.
    Unlisted {
        unlisted: usize,
    },
    /// A reason from an incident written before reasons were typed.
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_op_names_match_their_serde_names() {
        for op in [FileOp::Write, FileOp::Truncate, FileOp::Create, FileOp::Delete, FileOp::Rename] {
            let json = serde_json::to_value(op).unwrap();
            assert_eq!(json, op.as_str());
            assert_eq!(serde_json::from_value::<FileOp>(json).unwrap(), op);
        }
    }

    #[test]
    fn reasons_keep_their_shape_and_old_prose_loads() {
        let found = Reason::Found(Finding {
            indicator: Indicator::ExtensionRename,
            files: 3,
            examples: vec!["/d/a.locked".into()],
        });
        let json = serde_json::to_value(&found).unwrap();
        assert_eq!(json, serde_json::json!({"indicator": "extension-rename", "files": 3, "examples": ["/d/a.locked"]}));
        for reason in
            [found, Reason::Unlisted { unlisted: 7 }, Reason::Text("decoy files changed (1 file): /d/x".into())]
        {
            let back: Reason = serde_json::from_value(serde_json::to_value(&reason).unwrap()).unwrap();
            assert_eq!(back, reason);
        }
    }
}
