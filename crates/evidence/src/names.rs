//! Which paths a bundle file may have. The same rule guards what a caller
//! adds and what a manifest being verified names, so neither can reach
//! outside the bundle.

use crate::manifest::MANIFEST;
use crate::seal::SEAL;

/// Names the collector writes itself (a file or, for the last two, a folder).
pub(crate) const RESERVED: [&str; 9] = [
    MANIFEST,
    SEAL,
    "processes.json",
    "open-files.json",
    "network.json",
    "host.json",
    "collection.json",
    "maps",
    "memory",
];

/// A relative, `/`-separated path of plain components.
pub(crate) fn check_path(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 4096 {
        return Err("empty or too long");
    }
    if name.contains('\0') {
        return Err("holds a NUL byte");
    }
    if name.starts_with('/') {
        return Err("absolute");
    }
    if name.split('/').any(|c| c.is_empty() || c == "." || c == ".." || c.len() > 255) {
        return Err("needs plain non-empty components, no . or ..");
    }
    Ok(())
}

/// A caller-supplied file: a valid path that does not collide with the
/// collector's own.
pub(crate) fn check_extra(name: &str) -> Result<(), &'static str> {
    check_path(name)?;
    let first = name.split('/').next().unwrap_or_default();
    if RESERVED.contains(&first) {
        return Err("reserved for the collector");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_and_refused() {
        for ok in ["incident.json", "notes/analyst.txt", "timeline.jsonl", "a..b"] {
            assert_eq!(check_extra(ok), Ok(()), "{ok}");
        }
        for bad in
            ["", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", "seal.json", "maps/1.txt", "memory", "a\0b"]
        {
            assert!(check_extra(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_path("maps/1.txt"), Ok(()));
    }
}
