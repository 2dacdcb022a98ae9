//! What kind of content a file holds, from its head and (when read) its tail.

use mamori_event::{FileKind, Format};

use crate::text::looks_like_text;

/// The text check looks at this much of the head, so that light and full
/// samples of one file agree on its kind.
const TEXT_SAMPLE: usize = 8192;
/// A ZIP's end-of-central-directory record sits within its last 22 bytes
/// plus a comment of at most 64 KiB.
const ZIP_EOCD_REACH: usize = 22 + 65535;
const ZIP_EOCD: &[u8] = b"PK\x05\x06";
const PDF_EOF_REACH: usize = 1024;
const PNG_IEND: &[u8] = b"\0\0\0\0IEND\xae\x42\x60\x82";

/// `tail` is the file's last bytes when they were read (ending at its size).
pub(crate) fn classify(size: u64, head: &[u8], tail: Option<&[u8]>) -> FileKind {
    if size == 0 {
        return FileKind::Empty;
    }
    let format = format_of(head, tail);
    // An uncompressed PDF can be all ASCII, yet it is a document first.
    // Every other format's magic is binary, or so short (BM, GIF, ID3) that
    // text starting with those letters must stay text.
    if format != Some(Format::Pdf) && looks_like_text(&head[..head.len().min(TEXT_SAMPLE)]) {
        return FileKind::Text;
    }
    match format {
        Some(format) => FileKind::Known { format, intact: tail.is_none_or(|t| intact(format, t)) },
        None => FileKind::Unknown,
    }
}

fn format_of(head: &[u8], tail: Option<&[u8]>) -> Option<Format> {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(ZIP_EOCD) {
        return Some(if is_office(head, tail) { Format::Office } else { Format::Zip });
    }
    let found = infer::get(head)?;
    Some(match found.extension() {
        "doc" | "xls" | "ppt" | "msi" => Format::Ole,
        "pdf" => Format::Pdf,
        "png" => Format::Png,
        "jpg" => Format::Jpeg,
        "gif" => Format::Gif,
        "webp" => Format::Webp,
        "tif" => Format::Tiff,
        "bmp" => Format::Bmp,
        "gz" => Format::Gzip,
        "bz2" => Format::Bzip2,
        "xz" => Format::Xz,
        "zst" => Format::Zstd,
        "7z" => Format::SevenZip,
        "rar" => Format::Rar,
        "tar" => Format::Tar,
        "sqlite" => Format::Sqlite,
        "elf" => Format::Elf,
        "mp3" => Format::Mp3,
        "mp4" => Format::Mp4,
        "qcow2" => Format::Qcow2,
        _ if found.matcher_type() == infer::MatcherType::Text => return None,
        _ => Format::Other,
    })
}

/// OOXML names `[Content_Types].xml` in its entries (usually first, always in
/// the central directory at the tail); ODF stores `mimetype` as first entry.
fn is_office(head: &[u8], tail: Option<&[u8]>) -> bool {
    const OOXML: &[u8] = b"[Content_Types].xml";
    head.get(30..38) == Some(b"mimetype")
        || contains(&head[..head.len().min(TEXT_SAMPLE)], OOXML)
        || tail.is_some_and(|t| contains(t, OOXML))
}

fn intact(format: Format, tail: &[u8]) -> bool {
    match format {
        Format::Zip | Format::Office => contains(last(tail, ZIP_EOCD_REACH), ZIP_EOCD),
        Format::Pdf => contains(last(tail, PDF_EOF_REACH), b"%%EOF"),
        Format::Png => trim_zeros(tail).ends_with(PNG_IEND),
        Format::Jpeg => trim_zeros(tail).ends_with(b"\xff\xd9"),
        _ => true,
    }
}

fn last(bytes: &[u8], n: usize) -> &[u8] {
    &bytes[bytes.len().saturating_sub(n)..]
}

/// Block devices and some tools pad files with zeros past the real end.
/// PNG's IEND chunk ends in its CRC, never in zero, so this is safe there too.
fn trim_zeros(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &bytes[..end]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
