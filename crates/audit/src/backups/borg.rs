//! Talking to borg: the newest archive, the check, and the repository's
//! own append-only setting. Read-only commands, `--bypass-lock` (a stopped
//! check must not leave a lock that fails the next backup), never a prompt:
//! the passphrase comes in the environment from the password file (or is
//! empty, which an encrypted repository refuses), and the questions borg
//! would ask are answered no.

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

use super::age::Newest;
use crate::run::{self, RunError};
use crate::BorgRepo;

const LIST_LIMIT: Duration = Duration::from_secs(5 * 60);
const MAX_JSON: u64 = 1 << 20;
/// A passphrase file is one line; more is not read.
const MAX_PASSPHRASE: u64 = 4096;

pub struct Borg<'a> {
    repo: &'a BorgRepo,
    passphrase: String,
}

impl<'a> Borg<'a> {
    /// Reads the passphrase (its first line) from the repository's password file.
    pub fn open(repo: &'a BorgRepo) -> Result<Borg<'a>, RunError> {
        let passphrase = match &repo.password_file {
            Some(path) => {
                let mut text = String::new();
                mamori_userfile::open_regular(path, mamori_userfile::Follow::Never)
                    .map_err(std::io::Error::from)
                    .and_then(|f| f.take(MAX_PASSPHRASE).read_to_string(&mut text))
                    .map_err(|e| RunError::Failed(format!("cannot read {}: {e}", path.display())))?;
                text.lines().next().unwrap_or("").to_owned()
            }
            None => String::new(),
        };
        Ok(Borg { repo, passphrase })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = run::command("borg", &["BORG_"]);
        cmd.env("BORG_PASSPHRASE", &self.passphrase)
            .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "no")
            .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "no")
            .env("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "NO")
            .args(args)
            .arg("--bypass-lock")
            // The repository is an operand, never an option.
            .arg("--")
            .arg(&self.repo.repository);
        cmd
    }

    /// The newest archive, if any; an error means the repository cannot be opened.
    pub fn newest(&self) -> Result<Option<Newest>, RunError> {
        #[derive(Deserialize)]
        struct List {
            archives: Vec<Archive>,
        }
        #[derive(Deserialize)]
        struct Archive {
            name: String,
            time: String,
        }
        let (ran, out) = run::capture(&mut self.command(&["list", "--json", "--last", "1"]), LIST_LIMIT, MAX_JSON)?;
        // 1 is a warning: the listing stands.
        if ran.status.code() != Some(1) {
            ran.ok(&out)?;
        }
        let list: List = serde_json::from_slice(&out)
            .map_err(|e| RunError::Output { program: "borg".into(), why: e.to_string() })?;
        let Some(archive) = list.archives.into_iter().next() else { return Ok(None) };
        let time = local_time(&archive.time).ok_or_else(|| RunError::Output {
            program: "borg".into(),
            why: format!("archive time {:?}", archive.time),
        })?;
        Ok(Some(Newest { set: String::new(), time, name: archive.name }))
    }

    /// `borg check`: every segment's checksums, then the archives' metadata.
    pub fn check(&self, limit: Duration) -> Result<(), RunError> {
        let (ran, out) = run::capture(&mut self.command(&["check"]), limit, MAX_JSON)?;
        ran.ok(&out).map(drop)
    }
}

/// borg lists archive times in this host's local time, without an offset.
fn local_time(text: &str) -> Option<Timestamp> {
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil.to_zoned(jiff::tz::TimeZone::system()).ok().map(|z| z.timestamp())
}

/// Whether a local repository's `config` says `append_only = 1`, so borg
/// itself refuses to delete from it.
pub fn append_only(config: &str) -> bool {
    let mut in_repository = false;
    config.lines().map(str::trim).any(|line| {
        if line.starts_with('[') {
            in_repository = line == "[repository]";
            return false;
        }
        in_repository && line.split_once('=').is_some_and(|(k, v)| k.trim() == "append_only" && v.trim() == "1")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_only_is_read_from_the_repository_section() {
        assert!(append_only("[repository]\nversion = 1\nappend_only = 1\n"));
        assert!(!append_only("[repository]\nappend_only = 0\n"));
        assert!(!append_only("[other]\nappend_only = 1\n"));
    }

    #[test]
    fn archive_times_are_local() {
        assert!(local_time("2020-01-01T00:00:00.000000").is_some());
        assert!(local_time("yesterday").is_none());
    }
}
