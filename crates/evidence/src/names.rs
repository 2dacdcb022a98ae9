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

/// All caller-supplied names together: each valid, none twice, and none both
/// a file and the folder of another (which would fail half-way through
/// writing the bundle).
pub(crate) fn check_extras<'a>(names: impl Iterator<Item = &'a str> + Clone) -> Result<(), (String, &'static str)> {
    let mut seen = std::collections::BTreeSet::new();
    for name in names.clone() {
        check_extra(name).map_err(|why| (name.to_owned(), why))?;
        if !seen.insert(name) {
            return Err((name.to_owned(), "given twice"));
        }
    }
    for name in names {
        let folders = name.match_indices('/').map(|(i, _)| &name[..i]);
        if let Some(f) = folders.into_iter().find(|f| seen.contains(f)) {
            return Err((f.to_owned(), "both a file and a folder"));
        }
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
        assert_eq!(check_extras(["a", "b/c", "b/d"].into_iter()), Ok(()));
        assert_eq!(check_extras(["a", "a"].into_iter()), Err(("a".into(), "given twice")));
        assert_eq!(check_extras(["n/x/y", "n/x"].into_iter()), Err(("n/x".into(), "both a file and a folder")));
    }
}
