//! Files an ordinary user plants under a protected folder to stall or
//! mislead the root agent that reads the actor's notes: a FIFO and a
//! symbolic link named like notes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use mamori_identify::{looks_like_ransom_note, Sample, SampleError};

const NOTE: &str = "All your files are encrypted. Pay 1 Bitcoin to restore them; \
                    contact us by e-mail or all your data will be published.";

/// `Sample::from_path` on another thread, so that a reader stuck on an open
/// fails the test instead of hanging it.
fn read_within(path: &Path, limit: Duration) -> Result<Sample, SampleError> {
    let (tx, rx) = mpsc::channel();
    let owned = path.to_owned();
    std::thread::spawn(move || tx.send(Sample::from_path(&owned)));
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("reading {} did not return", path.display()))
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_fifo_named_like_a_note_is_refused_at_once_and_real_notes_still_read() {
    let attacker = mamori_testuser::ordinary();
    let dir = tempfile::tempdir().unwrap();
    let folder = attacker.folder(dir.path(), "share");
    let fifo = folder.join("README_DECRYPT.txt");
    attacker.run("mkfifo", &[path_str(&fifo)]);
    let real = folder.join("HOW_TO_RESTORE.txt");
    attacker.run("sh", &["-c", &format!("printf '%s' '{NOTE}' > '{}'", real.display())]);

    let err = read_within(&fifo, Duration::from_secs(20)).unwrap_err();
    assert!(matches!(err, SampleError::NotRegular { kind: "a FIFO", .. }), "{err}");
    match read_within(&real, Duration::from_secs(20)).unwrap() {
        Sample::Note { name, text } => {
            assert_eq!(text, NOTE);
            assert!(looks_like_ransom_note(&name, &text));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_link_named_like_a_note_is_not_followed() {
    let attacker = mamori_testuser::ordinary();
    let dir = tempfile::tempdir().unwrap();
    let folder = attacker.folder(dir.path(), "share");
    // A file only root may read, worded like a note so that a reader that
    // followed the link would keep its text.
    let private = tempfile::tempdir().unwrap();
    let secret = private.path().join("secret.txt");
    std::fs::write(&secret, format!("{NOTE} root-only-secret")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    for target in [secret.as_path(), Path::new("/etc/shadow")] {
        let link = folder.join("README_DECRYPT.txt");
        let _ = std::fs::remove_file(&link);
        attacker.run("ln", &["-s", path_str(target), path_str(&link)]);
        let err = read_within(&link, Duration::from_secs(20)).unwrap_err();
        assert!(matches!(err, SampleError::Link { .. }), "{}: {err}", target.display());
    }
}

#[test]
fn a_directory_named_like_a_note_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("README.txt");
    std::fs::create_dir(&path).unwrap();
    let err = Sample::from_path(&path).unwrap_err();
    assert!(matches!(err, SampleError::NotRegular { kind: "a directory", .. }), "{err}");
}
