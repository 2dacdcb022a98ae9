//! The one seam to the `nft` program: every change and every read of the
//! ruleset goes through [`Nft`], so a test can point it at another program.

use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nftables::schema::Nftables;

use crate::IsolateError;

/// How mamori reaches nftables: the `nft` program found on `PATH`, or
/// another one. Commands run in the network namespace of the calling thread.
#[derive(Debug, Clone)]
pub struct Nft {
    program: PathBuf,
}

impl Default for Nft {
    fn default() -> Nft {
        Nft::at("nft")
    }
}

impl Nft {
    pub fn at(program: impl Into<PathBuf>) -> Nft {
        Nft { program: program.into() }
    }

    /// Applies a batch in one transaction: nft commits all of it or none.
    pub(crate) fn apply(&self, batch: &Nftables<'_>, doing: &'static str) -> Result<(), IsolateError> {
        let json = serde_json::to_vec(batch).map_err(|source| IsolateError::Output { doing, source })?;
        self.run(&["-j", "-f", "-"], Some(&json), doing).map(drop)
    }

    pub(crate) fn list(&self, what: &[&str], doing: &'static str) -> Result<Nftables<'static>, IsolateError> {
        let mut args = vec!["-j", "list"];
        args.extend_from_slice(what);
        let out = self.run(&args, None, doing)?;
        serde_json::from_slice(&out).map_err(|source| IsolateError::Output { doing, source })
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>, doing: &'static str) -> Result<Vec<u8>, IsolateError> {
        let spawn_error = |source: std::io::Error| match source.kind() {
            ErrorKind::NotFound => IsolateError::NftMissing { program: self.program.clone() },
            _ => IsolateError::Run { program: self.program.clone(), source },
        };
        let mut child = Command::new(&self.program)
            .args(args)
            // nft's messages are matched below; keep them untranslated.
            .env("LC_ALL", "C")
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        // A failed write (nft exited early) is explained by nft's own stderr,
        // so it only counts when nft claims success.
        let written = match (input, child.stdin.take()) {
            (Some(bytes), Some(mut stdin)) => stdin.write_all(bytes),
            _ => Ok(()),
        };
        let out = child.wait_with_output().map_err(spawn_error)?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(if stderr.contains("Operation not permitted") {
                IsolateError::NotPermitted { detail: stderr }
            } else {
                IsolateError::Nft { doing, stderr }
            });
        }
        written.map_err(spawn_error)?;
        Ok(out.stdout)
    }
}
