//! Which paths the sensor reports: under a protected root and outside every
//! excluded subtree.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Scope {
    roots: Vec<PathBuf>,
    exclude: Vec<PathBuf>,
}

impl Scope {
    /// Paths must be canonical: kernel-reported paths are.
    pub fn new(roots: Vec<PathBuf>, exclude: Vec<PathBuf>) -> Scope {
        Scope { roots, exclude }
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
        let s = Scope::new(vec!["/srv/share".into(), "/home".into()], vec!["/srv/share/.mamori".into()]);
        assert!(s.covers(Path::new("/srv/share/a/b.docx")));
        assert!(s.covers(Path::new("/home")));
        assert!(!s.covers(Path::new("/srv/share/.mamori/vault/x")));
        assert!(!s.covers(Path::new("/srv/shared/x")), "component-wise, not string prefix");
        assert!(!s.covers(Path::new("/etc/passwd")));
    }
}
