//! An ordinary (unprivileged) account for tests that play the attacker:
//! what a local user can do to a root agent is only shown by a real user.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Copy)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

const NAME: &str = "mamori-test";

/// The test account, made on first use (`useradd` is idempotent enough:
/// an account already there is simply looked up).
pub fn ordinary() -> User {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, NAME]).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    if id("-u").is_none() {
        // Two test threads may race to create it; the loser's failure is harmless.
        let _ = Command::new("useradd").args(["--system", "--no-create-home", "--user-group", NAME]).status();
    }
    User { uid: id("-u").expect("the test account exists"), gid: id("-g").expect("the test account has a group") }
}

impl User {
    /// `program`, to be run as this user with no supplementary groups
    /// (through `setpriv`); add its arguments and run it as any `Command`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([format!("--reuid={}", self.uid), format!("--regid={}", self.gid), "--clear-groups".into()])
            .arg("--")
            .arg(program);
        cmd
    }

    /// A new folder `name` in `parent` that this user owns; `parent` is
    /// opened to 0755 so that the user can reach it.
    pub fn folder(&self, parent: &Path, name: &str) -> PathBuf {
        std::fs::set_permissions(parent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let folder = parent.join(name);
        std::fs::create_dir(&folder).unwrap();
        std::os::unix::fs::chown(&folder, Some(self.uid), Some(self.gid)).unwrap();
        folder
    }

    /// Runs `program` as this user, with no supplementary groups; panics unless it succeeds.
    pub fn run(&self, program: &str, args: &[&str]) {
        let status = self.command(program).args(args).status().expect("setpriv runs");
        assert!(status.success(), "{program} {args:?} as the test user failed: {status}");
    }
}

/// A library that, preloaded into any program, opens the file `PEEK` names
/// before the program's own code runs, says how that went on stderr and
/// ends the program: what anyone could do to borrow a trusted executable.
/// Built with `gcc` into `dir`.
pub fn peek_library(dir: &Path) -> PathBuf {
    let src = dir.join("peek.c");
    std::fs::write(
        &src,
        r#"#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void peek(void) {
    const char *path = getenv("PEEK");
    if (!path) return;
    int fd = open(path, O_RDONLY);
    dprintf(2, "peek: %s\n", fd >= 0 ? "opened" : strerror(errno));
    _exit(fd >= 0 ? 0 : 1);
}
"#,
    )
    .unwrap();
    let lib = dir.join("peek.so");
    let gcc = Command::new("gcc").args(["-shared", "-fPIC", "-o"]).arg(&lib).arg(&src).output().unwrap();
    assert!(gcc.status.success(), "gcc: {}", String::from_utf8_lossy(&gcc.stderr));
    lib
}
