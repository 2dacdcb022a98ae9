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
    let format = format_of(size, head, tail);
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

fn format_of(size: u64, head: &[u8], tail: Option<&[u8]>) -> Option<Format> {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(ZIP_EOCD) {
        return Some(if is_office(head, tail) { Format::Office } else { Format::Zip });
    }
    let found = infer::get(head).filter(|t| corroborated(t.extension(), head, size))?;
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

/// Whether what `infer` recognised as `extension` holds beyond the magic.
///
/// A dozen of its formats are told by their first two bytes alone, and one
/// random file in about four thousand begins with one of them by chance. Taken
/// for documents, such files rewritten as new ciphertext (an encrypted store,
/// a sync client updating one) read as documents destroyed, and a store of
/// thousands was stopped as ransomware. So each of those formats counts only
/// when the structure behind its magic agrees; those without a cheap check
/// are rare and are not recognised from two bytes.
fn corroborated(extension: &str, head: &[u8], size: u64) -> bool {
    match extension {
        "exe" | "dll" => pe_signature(head),
        "bmp" => bitmap_header(head),
        "mp3" => head.starts_with(b"ID3") || mpeg_audio_frames(head),
        "aac" => adts_frames(head),
        "bc" => head.starts_with(b"BC\xc0\xde"),
        "der" => der_length(head) == Some(size),
        "ps" => head.starts_with(b"%!PS"),
        "cpio" => head.starts_with(b"07070"),
        // JPEG XL's container keeps its 12-byte signature; a bare codestream is told by two.
        "jxl" => !head.starts_with(b"\xff\x0a"),
        "Z" | "obj" => false,
        _ => true,
    }
}

fn u32_le(bytes: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)).ok()
}

/// An MZ header whose `e_lfanew` points, within the head, at a PE (or
/// older NE, LE, LX) signature.
fn pe_signature(head: &[u8]) -> bool {
    let Some(at) = u32_le(head, 0x3c) else { return false };
    let Some(sig) = at.checked_add(4).and_then(|end| head.get(at..end)) else { return false };
    sig == b"PE\0\0" || [b"NE", b"LE", b"LX"].iter().any(|s| sig.starts_with(*s))
}

/// BM, reserved words zero, and an info header of a size some version has.
fn bitmap_header(head: &[u8]) -> bool {
    head.get(6..10) == Some(&[0; 4])
        && u32_le(head, 14).is_some_and(|n| [12, 16, 40, 52, 56, 64, 108, 124].contains(&n))
}

/// An MPEG audio layer III frame header whose frame is followed, where its
/// length says, by the next frame's header of the same version and layer.
fn mpeg_audio_frames(head: &[u8]) -> bool {
    const V1_KBPS: [usize; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const V2_KBPS: [usize; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let [0xff, b1, b2, ..] = *head else { return false };
    let (version, layer) = ((b1 >> 3) & 3, (b1 >> 1) & 3);
    let (rate, bitrate, padding) = (usize::from((b2 >> 2) & 3), usize::from(b2 >> 4), usize::from((b2 >> 1) & 1));
    if b1 & 0xe0 != 0xe0 || layer != 1 || version == 1 || rate == 3 || bitrate == 0 || bitrate == 15 {
        return false;
    }
    let len = match version {
        3 => 144_000 * V1_KBPS[bitrate] / [44_100, 48_000, 32_000][rate],
        2 => 72_000 * V2_KBPS[bitrate] / [22_050, 24_000, 16_000][rate],
        _ => 72_000 * V2_KBPS[bitrate] / [11_025, 12_000, 8_000][rate],
    } + padding;
    matches!(head.get(len..len + 2), Some(&[0xff, next]) if next & 0xfe == b1 & 0xfe)
}

/// An ADTS (AAC) frame header whose frame length leads to the next one.
fn adts_frames(head: &[u8]) -> bool {
    let [0xff, b1, b2, b3, b4, b5, ..] = *head else { return false };
    let len = (usize::from(b3 & 3) << 11) | (usize::from(b4) << 3) | usize::from(b5 >> 5);
    b1 & 0xf6 == 0xf0
        && (b2 >> 2) & 0xf <= 12
        && len >= 7
        && matches!(head.get(len..len + 2), Some(&[0xff, next]) if next & 0xf6 == 0xf0)
}

/// The size a DER object starting `30 82` says it has, header included: a
/// certificate file holds one object and nothing else.
fn der_length(head: &[u8]) -> Option<u64> {
    let len = u16::from_be_bytes(head.get(2..4)?.try_into().ok()?);
    Some(4 + u64::from(len))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes no format would recognise, from a fixed generator.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect()
    }

    fn recognised(bytes: &[u8]) -> Option<Format> {
        match classify(bytes.len() as u64, bytes, Some(bytes)) {
            FileKind::Known { format, .. } => Some(format),
            _ => None,
        }
    }

    #[test]
    fn no_two_bytes_of_chance_make_a_format() {
        let mut made = Vec::new();
        for first in 0..=u16::MAX {
            let mut bytes = noise(2048, u64::from(first));
            bytes[..2].copy_from_slice(&first.to_be_bytes());
            if let Some(format) = recognised(&bytes) {
                made.push((format!("{first:04x}"), format));
            }
        }
        assert!(made.is_empty(), "random bytes after these two recognised: {made:?}");
    }

    #[test]
    fn the_two_byte_formats_are_recognised_with_their_structure() {
        let mut pe = noise(4096, 1);
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");

        let mut bmp = noise(4096, 2);
        bmp[..2].copy_from_slice(b"BM");
        bmp[6..10].fill(0);
        bmp[14..18].copy_from_slice(&40u32.to_le_bytes());

        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding: 417-byte frames.
        let mut mp3 = noise(4096, 3);
        for at in [0, 417, 834] {
            mp3[at..at + 3].copy_from_slice(&[0xff, 0xfb, 0x90]);
        }

        // ADTS frames of 300 bytes.
        let mut aac = noise(4096, 4);
        for at in [0, 300, 600] {
            aac[at..at + 6].copy_from_slice(&[0xff, 0xf1, 0x50, 0x80, (300 >> 3) as u8, ((300 & 7) << 5) as u8]);
        }

        let mut der = noise(1200, 5);
        der[..4].copy_from_slice(&[0x30, 0x82, 0x04, 0xac]);

        for (name, bytes, format) in [
            ("pe", pe, Format::Other),
            ("bmp", bmp, Format::Bmp),
            ("mp3", mp3, Format::Mp3),
            ("aac", aac, Format::Other),
            ("der", der, Format::Other),
        ] {
            assert_eq!(recognised(&bytes), Some(format), "{name}");
            // The same magic without the structure behind it is noise.
            let mut bare = noise(bytes.len(), 9);
            bare[..2].copy_from_slice(&bytes[..2]);
            assert_eq!(recognised(&bare), None, "{name} by its magic alone");
        }
    }
}
