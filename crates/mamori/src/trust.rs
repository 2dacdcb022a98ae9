//! Which programs may be trusted in a folder after a false positive.
//!
//! Trust switches detection off for a program in a folder, so it must name
//! exactly one program: not an interpreter or a shell (trusting
//! `/usr/bin/python3` would hide every script, the attacker's included),
//! not a file a user could replace, and only with the content it had when
//! it was trusted.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Programs that run whatever they are given: trusting one trusts every
/// script, so they are never trusted wholesale. Matched on the file name
/// without a trailing version (`python3.11` is `python`).
const INTERPRETERS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "fish",
    "csh",
    "tcsh",
    "busybox",
    "python",
    "pypy",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "deno",
    "bun",
    "php",
    "php-cgi",
    "lua",
    "luajit",
    "tclsh",
    "wish",
    "java",
    "pwsh",
    "awk",
    "gawk",
    "mawk",
    "env",
    "r",
    "rscript",
    "julia",
    "expect",
    "guile",
    "osascript",
    "qemu-user",
];

/// Why `exe` cannot be trusted, if it cannot.
pub fn refusal(exe: &Path) -> Option<String> {
    // Any bytes may name a program: one that is not UTF-8 is judged like any other.
    let Some(name) = exe.file_name() else { return Some("it names no program".into()) };
    let name = name.to_string_lossy().to_ascii_lowercase();
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    if INTERPRETERS.contains(&base) {
        return Some(format!(
            "{name} runs whatever script it is given; trusting it would hide every script, an attacker's too"
        ));
    }
    let replaceable = |p: &Path| p.symlink_metadata().map_or(true, |m| m.uid() != 0 || m.mode() & 0o022 != 0);
    if replaceable(exe) {
        return Some("the program can be changed by another user than root, who would then be trusted".into());
    }
    if exe.parent().is_some_and(|dir| dir.metadata().map_or(true, |m| m.uid() != 0 || m.mode() & 0o022 != 0)) {
        return Some("its folder can be changed by another user than root, who could put another program there".into());
    }
    None
}

/// The hash a trust is recorded with, of the program as it is now.
pub fn exe_hash(exe: &Path) -> std::io::Result<String> {
    mamori_vault::content_hash(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreters_and_shells_are_never_trusted() {
        for exe in ["/usr/bin/python3", "/usr/bin/python3.11", "/bin/bash", "/usr/bin/perl5.36.0", "/usr/bin/node"] {
            assert!(refusal(Path::new(exe)).is_some(), "{exe}");
        }
    }

    #[test]
    fn a_root_program_in_a_root_folder_can_be_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("backup-tool");
        std::fs::copy("/usr/bin/true", &exe).unwrap();
        assert_eq!(refusal(&exe), None);
    }

    /// The checks hold for a name that is not UTF-8: it once skipped them all.
    #[test]
    fn a_program_named_with_bytes_that_are_not_utf8_is_checked_like_any() {
        use std::os::unix::ffi::OsStrExt;
        let user = mamori_testuser::ordinary();
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join(std::ffi::OsStr::from_bytes(b"backup-\xff"));
        std::fs::copy("/usr/bin/true", &exe).unwrap();
        assert_eq!(refusal(&exe), None);
        std::os::unix::fs::chown(&exe, Some(user.uid), None).unwrap();
        assert!(refusal(&exe).is_some_and(|why| why.contains("changed by another user")));
        assert!(refusal(Path::new("/usr/bin/..")).is_some());
    }

    #[test]
    fn a_program_a_user_can_replace_is_not_trusted() {
        let user = mamori_testuser::ordinary();
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("backup-tool");
        std::fs::copy("/usr/bin/true", &exe).unwrap();
        std::os::unix::fs::chown(&exe, Some(user.uid), None).unwrap();
        assert!(refusal(&exe).is_some_and(|why| why.contains("changed by another user")));
    }
}
