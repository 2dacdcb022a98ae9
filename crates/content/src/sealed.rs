//! Ciphertext in an archive's coat: a password-protected ZIP or 7z.
//!
//! Ransomware that runs a real archiver per file (`7z a -p -mhe=on`,
//! `zip -P`) and deletes the original leaves files of a known format, so
//! "unknown and random" misses them; what gives them away is the archive's
//! own note that its content is encrypted. An archive without a password
//! says nothing of the kind and stays an ordinary archive.

const ZIP_LOCAL: &[u8] = b"PK\x03\x04";
/// General purpose flag bit 0 of a local file header: the entry is
/// encrypted (ZipCrypto and WinZip AES both set it).
const ZIP_ENCRYPTED: u16 = 1;
const SEVEN_ZIP: &[u8] = b"7z\xbc\xaf\x27\x1c";
/// 7z's signature header: signature, version, CRC, then the next header's
/// offset (from the end of this header) and size.
const SEVEN_ZIP_START: u64 = 32;
/// The coder id of 7z's AES-256 + SHA-256, named in the header of every
/// encrypted archive (in the clear unless headers are encrypted too, when
/// it names the coder of the encoded header instead).
const SEVEN_ZIP_AES: &[u8] = b"\x06\xf1\x07\x01";

/// Whether a file of `size` bytes, with `head` (from offset 0) and `tail`
/// (ending at `size`, when read), is a password-protected archive.
pub(crate) fn encrypted_archive(size: u64, head: &[u8], tail: Option<&[u8]>) -> bool {
    if head.starts_with(ZIP_LOCAL) {
        return head.get(6..8).is_some_and(|f| u16::from_le_bytes([f[0], f[1]]) & ZIP_ENCRYPTED != 0);
    }
    head.starts_with(SEVEN_ZIP) && seven_zip_header(size, head, tail).is_some_and(|h| contains(h, SEVEN_ZIP_AES))
}

/// The bytes of a 7z archive's (next) header, when the tail holds them all.
fn seven_zip_header<'a>(size: u64, head: &[u8], tail: Option<&'a [u8]>) -> Option<&'a [u8]> {
    let field = |at: usize| Some(u64::from_le_bytes(head.get(at..at + 8)?.try_into().ok()?));
    let start = SEVEN_ZIP_START.checked_add(field(12)?)?;
    let end = start.checked_add(field(20)?)?;
    let tail = tail?;
    let tail_start = size.checked_sub(tail.len() as u64)?;
    if start < tail_start || end > size {
        return None;
    }
    tail.get((start - tail_start) as usize..(end - tail_start) as usize)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_entry(flags: u16) -> Vec<u8> {
        let mut b = ZIP_LOCAL.to_vec();
        b.extend_from_slice(&20u16.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&[0; 40]);
        b
    }

    fn seven_zip(header: &[u8], packed: usize) -> Vec<u8> {
        let mut b = SEVEN_ZIP.to_vec();
        b.extend_from_slice(&[0, 4, 0, 0, 0, 0]);
        b.extend_from_slice(&(packed as u64).to_le_bytes());
        b.extend_from_slice(&(header.len() as u64).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.resize(32 + packed, 0x5a);
        b.extend_from_slice(header);
        b
    }

    fn check(bytes: &[u8]) -> bool {
        encrypted_archive(bytes.len() as u64, bytes, Some(bytes))
    }

    #[test]
    fn zip_entries_say_whether_they_are_encrypted() {
        assert!(check(&zip_entry(0x0001)));
        assert!(check(&zip_entry(0x0809)), "AES sets bit 0 too");
        assert!(!check(&zip_entry(0x0808)));
    }

    #[test]
    fn a_7z_header_naming_aes_is_encrypted() {
        assert!(check(&seven_zip(b"\x17\x06\x0b\x01\x01\x24\x06\xf1\x07\x01\x0a", 300)));
        assert!(!check(&seven_zip(b"\x17\x06\x0b\x01\x01\x03\x03\x01\x01\x05\x5d", 300)), "LZMA only");
    }

    #[test]
    fn a_7z_header_out_of_reach_says_nothing() {
        let bytes = seven_zip(b"\x17\x06\xf1\x07\x01", 10_000);
        let tail = &bytes[bytes.len() - 2..];
        assert!(!encrypted_archive(bytes.len() as u64, &bytes[..64], Some(tail)));
        assert!(!encrypted_archive(bytes.len() as u64, &bytes[..64], None));
        assert!(!encrypted_archive(20, &bytes[..20], Some(&bytes[..20])), "truncated header");
    }
}
