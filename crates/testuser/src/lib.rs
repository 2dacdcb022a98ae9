//! An ordinary (unprivileged) account for tests that play the attacker:
//! what a local user can do to a root agent is only shown by a real user.

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
    /// Runs `program` as this user, with no supplementary groups; panics unless it succeeds.
    pub fn run(&self, program: &str, args: &[&str]) {
        let status = Command::new("setpriv")
            .args([format!("--reuid={}", self.uid), format!("--regid={}", self.gid), "--clear-groups".into()])
            .arg("--")
            .arg(program)
            .args(args)
            .status()
            .expect("setpriv runs");
        assert!(status.success(), "{program} {args:?} as the test user failed: {status}");
    }
}
