//! Which paths the sensor reports: under a protected root and outside every
//! excluded subtree; and which it guards (mamori's vault), where anyone
//! else's open is refused and any touch is reported.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Scope {
    roots: Vec<PathBuf>,
    exclude: Vec<PathBuf>,
    guard: Vec<PathBuf>,
    unmarked: Vec<PathBuf>,
}

impl Scope {
    /// Paths must be canonical: kernel-reported paths are.
    pub fn new(roots: Vec<PathBuf>, exclude: Vec<PathBuf>, guard: Vec<PathBuf>, unmarked: Vec<PathBuf>) -> Scope {
        Scope { roots, exclude, guard, unmarked }
    }

    pub fn guarded(&self, path: &Path) -> bool {
        self.guard.iter().any(|g| path.starts_with(g))
    }

    /// Whether a directory gets marks: reported or guarded, and not left unmarked.
    pub fn watched(&self, path: &Path) -> bool {
        (self.guarded(path) || self.covers(path)) && !self.unmarked.iter().any(|u| path.starts_with(u))
    }

    pub fn covers(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| path.starts_with(r)) && !self.excluded(path)
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|e| path.starts_with(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_minus_exclusions() {
        let s = Scope::new(
            vec!["/srv/share".into(), "/home".into()],
            vec!["/srv/share/.mamori".into()],
            vec!["/srv/share/.mamori/vault".into()],
            vec!["/srv/share/.mamori/vault/staging".into()],
        );
        assert!(s.guarded(Path::new("/srv/share/.mamori/vault/objects/1")));
        assert!(s.watched(Path::new("/srv/share/.mamori/vault")));
        assert!(!s.watched(Path::new("/srv/share/.mamori/vault/staging")));
        assert!(s.watched(Path::new("/srv/share/.mamori/vault/staging-not")), "component-wise");
        assert!(!s.watched(Path::new("/srv/share/.mamori/mamori.db")));
        assert!(s.covers(Path::new("/srv/share/a/b.docx")));
        assert!(s.covers(Path::new("/home")));
        assert!(!s.covers(Path::new("/srv/share/.mamori/vault/x")));
        assert!(!s.covers(Path::new("/srv/shared/x")), "component-wise, not string prefix");
        assert!(!s.covers(Path::new("/etc/passwd")));
    }
}
