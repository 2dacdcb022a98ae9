//! Per-file judgements: what a rewrite, a replacement or a rename says about
//! the file it touched. Pure functions of content facts and names.

use mamori_content::{region_change, similarity};
use mamori_event::{ContentFacts, FileKind, Format, Indicator};

use crate::config::Config;

/// Smallest content, in bytes, whose entropy is worth judging at all.
const MIN_JUDGED: u64 = 64;

/// The entropy a file of `n` random bytes is expected to reach falls short of
/// 8 bits for small `n` (the estimator's bias is about 255 / (2 n ln 2)), so
/// small ciphertexts are judged against a lower floor.
pub(crate) fn cipher_floor(cfg: &Config, sampled_len: u64) -> f32 {
    let n = sampled_len.max(1) as f64;
    let expected = 8.0 - 255.0 / (2.0 * n * std::f64::consts::LN_2);
    cfg.detect.cipher_entropy.min((expected - 0.4) as f32)
}

fn judged_len(facts: &ContentFacts) -> u64 {
    if facts.sampled {
        // Sampled facts always cover at least the 64 KiB head.
        64 * 1024
    } else {
        facts.size
    }
}

/// Content that looks like the output of a cipher: random bytes of no known
/// format, or random bytes wearing a base64/hex coat.
pub(crate) fn ciphertext_like(cfg: &Config, facts: &ContentFacts) -> bool {
    if facts.size < MIN_JUDGED {
        return false;
    }
    facts.encoded_random || (matches!(facts.kind, FileKind::Unknown) && random_as_ciphertext(cfg, facts))
}

/// As random as a cipher's output, whatever the content claims to be.
fn random_as_ciphertext(cfg: &Config, facts: &ContentFacts) -> bool {
    facts.size >= MIN_JUDGED && facts.entropy >= cipher_floor(cfg, judged_len(facts))
}

/// Ciphertext-like content in a recognised format: a password-protected
/// archive, whose compression may leave it much smaller than what it holds.
pub(crate) fn encrypted_archive(cfg: &Config, facts: &ContentFacts) -> bool {
    ciphertext_like(cfg, facts) && matches!(facts.kind, FileKind::Known { .. })
}

/// Judges a file rewritten in place (or truncated and rewritten): the
/// strongest indicator its before and after facts support, with its weight.
pub(crate) fn rewrite(cfg: &Config, before: &ContentFacts, after: &ContentFacts) -> Option<(Indicator, f64)> {
    let w = &cfg.weights;
    let mut best: Option<(Indicator, f64)> = None;
    let mut consider = |ind: Indicator, weight: f64| {
        if best.is_none_or(|(_, b)| weight > b) {
            best = Some((ind, weight));
        }
    };
    if destroyed(before, after) {
        consider(Indicator::ContentDestroyed, w.content_destroyed);
    }
    if after.size < MIN_JUDGED {
        return best;
    }
    // Only text: a password-protected archive is flagged too, and is no encoding.
    if after.encoded_random && !before.encoded_random && matches!(after.kind, FileKind::Text) {
        consider(Indicator::EncodedCiphertext, w.encoded_ciphertext);
    }
    let sim = similarity(&before.digest, &after.digest);
    let unlike = sim.is_some_and(|s| s <= cfg.detect.similarity_lost_below);
    // A document that became random bytes, or that lost its format and no
    // longer resembles itself (XOR with a short key keeps entropy low).
    // One recognised format rewritten as another counts: ciphertext behind
    // a header of a format with no trailer to check (gzip, say) is still
    // "recognised", and as random as the compressed document it replaced.
    let kind_changed = match (before.kind, after.kind) {
        (FileKind::Known { format: f1, .. }, FileKind::Known { format: f2, .. }) => family(f1) != family(f2),
        (b, a) => std::mem::discriminant(&b) != std::mem::discriminant(&a),
    };
    let format_gone = match (before.kind, after.kind) {
        (FileKind::Known { intact: true, .. }, FileKind::Text | FileKind::Unknown) => unlike,
        (FileKind::Text, FileKind::Unknown) => unlike,
        // Ciphertext behind another format's header: recognised, but
        // nothing like what it replaced, and as random as a cipher's output.
        (FileKind::Known { intact: true, .. } | FileKind::Text, FileKind::Known { .. }) => {
            unlike && kind_changed && random_as_ciphertext(cfg, after)
        }
        _ => false,
    };
    let unrecognisable = ciphertext_like(cfg, after) || format_gone;
    if before.kind.is_meaningful() && unrecognisable {
        consider(Indicator::FormatLost, w.format_lost);
    }
    if let (FileKind::Known { format: f1, intact: true }, FileKind::Known { format: f2, intact: false }) =
        (before.kind, after.kind)
    {
        if f1 == f2 {
            consider(Indicator::StructureBroken, w.structure_broken);
        }
    }
    let regions = region_change(&before.blocks, &after.blocks);
    let floor = cipher_floor(cfg, 4096);
    if regions.changed > 0 && regions.entropy_after >= floor && regions.entropy_before < floor - 1.0 {
        consider(Indicator::RegionsEncrypted, w.regions_encrypted);
    }
    if unlike && (kind_changed || after.entropy - before.entropy >= 0.5) {
        consider(Indicator::SimilarityLost, w.similarity_lost);
    }

    best
}

/// Formats that one file can move between without anything being lost: an
/// office document is a ZIP, told apart by a manifest that is not always
/// among the bytes read.
fn family(format: Format) -> Format {
    match format {
        Format::Office => Format::Zip,
        f => f,
    }
}

/// Entropy (bits/byte) below which content is one byte repeated, give or
/// take a few stray bytes; no document comes near it.
const CONSTANT_ENTROPY: f32 = 0.1;

/// A document replaced by nothing of value: one byte repeated (a wiper's
/// zeros) or nothing at all. Emptying counts only for recognised binary
/// documents: text files are emptied every day (log rotation, `: > file`),
/// documents are not. A truncate that is followed by real content (an
/// editor's save, `>` redirection) is judged on that content at its close.
fn destroyed(before: &ContentFacts, after: &ContentFacts) -> bool {
    let constant = after.size >= MIN_JUDGED && after.entropy < CONSTANT_ENTROPY;
    let emptied = after.size == 0 && matches!(before.kind, FileKind::Known { intact: true, .. });
    // A nearly blank file (a fresh disk image) that is blanked loses nothing.
    before.kind.is_meaningful() && before.entropy > 1.0 && (constant || emptied)
}

/// Extensions that ordinary work renames files to; a rename to one of these
/// is never part of an extension pattern.
#[rustfmt::skip]
const ORDINARY_EXTENSIONS: &[&str] = &[
    "txt", "md", "csv", "tsv", "log", "json", "xml", "yaml", "yml", "toml", "ini", "cfg", "conf", "html",
    "htm", "css", "js", "ts", "py", "rs", "c", "h", "cpp", "hpp", "go", "java", "sh", "sql", "doc", "docx", "xls",
    "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "pdf", "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff",
    "webp", "heic", "svg", "mp3", "mp4", "mov", "avi", "mkv", "wav", "flac", "zip", "gz", "tgz", "bz2", "xz", "zst",
    "7z", "rar", "tar", "iso", "img", "qcow2", "vmdk", "vdi", "db", "sqlite", "bak", "old", "orig", "tmp", "temp",
    "swp", "part", "partial", "crdownload", "new", "save", "backup", "lock", "o", "a", "so", "rlib", "rmeta", "d",
    "pack", "idx", "rev", "keep", "pid", "eml", "msg", "pst", "ost",
];

/// The extension of the last path component, lower-cased ASCII.
pub(crate) fn extension(path: &str) -> Option<String> {
    let name = file_name(path);
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() || ext.len() > 16 {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, n)| n)
}

pub(crate) fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The pattern a rename contributes to, if any: its new extension when that
/// is unusual and differs from the old one, or `<random name>` when the new
/// name looks generated and shares nothing with the old.
pub(crate) fn rename_pattern(from: &str, to: &str) -> Option<String> {
    // `name~` is the backup that editors and image tools keep while they rewrite `name`.
    if to.ends_with('~') {
        return None;
    }
    let (old_ext, new_ext) = (extension(from), extension(to));
    if let Some(ext) = new_ext.as_deref() {
        let ordinary = ORDINARY_EXTENSIONS.contains(&ext) || ext.bytes().all(|b| b.is_ascii_digit());
        if old_ext.as_deref() != Some(ext) && !ordinary {
            return Some(format!(".{ext}"));
        }
    }
    let (old_name, new_name) = (file_name(from), file_name(to));
    if looks_random(new_name) && !new_name.contains(old_name.split('.').next().unwrap_or(old_name)) {
        return Some("<random name>".to_owned());
    }
    None
}

/// A name of 12 or more characters drawn evenly from letters and digits,
/// with no word-like structure: what a cipher's output looks like in base32/hex.
fn looks_random(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name);
    if stem.len() < 12 || !stem.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let digits = stem.bytes().filter(u8::is_ascii_digit).count();
    let distinct = {
        let mut seen = [false; 256];
        stem.bytes().filter(|&b| !std::mem::replace(&mut seen[b as usize], true)).count()
    };
    digits >= 2 && digits < stem.len() && distinct * 2 >= stem.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_patterns() {
        assert_eq!(rename_pattern("/d/a.docx", "/d/a.docx.lockbit"), Some(".lockbit".into()));
        assert_eq!(rename_pattern("/d/a.docx", "/d/a.x9f3k2m1q"), Some(".x9f3k2m1q".into()));
        assert_eq!(rename_pattern("/d/.a.docx.swp", "/d/a.docx"), None);
        assert_eq!(rename_pattern("/d/tmp123", "/d/a.txt"), None);
        assert_eq!(rename_pattern("/d/app.log", "/d/app.log.1"), None);
        assert_eq!(rename_pattern("/d/a.jpg", "/d/a.jpg.bak"), None);
        assert_eq!(rename_pattern("/d/a.jpg", "/d/a.jpg~"), None);
        assert_eq!(rename_pattern("/d/report.pdf", "/d/Q7ZK2M9XW4PLR8TB"), Some("<random name>".into()));
        assert_eq!(rename_pattern("/d/report.pdf", "/d/report-final.pdf"), None);
    }

    /// Names arrive escaped (`mamori_event::names`): a name in Shift-JIS
    /// keeps its extension, and an escape never reads as one.
    #[test]
    fn escaped_names_keep_their_extension() {
        use std::os::unix::ffi::OsStrExt;
        let name = |bytes: &[u8]| mamori_event::names::encode(std::ffi::OsStr::from_bytes(bytes));
        // "請求書.txt" and "議事録.docx" in Shift-JIS (some of whose bytes are ASCII: 'c', '^').
        let (bill, minutes) = (name(b"/d/\x90\xbf\x8b\x81\x8f\x91.txt"), name(b"/d/\x8b\x63\x8e\x96\x98\x5e.docx"));
        assert_eq!(extension(&bill).as_deref(), Some("txt"));
        assert_eq!(extension(&minutes).as_deref(), Some("docx"));
        assert_eq!(file_name(&bill), name(b"\x90\xbf\x8b\x81\x8f\x91.txt"));
        assert_eq!(rename_pattern(&bill, &format!("{bill}.lockbit")), Some(".lockbit".into()));
        assert_eq!(rename_pattern(&minutes, &format!("{minutes}.bak")), None);
        // An extension in Shift-JIS ("文書") is its escape, whole.
        assert_eq!(extension(&name(b"/d/a.\x95\xb6\x8f\x91")).as_deref(), Some("\\x95\\xb6\\x8f\\x91"));
    }

    #[test]
    fn small_files_get_a_lower_cipher_floor() {
        let cfg = Config::default();
        assert!(cipher_floor(&cfg, 256) < 7.0);
        assert_eq!(cipher_floor(&cfg, 1 << 20), cfg.detect.cipher_entropy);
    }
}
