//! The folders to protect, the filesystems under them, where their vaults
//! go, and the state directory.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::StatVfsMountFlags;

use super::{shown, Check};
use crate::settings::VaultSection;

/// A folder that can be protected.
pub struct Folder {
    /// Canonical: what the agent marks.
    pub path: PathBuf,
    pub dev: u64,
    read_only: bool,
}

/// What a filesystem is, for what mamori can do on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// On a disk of this machine: every open goes through this kernel.
    Local,
    /// Served to this machine: other machines change it unseen.
    Network,
    /// Made up by the kernel (proc, sysfs…): no user files.
    Virtual,
}

/// The filesystem's name and kind, from statfs's magic number.
fn filesystem(path: &Path) -> io::Result<(String, Kind)> {
    let magic = (rustix::fs::statfs(path)?.f_type as u64) & 0xffff_ffff;
    let (name, kind) = match magic {
        0xef53 => ("ext4", Kind::Local),
        0x5846_5342 => ("XFS", Kind::Local),
        0x9123_683e => ("btrfs", Kind::Local),
        0x0102_1994 => ("tmpfs", Kind::Local),
        0x2fc1_2fc1 => ("ZFS", Kind::Local),
        0xf2f5_2010 => ("F2FS", Kind::Local),
        0xca45_1a4e => ("bcachefs", Kind::Local),
        0x794c_7630 => ("overlayfs", Kind::Local),
        0x4d44 => ("FAT", Kind::Local),
        0x2011_bab0 => ("exFAT", Kind::Local),
        0x7366_746e => ("NTFS", Kind::Local),
        0x7371_7368 => ("squashfs", Kind::Local),
        0x9660 => ("ISO 9660", Kind::Local),
        0xe0f5_e1e2 => ("EROFS", Kind::Local),
        0x6969 => ("NFS", Kind::Network),
        0xff53_4d42 | 0xfe53_4d42 | 0x517b => ("SMB (cifs)", Kind::Network),
        0x6573_5546 => ("FUSE", Kind::Network),
        0x0102_1997 => ("9p", Kind::Network),
        0x00c3_6400 => ("CephFS", Kind::Network),
        0x9fa0 => ("proc", Kind::Virtual),
        0x6265_6572 => ("sysfs", Kind::Virtual),
        0x0027_e0eb => ("cgroup", Kind::Virtual),
        0x6367_7270 => ("cgroup2", Kind::Virtual),
        0x1cd1 => ("devpts", Kind::Virtual),
        0x6462_6720 => ("debugfs", Kind::Virtual),
        0x7472_6163 => ("tracefs", Kind::Virtual),
        0x7363_6673 => ("securityfs", Kind::Virtual),
        0xcafe_4a11 => ("bpf", Kind::Virtual),
        0x6265_6570 => ("configfs", Kind::Virtual),
        0x6165_676c => ("pstore", Kind::Virtual),
        0xde5e_81e4 => ("efivarfs", Kind::Virtual),
        0x1980_0202 => ("mqueue", Kind::Virtual),
        0x6e73_6673 => ("nsfs", Kind::Virtual),
        0x0187 => ("autofs", Kind::Virtual),
        other => return Ok((format!("filesystem type {other:#x}"), Kind::Local)),
    };
    Ok((name.to_owned(), kind))
}

/// Looks at each folder named; returns those the agent can protect, each once.
pub fn check(named: &[PathBuf], checks: &mut Vec<Check>) -> Vec<Folder> {
    let mut found: Vec<Folder> = Vec::new();
    for given in named {
        let name = shown(given);
        let lstat = match std::fs::symlink_metadata(given) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                checks.push(Check::fail(
                    "folder",
                    format!("{name} does not exist"),
                    format!("create {name}, or correct the path in `protect` under [agent] (or --protect)"),
                ));
                continue;
            }
            Err(e) => {
                checks.push(Check::fail("folder", format!("{name} cannot be reached: {e}"), "check the path"));
                continue;
            }
        };
        let canon = match given.canonicalize() {
            Ok(c) => c,
            Err(e) => {
                let fix = "correct the path, or the link it goes through";
                checks.push(Check::fail("folder", format!("{name} cannot be resolved: {e}"), fix));
                continue;
            }
        };
        let real = shown(&canon);
        if lstat.file_type().is_symlink() {
            checks.push(Check::warn(
                "folder",
                format!("{name} is a symbolic link to {real}: {real} is what gets protected"),
                format!("name {real} itself, so that changing the link cannot change what the config seems to protect"),
            ));
        }
        if !given.is_absolute() {
            checks.push(Check::warn(
                "folder",
                format!("{name} is a relative path, taken from the directory mamori starts in (here {real})"),
                format!("give the absolute path ({real})"),
            ));
        }
        let Ok(meta) = canon.metadata().map_err(|e| {
            checks.push(Check::fail("folder", format!("{name} cannot be read: {e}"), "check the path"));
        }) else {
            continue;
        };
        if !meta.is_dir() {
            checks.push(Check::fail(
                "folder",
                format!("{name} is not a directory"),
                "name the folder that holds the files",
            ));
            continue;
        }
        if canon == Path::new("/") {
            checks.push(Check::fail(
                "folder",
                format!("{name} is the whole machine (/)"),
                "name the folders that hold the data (/srv/share, /home…): under / every file opened on the \
                 machine, the system's own included, would wait on the agent",
            ));
            continue;
        }
        let (fs, kind) = match filesystem(&canon) {
            Ok(f) => f,
            Err(e) => {
                checks.push(Check::fail(
                    "folder",
                    format!("{name}: its filesystem cannot be read: {e}"),
                    "check the path",
                ));
                continue;
            }
        };
        if kind == Kind::Virtual {
            checks.push(Check::fail(
                "folder",
                format!("{real} is on {fs}, a filesystem the kernel makes up: it holds no user files to protect"),
                "name a folder on a disk filesystem (ext4, XFS, btrfs)",
            ));
            continue;
        }
        if kind == Kind::Network {
            checks.push(Check::warn(
                "folder",
                format!(
                    "{real} is on {fs}, a network filesystem: only what is done through this machine is seen; \
                     another machine writing to the same share is not"
                ),
                "protect the folder on the server that holds the disk (run mamori there)",
            ));
        }
        let read_only = rustix::fs::statvfs(&canon).is_ok_and(|s| s.f_flag.contains(StatVfsMountFlags::RDONLY));
        if read_only {
            checks.push(Check::warn(
                "folder",
                format!("{real} is mounted read-only: nothing can change it now, and no copy can be kept before it is"),
                "protect it once it is mounted read-write (and restart mamori then)",
            ));
        }
        if found.iter().any(|f| f.path == canon) {
            continue;
        }
        checks.push(Check::ok("folder", format!("{real} ({fs})")));
        found.push(Folder { path: canon, dev: meta.dev(), read_only });
    }
    found
}

/// A folder inside another is watched twice over, for nothing.
pub fn overlaps(found: &[Folder], checks: &mut Vec<Check>) {
    for inner in found {
        if let Some(outer) = found.iter().find(|o| o.path != inner.path && inner.path.starts_with(&o.path)) {
            let (inner, outer) = (shown(&inner.path), shown(&outer.path));
            checks.push(Check::warn(
                "overlap",
                format!("{inner} is inside {outer}, which is protected already"),
                format!("remove {inner} from the folders: it is watched as part of {outer}"),
            ));
        }
    }
}

/// Where each filesystem's vault goes, what its copies are, and whether
/// there is room for them.
pub fn vaults(found: &[Folder], state: &Path, cfg: &VaultSection, checks: &mut Vec<Check>) {
    if !cfg.enabled {
        checks.push(Check::warn(
            "vault",
            "before-images are off (vault.enabled = false): files an attack changed before it was stopped \
             cannot be put back",
            "set `enabled = true` under [vault]",
        ));
        return;
    }
    let mut seen = Vec::new();
    for f in found {
        if seen.contains(&f.dev) || f.read_only {
            continue;
        }
        seen.push(f.dev);
        let dir = match vault_location(state, &f.path) {
            Ok(d) => shown(&d),
            Err(e) => {
                checks.push(Check::fail(
                    "vault",
                    format!("for {}: {e:#}", shown(&f.path)),
                    "check the state directory",
                ));
                continue;
            }
        };
        let copies = match can_reflink(&f.path) {
            Ok(true) => {
                "copies share blocks with their file (reflink): a copy costs no space until the file changes".to_owned()
            }
            Ok(false) => format!(
                "copies are made of bytes (this filesystem cannot share blocks); a file of {} MiB or more \
                 opened to write is kept by range (only the blocks about to be overwritten)",
                cfg.range_copy_from_mib
            ),
            Err(e) => format!("whether copies can share blocks could not be tried ({e})"),
        };
        let free = match rustix::fs::statvfs(&f.path) {
            // As the vault counts it: root may use the reserved blocks.
            Ok(s) => s.f_bfree.saturating_mul(s.f_frsize) >> 20,
            Err(e) => {
                checks.push(Check::warn("vault", format!("{dir}: free space unknown: {e}"), "check the filesystem"));
                continue;
            }
        };
        if free <= cfg.free_floor_mib {
            checks.push(Check::warn(
                "vault",
                format!(
                    "{dir}: {free} MiB free, not above vault.free_floor_mib = {}: no copy is kept until space is freed",
                    cfg.free_floor_mib
                ),
                "free space on that filesystem, or lower `free_floor_mib` under [vault]",
            ));
        } else {
            checks.push(Check::ok(
                "vault",
                format!(
                    "{dir}: {copies}; {free} MiB free, copying stops at {} MiB left, at most {} MiB of copies",
                    cfg.free_floor_mib, cfg.budget_mib
                ),
            ));
        }
    }
}

/// Where the agent would put the vault of `root`'s filesystem, whether
/// or not the state directory exists yet.
fn vault_location(state: &Path, root: &Path) -> anyhow::Result<PathBuf> {
    let state = absolute(state);
    let anchor = nearest_existing(&state);
    let dir = crate::vaults::vault_dir(&anchor, root)?;
    Ok(if anchor != state && dir == anchor.join("vault") { state.join("vault") } else { dir })
}

/// Whether two files of the folder's filesystem can share blocks: tried on
/// unnamed files (`O_TMPFILE`), which vanish when closed.
fn can_reflink(dir: &Path) -> io::Result<bool> {
    let open = || OpenOptions::new().read(true).write(true).custom_flags(libc::O_TMPFILE).mode(0o600).open(dir);
    let src = open()?;
    src.write_all_at(b"x", 0)?;
    let dst = open()?;
    match rustix::fs::ioctl_ficlone(&dst, &src) {
        Ok(()) => Ok(true),
        Err(e)
            if [
                rustix::io::Errno::OPNOTSUPP,
                rustix::io::Errno::INVAL,
                rustix::io::Errno::XDEV,
                rustix::io::Errno::NOTTY,
            ]
            .contains(&e) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// The state directory: the agent refuses one another user could change.
pub fn state(state: &Path, checks: &mut Vec<Check>) {
    const CHECK: &str = "state directory";
    let name = shown(state);
    match std::fs::symlink_metadata(state) {
        Ok(meta) => match mamori_vault::check_private_dir(state) {
            Ok(()) if meta.permissions().mode() & 0o077 != 0 => checks.push(Check::warn(
                CHECK,
                format!(
                    "{name} can be read by other users (mode {:o}): incidents name users' files and programs",
                    meta.permissions().mode() & 0o7777
                ),
                format!("chmod 700 {name}"),
            )),
            Ok(()) => checks.push(Check::ok(CHECK, format!("{name}: root's, mode 700"))),
            Err(e) => checks.push(Check::fail(
                CHECK,
                format!("unsafe state directory: {e}"),
                "the agent refuses it: do as said, or give another --state DIR",
            )),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let anchor = nearest_existing(state);
            match unsafe_ancestor(&anchor) {
                None => checks.push(Check::ok(
                    CHECK,
                    format!("{name} does not exist yet: the agent makes it (root's, mode 700)"),
                )),
                Some(why) => checks.push(Check::fail(
                    CHECK,
                    format!("{name} would be made under {why}, which another user than root can change"),
                    "keep the state directory under directories owned by root and not writable by others",
                )),
            }
        }
        Err(e) => checks.push(Check::fail(CHECK, format!("{name}: {e}"), "check the path")),
    }
}

/// The first directory on the way to `dir` (inclusive) that another user
/// could change, as the agent's own check words it.
fn unsafe_ancestor(dir: &Path) -> Option<String> {
    let real = dir.canonicalize().ok()?;
    real.ancestors().find_map(|d| {
        let m = std::fs::symlink_metadata(d).ok()?;
        let mode = m.permissions().mode();
        let open = mode & 0o022 != 0 && mode & libc::S_ISVTX == 0;
        (m.uid() != 0 || open).then(|| format!("{} (owner uid {}, mode {:o})", d.display(), m.uid(), mode & 0o7777))
    })
}

/// `path` if it exists, else its nearest ancestor that does.
pub fn nearest_existing(path: &Path) -> PathBuf {
    absolute(path).ancestors().find(|p| p.exists()).map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(path)
    }
}
