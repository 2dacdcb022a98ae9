//! A BPF LSM lock on the vault: while a [`Guard`] lives, every process but
//! the agent (and mamori's own binary) is denied (`EPERM`) opening, creating,
//! linking, unlinking, renaming, or changing the attributes of anything in
//! the protected directories, and each attempt is reported as a [`Denial`].
//!
//! A protected directory `D` covers `D` itself and its direct entries (not
//! deeper: protect `D/objects` as well). Entries are judged by the path a
//! process went through, not by the inode: a file pinned in the vault by a
//! hard link stays open to its owner through the owner's own path.
//!
//! The BPF program is compiled at build time when clang is there; without it
//! the crate still builds and [`Guard::start`] returns
//! [`GuardError::NotBuilt`].

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

#[cfg(not(mamori_guard_bpf))]
#[path = "absent.rs"]
mod imp;
#[cfg(mamori_guard_bpf)]
#[path = "loaded.rs"]
mod imp;
#[cfg(mamori_guard_bpf)]
mod preflight;

/// Who may still touch the protected directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// A process (all its threads) allowed everything: the agent.
    pub pid: u32,
    /// Processes running this executable (compared by inode, so a copy or
    /// a replaced file is not it) are allowed too, e.g. `mamori restore`.
    pub exe: Option<PathBuf>,
}

/// What a denied process tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Open,
    Create,
    Mkdir,
    Mknod,
    Symlink,
    /// A hard link out of or into a protected directory.
    Link,
    Unlink,
    Rmdir,
    /// A rename out of, into, or of a protected directory.
    Rename,
    /// truncate, chmod, chown, utimes.
    Setattr,
    /// setxattr, removexattr, or a POSIX ACL change.
    Xattr,
}

/// One denied attempt, as the kernel saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// The thread's command name (at most 15 bytes).
    pub comm: String,
    pub op: Op,
    /// The protected directory involved, as given to the guard.
    pub dir: PathBuf,
    /// The entry's name (the protected directory's own name when it is the
    /// target), at most 255 bytes: bytes, as a name may not be UTF-8.
    pub name: OsString,
}

/// Why the lock could not be set up. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "this build of mamori has no BPF vault lock (clang was missing when it was built): \
         apt-get install clang libbpf-dev, then rebuild"
    )]
    NotBuilt,
    #[error(
        "BPF LSM is not active in this kernel (active: {active}): add bpf to the lsm= list on the kernel \
         command line (e.g. lsm={active},bpf) and reboot"
    )]
    LsmInactive { active: String },
    #[error(
        "the BPF vault lock needs root (precisely CAP_MAC_ADMIN and CAP_BPF with CAP_PERFMON, or \
         CAP_SYS_ADMIN): run the agent as root"
    )]
    NotPrivileged,
    #[error(
        "this kernel refuses BPF LSM programs even to root (BPF trampolines are disabled in it, as in some \
         VM kernels, though bpf is in its LSM list): the vault stays unlocked; run mamori on a kernel \
         that loads fentry/LSM programs (`bpftool prog load` of an lsm/ program succeeds)"
    )]
    KernelRefused,
    #[error("protected directory {path}: {source} (it must exist and be a directory)")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("allowed executable {path}: {source} (give the path of mamori's own binary)")]
    Exe { path: PathBuf, source: std::io::Error },
    #[error("loading the BPF vault lock failed (the kernel needs BTF at /sys/kernel/btf/vmlinux): {0}")]
    Load(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("attaching the BPF vault lock to LSM hook {hook} failed: {source}")]
    Attach {
        hook: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("protecting {path}: the kernel map refused it (at most {max} directories per guard): {source}")]
    Map {
        path: PathBuf,
        max: u32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The loaded and attached lock. Dropping it detaches every hook; nothing is
/// pinned, so nothing outlives it.
pub struct Guard {
    inner: imp::Inner,
}

impl Guard {
    /// Loads the BPF program, protects `dirs`, and attaches the hooks.
    pub fn start(dirs: &[PathBuf], allow: Allow) -> Result<Guard, GuardError> {
        imp::Inner::start(dirs, &allow).map(|inner| Guard { inner })
    }

    /// Protects one more directory from now on.
    pub fn protect(&mut self, dir: &Path) -> Result<(), GuardError> {
        self.inner.protect(dir)
    }

    /// Drains the denials waiting in the ring buffer, without blocking.
    pub fn denials(&mut self) -> impl Iterator<Item = Denial> + '_ {
        self.inner.denials()
    }

    /// Denials not reported because the ring buffer was full (they were
    /// still denied).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }
}

/// Readable (poll/epoll) while denials are waiting.
impl AsFd for Guard {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}
