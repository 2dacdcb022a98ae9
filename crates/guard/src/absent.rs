//! The build without the BPF program (clang was missing): a guard cannot be
//! started, so none ever exists.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use crate::{Allow, Denial, GuardError};

pub(crate) enum Inner {}

impl Inner {
    pub(crate) fn start(_dirs: &[PathBuf], _allow: &Allow) -> Result<Inner, GuardError> {
        Err(GuardError::NotBuilt)
    }

    pub(crate) fn protect(&mut self, _dir: &Path) -> Result<(), GuardError> {
        match *self {}
    }

    pub(crate) fn denials(&mut self) -> std::iter::Empty<Denial> {
        match *self {}
    }

    pub(crate) fn dropped(&self) -> u64 {
        match *self {}
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        match *self {}
    }
}
