//! Talking to restic: the few read-only commands the checks need, each a
//! bounded child (see [`crate::run`]).
//!
//! Every command opens the repository with `--no-lock` (a check must not
//! stand in the way of a backup, and must not leave a lock behind when it
//! is stopped) and `--no-cache` (no second copy of the repository's
//! metadata in root's home, and nothing stale from an earlier run).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

use crate::run::{self, Ran, RunError};
use crate::ResticRepo;

/// The most a listing command (`snapshots`, `stats`) may take.
pub const LIST_LIMIT: Duration = Duration::from_secs(5 * 60);
/// Most of `restic snapshots --json` kept: about 500 bytes a snapshot.
const MAX_SNAPSHOTS_JSON: u64 = 64 << 20;
const MAX_SMALL_JSON: u64 = 64 * 1024;

pub struct Restic<'a> {
    repo: &'a ResticRepo,
}

/// A snapshot as `restic snapshots --json` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    time: String,
    pub hostname: String,
    #[serde(default)]
    pub paths: Vec<String>,
    pub id: String,
    pub short_id: String,
}

impl Snapshot {
    pub fn time(&self) -> Option<Timestamp> {
        self.time.parse().ok()
    }
}

/// An entry of `restic ls --json`: the snapshot line first, then one node a line.
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    #[serde(default)]
    pub struct_type: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub mtime: String,
}

impl<'a> Restic<'a> {
    pub fn new(repo: &'a ResticRepo) -> Restic<'a> {
        Restic { repo }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = run::command("restic", &["RESTIC_"]);
        let mut password = OsString::from("--password-file=");
        password.push(&self.repo.password_file);
        cmd.arg(format!("--repo={}", self.repo.repository)).arg(password).args(["--no-lock", "--no-cache"]).args(args);
        cmd
    }

    /// Every snapshot; an error here means the repository cannot be opened.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>, RunError> {
        let (ran, out) = run::capture(&mut self.command(&["snapshots", "--json"]), LIST_LIMIT, MAX_SNAPSHOTS_JSON)?;
        ran.ok(&out)?;
        serde_json::from_slice(&out).map_err(|e| bad_output(&e))
    }

    /// Reads subset `k` of `of` of the data, with everything else `check` verifies.
    pub fn check(&self, k: u32, of: u32, limit: Duration) -> Result<(), RunError> {
        let subset = format!("--read-data-subset={k}/{of}");
        let (ran, out) = run::capture(&mut self.command(&["check", &subset]), limit, MAX_SMALL_JSON)?;
        ran.ok(&out).map(drop)
    }

    /// Hands each node of snapshot `id` to `each`, as the listing streams.
    pub fn ls(&self, id: &str, limit: Duration, mut each: impl FnMut(Node) + Send) -> Result<(), RunError> {
        let ran = run::lines(&mut self.command(&["ls", "--json", checked(id)?]), limit, |line| {
            if let Ok(node) = serde_json::from_slice::<Node>(line) {
                if node.struct_type == "node" {
                    each(node);
                }
            }
        })?;
        ran.ok(b"").map(drop)
    }

    /// The size of everything snapshot `id` would restore.
    pub fn total_size(&self, id: &str) -> Result<u64, RunError> {
        #[derive(Deserialize)]
        struct Stats {
            total_size: u64,
        }
        let (ran, out) =
            run::capture(&mut self.command(&["stats", "--json", checked(id)?]), LIST_LIMIT, MAX_SMALL_JSON)?;
        ran.ok(&out)?;
        serde_json::from_slice::<Stats>(&out).map(|s| s.total_size).map_err(|e| bad_output(&e))
    }

    /// Restores the files at `paths` (paths in the snapshot's tree) of
    /// snapshot `id` under `target`, and has restic verify what it wrote.
    pub fn restore(&self, id: &str, target: &Path, paths: &[String], limit: Duration) -> Result<Ran, RunError> {
        let mut cmd = self.command(&["restore", checked(id)?, "--verify"]);
        let mut to = OsString::from("--target=");
        to.push(target);
        cmd.arg(to);
        cmd.args(paths.iter().map(|p| format!("--include={}", glob_literal(p))));
        let (ran, out) = run::capture(&mut cmd, limit, MAX_SMALL_JSON)?;
        ran.ok(&out)
    }
}

/// A snapshot id from the repository, refused unless it is hex (it becomes
/// an argument: one starting with `-` would be an option).
fn checked(id: &str) -> Result<&str, RunError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(RunError::Output { program: "restic".into(), why: format!("snapshot id {id:?} is not hex") })
    }
}

fn bad_output(e: &serde_json::Error) -> RunError {
    RunError::Output { program: "restic".into(), why: e.to_string() }
}

/// `path` as a restic `--include` pattern matching only itself: restic
/// matches patterns as globs, so the glob characters in names are escaped.
fn glob_literal(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_hex_and_names_are_not_globs() {
        assert!(checked("9798cce7").is_ok());
        assert!(checked("--help").is_err());
        assert!(checked("").is_err());
        assert_eq!(glob_literal("/d/a*[1]?.txt"), "/d/a\\*\\[1\\]\\?.txt");
    }
}
