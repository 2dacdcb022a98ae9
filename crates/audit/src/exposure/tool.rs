//! The system's tools (`sshd -T`, `testparm`, `nft`, `apt-get -s`), run as
//! bounded children (see [`crate::run`]) in the C locale, since their
//! output is parsed.

use std::path::Path;
use std::time::Duration;

use crate::run::{self, RunError};

/// Most output kept from one tool: `testparm -v` of a large config and a
/// full nftables ruleset are far smaller.
const MAX_OUTPUT: u64 = 8 << 20;

/// Runs `program` with `args` until it exits or `limit` passes, for its
/// standard output; an exit status other than success is an error
/// carrying the tool's message.
pub fn run(program: &Path, args: &[&str], limit: Duration) -> Result<String, RunError> {
    let mut cmd = run::command(program, &[]);
    cmd.args(args).env("LC_ALL", "C");
    let (ran, out) = run::capture(&mut cmd, limit, MAX_OUTPUT)?;
    ran.ok(&out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Lines (a list, a tool's message) on one bounded line, for a finding's detail.
pub fn one_line(said: &str) -> String {
    const MAX: usize = 300;
    let joined = said.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" / ");
    match joined.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locale_is_c_and_a_missing_tool_says_so() {
        let ok = run(Path::new("/bin/sh"), &["-c", "echo \"$LC_ALL\""], Duration::from_secs(20)).unwrap();
        assert_eq!(ok, "C\n");
        let missing = run(Path::new("/nonexistent/tool"), &[], Duration::from_secs(1));
        assert!(matches!(missing, Err(RunError::Missing { .. })), "{missing:?}");
        assert_eq!(missing.unwrap_err().to_string(), "/nonexistent/tool is not installed");
    }
}
