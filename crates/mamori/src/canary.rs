//! Decoy files: placed in each protected folder, owned like the folder, so
//! ransomware that can write the folder's files can write them too, and
//! meets them early (the names sort first). Nobody else has a reason to
//! change them; reading them (backups, indexers) is harmless.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Places (or keeps) the decoys; returns their paths.
pub fn place(folders: &[PathBuf], names: &[String]) -> Result<Vec<PathBuf>> {
    let mut placed = Vec::new();
    for folder in folders {
        let meta = folder.metadata().with_context(|| format!("cannot read {}", folder.display()))?;
        for name in names {
            let path = folder.join(name);
            if !path.exists() {
                std::fs::write(&path, content(name))
                    .with_context(|| format!("cannot place the decoy file {}", path.display()))?;
                std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid()))
                    .with_context(|| format!("cannot give the decoy {} its folder's owner", path.display()))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664 & (meta.mode() | 0o444)))?;
            }
            placed.push(path);
        }
    }
    Ok(placed)
}

/// Plausible content of the kind the name promises: a real PDF for `.pdf`,
/// text otherwise, so that a decoy rewritten into ciphertext also looks
/// like damage to the content indicators.
fn content(name: &str) -> Vec<u8> {
    let ext = Path::new(name).extension().and_then(|e| e.to_str()).unwrap_or("");
    let text = "Register 2024 / 台帳\n\
                Customer, Contract no., Amount (JPY), Renewal\n\
                Hokuto Trading, C-2024-0113, 1,200,000, 2025-03-31\n\
                Sakura Design, C-2024-0207, 480,000, 2025-06-30\n\
                Minato Logistics, C-2024-0321, 2,750,000, 2025-09-30\n";
    if ext != "pdf" {
        return text.repeat(8).into_bytes();
    }
    let stream = format!("BT /F1 10 Tf 40 800 Td ({}) Tj ET", text.lines().next().unwrap_or(""));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{obj}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        pdf.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoys_are_placed_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec![".0-a.pdf".to_owned(), ".0-b.txt".to_owned()];
        let placed = place(&[dir.path().to_path_buf()], &names).unwrap();
        assert_eq!(placed.len(), 2);
        let pdf = std::fs::read(&placed[0]).unwrap();
        assert!(pdf.starts_with(b"%PDF-") && pdf.ends_with(b"%%EOF\n"));
        std::fs::write(&placed[1], b"changed").unwrap();
        place(&[dir.path().to_path_buf()], &names).unwrap();
        assert_eq!(std::fs::read(&placed[1]).unwrap(), b"changed", "an existing decoy is not rewritten");
    }
}
