//! What may be handed to a root tool. mamori runs as root among users who
//! may be hostile: a user can start a process called "sshd" with `-f
//! /etc/shadow` and wait for `sshd -T` to print that file into the report.
//! So a listener is taken for a system service only when it runs the
//! system's own binary as root, and a config file is read only when no
//! one but root can have written it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::sockets::Proc;

/// Whether `proc` runs `binary` (the same file, not merely the same path)
/// with every user id root.
pub fn runs_as_root(proc: &Proc, binary: &Path) -> bool {
    let dir = proc.dir();
    let root = fs::read_to_string(dir.join("status")).is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .is_some_and(|ids| ids.split_whitespace().all(|id| id == "0"))
    });
    // Following /proc/PID/exe reaches the file the process runs, even if renamed.
    let same = match (fs::metadata(dir.join("exe")), fs::metadata(binary)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    };
    root && same
}

/// A process running as root whose name is one of `names` (a name alone
/// proves nothing; root does: only root can have started it).
pub fn root_process_named(names: &[&str]) -> Option<Proc> {
    let mut pids: Vec<u32> =
        fs::read_dir("/proc").ok()?.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    pids.into_iter().find_map(|pid| {
        let name = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim_end().to_owned();
        let owner = fs::metadata(format!("/proc/{pid}")).ok()?.uid();
        (names.contains(&name.as_str()) && owner == 0).then_some(Proc { pid, name })
    })
}

/// The config file at `path`, resolved, if root owns it and every folder
/// above it and none of them can be written by anyone else (a sticky
/// folder such as /tmp protects the root-owned entries in it); else why not.
pub fn root_config(path: &Path) -> Result<PathBuf, String> {
    let real = fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", real.display()));
    }
    for (at, sticky_ok) in std::iter::once((real.as_path(), false)).chain(real.ancestors().skip(1).map(|a| (a, true))) {
        let m = fs::metadata(at).map_err(|e| format!("{}: {e}", at.display()))?;
        let mode = m.mode();
        let others_write = mode & 0o022 != 0 && !(sticky_ok && mode & 0o1000 != 0);
        if m.uid() != 0 || others_write {
            return Err(format!(
                "{} is owned by uid {} with mode {:o}: others could have written {}",
                at.display(),
                m.uid(),
                mode & 0o7777,
                real.display()
            ));
        }
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_files_no_one_else_can_write_are_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("sshd_config");
        fs::write(&conf, "Port 22\n").unwrap();
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
        if nix_uid() != 0 {
            // Owned by the test's user: never trusted.
            assert!(root_config(&conf).is_err());
            return;
        }
        assert_eq!(root_config(&conf).unwrap(), fs::canonicalize(&conf).unwrap());
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o664)).unwrap();
        assert!(root_config(&conf).unwrap_err().contains("mode 664"));
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(root_config(&conf).is_err(), "a folder anyone can write lets anyone replace the file");
        std::os::unix::fs::chown(&conf, Some(1), None).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(root_config(&conf).unwrap_err().contains("uid 1"));
        assert!(root_config(Path::new("/etc")).is_err());
    }

    #[test]
    fn a_process_is_the_system_program_only_if_it_runs_that_file() {
        let me = Proc { pid: std::process::id(), name: "sshd".into() };
        let exe = fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(runs_as_root(&me, &exe), nix_uid() == 0);
        assert!(!runs_as_root(&me, Path::new("/usr/sbin/sshd")), "its name is no proof");
    }

    fn nix_uid() -> u32 {
        // SAFETY: getuid cannot fail.
        unsafe { libc::getuid() }
    }
}
