//! Files opened through another mount of the vault's filesystem.
//!
//! A process in another mount namespace (smbd started by `ip netns exec`, a
//! service with `PrivateTmp=` or `ProtectSystem=`) opens files through its
//! own copy of a mount: the vault's filesystem, but another vfsmount than
//! the one the agent resolves the vault through. `linkat` links only within
//! one vfsmount, and FICLONE did the same before Linux 6.8, so both fail
//! with `EXDEV` for such a file although nothing stands in the way on disk.
//!
//! A pin links the same inode reopened on the vault's own mount, by handle
//! and with `O_PATH`: the one open that makes no fanotify permission event
//! (see [`sys::reopen_path`]). A clone cannot start from an `O_PATH`
//! descriptor (it needs one open to read), so it is made by
//! `copy_file_range` from the opener's own descriptor, which the kernel
//! allows across mounts and, within a filesystem that can share blocks,
//! does as a clone.
//!
//! `EXDEV` for a file on another filesystem than the vault's stays what it
//! was: the file cannot be kept there.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::sys;

/// The most handed to one `copy_file_range`: the kernel does no more in a call anyway.
const IN_KERNEL_CHUNK: usize = 1 << 30;
const PROBE: &str = ".clone-probe";

/// Hard-links the inode of `file` as `name` in `dir`, a directory on the
/// mount of `vault` (the vault's directory), whatever mount `file` was
/// opened through. Fails with `EXDEV` only when `file` is on another
/// filesystem.
pub(crate) fn link(file: &File, dir: BorrowedFd<'_>, name: &OsStr, vault: &File) -> io::Result<()> {
    match sys::link_in(file.as_fd(), dir, name) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) && same_filesystem(file, vault)? => {
            let here = sys::reopen_path(file, vault.as_fd())?;
            sys::link_in(here.as_fd(), dir, name)
        }
        other => other,
    }
}

pub(crate) fn same_filesystem(file: &File, vault: &File) -> io::Result<bool> {
    Ok(file.metadata()?.dev() == vault.metadata()?.dev())
}

/// Whether the filesystem of the directory `dir` (the vault's `staging/`,
/// else its `objects/`) can share blocks between files: tried on two files
/// of its own, so that a file met through another mount is cloned where one
/// met through the vault's mount would be, and kept by range where it would
/// not be (a whole copy of a large file would keep its opener waiting for
/// minutes). Nameless files where the filesystem makes them, so no name
/// appears and none is left behind.
pub(crate) fn can_clone(dir: BorrowedFd<'_>) -> io::Result<bool> {
    if let (Ok(src), Ok(dst)) = (sys::nameless_in(dir, 0o600), sys::nameless_in(dir, 0o600)) {
        return clones(&src, &dst);
    }
    let (a, b) = (format!("{PROBE}-{}-a", std::process::id()), format!("{PROBE}-{}-b", std::process::id()));
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC;
    let result = (|| {
        let src = sys::open_in(dir, OsStr::new(&a), flags, 0o600)?;
        let dst = sys::open_in(dir, OsStr::new(&b), flags, 0o600)?;
        clones(&src, &dst)
    })();
    // Left behind by a crash, they are orphans the next open removes.
    let _ = sys::unlink_in(dir, OsStr::new(&a));
    let _ = sys::unlink_in(dir, OsStr::new(&b));
    result
}

fn clones(src: &File, dst: &File) -> io::Result<bool> {
    src.write_all_at(b"x", 0)?;
    match sys::reflink(src, dst) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL | libc::EXDEV | libc::ENOTTY)) => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Copies all of `src` into the empty `dst` in the kernel, by offset (the
/// opener's file position is left alone). Returns `None`: the bytes never
/// pass through here to be hashed, as with a reflink. Where the kernel
/// cannot copy between the two, the bytes are copied here instead and the
/// hash returned. `len` as in [`crate::copy_into`].
pub(crate) fn copy_in_kernel(src: &File, dst: &File, len: u64) -> io::Result<Option<String>> {
    let mut off = 0u64;
    loop {
        match sys::copy_range(src, dst, off, IN_KERNEL_CHUNK) {
            Ok(0) => return Ok(None),
            Ok(n) => off += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if off == 0
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EXDEV | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS)
                    ) =>
            {
                return crate::copy_into(src, dst, len).map(Some);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The copy taken where FICLONE refuses to cross mounts, which this
    //! kernel (6.8 or later) no longer does: the old rule is emulated.
    //! The pins across mounts are tested in `tests/vault.rs`.

    use super::*;
    use crate::{Kind, Limits, Preserved, Vault};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const BIG: Limits =
        Limits { budget_bytes: 1 << 30, user_budget_bytes: 1 << 30, free_floor_bytes: 0, retention_ns: 1_000 };

    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-d").arg(&self.0).status();
        }
    }

    fn mount(args: &[&str], what: &Path, at: &Path) -> Unmount {
        std::fs::create_dir_all(at).unwrap();
        assert!(Command::new("mount").args(args).arg(what).arg(at).status().unwrap().success(), "mount {args:?}");
        Unmount(at.to_path_buf())
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn free(path: &Path) -> u64 {
        sys::free_bytes(&File::open(path).unwrap()).unwrap()
    }

    /// FICLONE refusing to cross mounts, as before 6.8, on the test's thread while held.
    struct RefuseAcrossMounts;
    impl RefuseAcrossMounts {
        fn new() -> Self {
            sys::REFLINK_WITHIN_ONE_MOUNT.set(true);
            RefuseAcrossMounts
        }
    }
    impl Drop for RefuseAcrossMounts {
        fn drop(&mut self) {
            sys::REFLINK_WITHIN_ONE_MOUNT.set(false);
        }
    }

    #[test]
    fn a_large_file_through_another_mount_of_a_reflink_filesystem_is_cloned() {
        if Command::new("sh").args(["-c", "command -v mkfs.xfs"]).output().is_ok_and(|o| !o.status.success()) {
            println!("note: mkfs.xfs (xfsprogs) is not installed; test skipped");
            return;
        }
        let tmp = tempfile::Builder::new().prefix("vault-mounts-").tempdir_in("/var/tmp").unwrap();
        let image = tmp.path().join("fs.img");
        File::create(&image).unwrap().set_len(512 << 20).unwrap();
        let ok = Command::new("mkfs.xfs").args(["-q", "-f", "-m", "reflink=1"]).arg(&image).status().unwrap();
        assert!(ok.success(), "mkfs.xfs failed");
        let mnt = tmp.path().join("mnt");
        let _fs = mount(&["-o", "loop"], &image, &mnt);
        let door = tmp.path().join("door");
        let _door = mount(&["--bind"], &mnt, &door);
        let content = pattern(64 << 20);
        let f = mnt.join("disk.img");
        std::fs::write(&f, &content).unwrap();
        File::open(&f).unwrap().sync_all().unwrap();
        let mut v = Vault::open(&mnt.join("vault"), BIG).unwrap();
        let file = File::options().read(true).write(true).open(door.join("disk.img")).unwrap();

        let refused = RefuseAcrossMounts::new();
        let before = free(&mnt);
        let kept = v.preserve_reflink(&file, f.to_str().unwrap(), 1, None).unwrap();
        let Some(Preserved::Stored(e)) = kept else { panic!("expected a stored copy, got {kept:?}") };
        drop(refused);
        let used = before.saturating_sub(free(&mnt));
        assert!(used < 16 << 20, "a 64 MiB clone across mounts used {used} bytes: copied, not shared");
        assert_eq!((e.kind, e.hash.as_deref()), (Kind::Copy, None), "unhashed, as a reflink");
        assert_eq!(v.usage().bytes, content.len() as u64, "charged as a copy");
        file.write_all_at(b"ENCRYPTED", 5 << 20).unwrap();
        drop(file);
        v.restore_to(&e, &f).unwrap();
        assert!(std::fs::read(&f).unwrap() == content, "the clone restores bit for bit");
    }

    #[test]
    fn a_large_file_through_another_mount_of_ext4_is_kept_by_range_not_copied() {
        let tmp = tempfile::Builder::new().prefix("vault-mounts-").tempdir_in("/var/tmp").unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let door = tmp.path().join("door");
        let _door = mount(&["--bind"], &data, &door);
        let f = data.join("disk.img");
        std::fs::write(&f, pattern(1 << 20)).unwrap();
        let mut v = Vault::open(&tmp.path().join("vault"), BIG).unwrap();
        let file = File::options().read(true).write(true).open(door.join("disk.img")).unwrap();
        let _refused = RefuseAcrossMounts::new();
        assert_eq!(v.preserve_reflink(&file, f.to_str().unwrap(), 1, None).unwrap(), None);
        assert_eq!(v.usage().bytes, 0, "nothing copied");
        let kept = v.begin_ranges(&file, f.to_str().unwrap(), 1, None).unwrap();
        assert!(matches!(&kept, Preserved::Stored(e) if e.kind == Kind::Ranges), "{kept:?}");
        let names: Vec<_> =
            std::fs::read_dir(tmp.path().join("vault/objects")).unwrap().map(|d| d.unwrap().file_name()).collect();
        assert!(names.iter().all(|n| !n.to_string_lossy().starts_with(PROBE)), "probe left behind: {names:?}");
    }
}
