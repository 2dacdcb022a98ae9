//! A user who owns a protected folder turns its paths against a root restore.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use mamori_restore::{BeneathError, Root};

/// A folder owned by the test user, in a temporary directory it can reach.
fn users_folder() -> (tempfile::TempDir, std::path::PathBuf, mamori_testuser::User) {
    let user = mamori_testuser::ordinary();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let folder = tmp.path().join("share");
    std::fs::create_dir(&folder).unwrap();
    std::os::unix::fs::chown(&folder, Some(user.uid), Some(user.gid)).unwrap();
    (tmp, folder, user)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_directory_swapped_for_a_link_is_not_followed() {
    let (tmp, folder, user) = users_folder();
    let outside = tmp.path().join("etc");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("passwd"), b"root's").unwrap();
    user.run("mkdir", &[s(&folder.join("docs"))]);
    user.run("touch", &[s(&folder.join("docs/a.txt.locked"))]);
    // After the incident: docs/ becomes a link to a directory only root may write.
    user.run("mv", &[s(&folder.join("docs")), s(&folder.join("old"))]);
    user.run("ln", &["-s", s(&outside), s(&folder.join("docs"))]);

    let root = Root::open(&folder).unwrap();
    let rel = root.relative(s(&folder.join("docs/passwd"))).unwrap();
    assert!(matches!(root.place(&rel, true), Err(BeneathError::Link { .. })));
    assert!(matches!(root.remove(&rel), Err(BeneathError::Link { .. })));
    let from = root.relative(s(&folder.join("old/a.txt.locked"))).unwrap();
    assert!(matches!(root.rename_back(&from, &rel), Err(BeneathError::Link { .. })));
    assert_eq!(std::fs::read(outside.join("passwd")).unwrap(), b"root's");
    assert!(folder.join("old/a.txt.locked").exists(), "nothing moved");
}

#[test]
fn paths_that_climb_out_are_refused() {
    let (_tmp, folder, _user) = users_folder();
    let root = Root::open(&folder).unwrap();
    for path in [format!("{}/../x", s(&folder)), "/etc/passwd".to_owned(), s(&folder).to_owned()] {
        assert!(matches!(root.relative(&path), Err(BeneathError::Outside { .. })), "{path}");
    }
}

#[test]
fn a_rename_back_never_replaces_a_file_at_the_original_name() {
    let (_tmp, folder, user) = users_folder();
    user.run("sh", &["-c", &format!("echo new > {0}/a.txt; echo old > {0}/a.txt.x", s(&folder))]);
    let root = Root::open(&folder).unwrap();
    let err = root.rename_back(Path::new("a.txt.x"), Path::new("a.txt")).unwrap_err();
    assert!(matches!(err, BeneathError::Taken { .. }), "{err}");
    assert_eq!(std::fs::read(folder.join("a.txt")).unwrap(), b"new\n");
    root.rename_back(Path::new("a.txt.x"), Path::new("b/c/a.txt")).unwrap();
    assert_eq!(std::fs::read(folder.join("b/c/a.txt")).unwrap(), b"old\n");
    let made = folder.join("b").metadata().unwrap();
    assert_eq!((made.uid(), made.gid()), (user.uid, user.gid), "a directory made again is owned like its parent");
}
