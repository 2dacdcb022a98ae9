//! The lock itself: the BPF object that build.rs compiled, loaded with aya.
//! Each guard loads its own copy, so its maps (and thus its directories,
//! allowances and denials) are its own.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, RingBuf};
use aya::programs::{Lsm, ProgramError};
use aya::{Btf, Ebpf, EbpfLoader};

use crate::{preflight, Allow, Denial, GuardError, Op};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/guard.bpf.o"));

/// Program names in guard.bpf.c, each named after its LSM hook.
const HOOKS: [&str; 14] = [
    "file_open",
    "inode_create",
    "inode_mkdir",
    "inode_mknod",
    "inode_symlink",
    "inode_unlink",
    "inode_link",
    "inode_rmdir",
    "inode_rename",
    "inode_setattr",
    "inode_setxattr",
    "inode_removexattr",
    "inode_set_acl",
    "inode_remove_acl",
];

/// `max_entries` of the `dirs` map in guard.bpf.c.
const MAX_DIRS: u32 = 256;

/// `struct key` in guard.bpf.c.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    ino: u64,
    /// The kernel's `sb->s_dev` encoding.
    dev: u32,
    pad: u32,
}

// SAFETY: repr(C), plain integers, no padding the kernel could read.
unsafe impl aya::Pod for Key {}

impl Key {
    fn of(meta: &fs::Metadata) -> Key {
        Key { ino: meta.ino(), dev: kernel_dev(meta.dev()), pad: 0 }
    }
}

/// glibc's `st_dev` splits major and minor across the 64 bits; the kernel
/// keeps `major << 20 | minor` in `sb->s_dev` (MKDEV).
fn kernel_dev(st_dev: u64) -> u32 {
    (libc::major(st_dev) << 20) | libc::minor(st_dev)
}

/// `struct denial` in guard.bpf.c.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawDenial {
    tgid: u32,
    tid: u32,
    op: u32,
    pad: u32,
    dir: Key,
    comm: [u8; 16],
    name: [u8; 256],
}

fn op(raw: u32) -> Option<Op> {
    Some(match raw {
        1 => Op::Open,
        2 => Op::Create,
        3 => Op::Mkdir,
        4 => Op::Mknod,
        5 => Op::Symlink,
        6 => Op::Link,
        7 => Op::Unlink,
        8 => Op::Rmdir,
        9 => Op::Rename,
        10 => Op::Setattr,
        11 => Op::Xattr,
        _ => return None,
    })
}

fn c_bytes(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn c_str(bytes: &[u8]) -> String {
    String::from_utf8_lossy(c_bytes(bytes)).into_owned()
}

pub(crate) struct Inner {
    dirs: BpfHashMap<MapData, Key, u8>,
    ring: RingBuf<MapData>,
    dropped: Array<MapData, u64>,
    paths: HashMap<Key, PathBuf>,
    // Owns the programs and their links: dropping it detaches them.
    _ebpf: Ebpf,
}

fn dir_key(dir: &Path) -> Result<Key, GuardError> {
    let dir_err = |source| GuardError::Dir { path: dir.to_path_buf(), source };
    let meta = fs::metadata(dir).map_err(dir_err)?;
    if !meta.is_dir() {
        return Err(dir_err(std::io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    Ok(Key::of(&meta))
}

/// Loads `object` (maps created, CO-RE relocated; programs not yet loaded)
/// with the allowances set in its read-only globals.
fn load_object(object: &[u8], btf: &Btf, pid: u32, exe: Option<Key>) -> Result<Ebpf, GuardError> {
    let exe_set = u32::from(exe.is_some());
    let exe = exe.unwrap_or(Key { ino: 0, dev: 0, pad: 0 });
    EbpfLoader::new()
        .btf(Some(btf))
        .override_global("allow_tgid", &pid, true)
        .override_global("allow_exe_set", &exe_set, true)
        .override_global("allow_exe_dev", &exe.dev, true)
        .override_global("allow_exe_ino", &exe.ino, true)
        .load(object)
        .map_err(|e| GuardError::Load(boxed(e)))
}

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

impl Inner {
    pub(crate) fn start(dirs: &[PathBuf], allow: &Allow) -> Result<Inner, GuardError> {
        preflight::check()?;
        let keys = dirs.iter().map(|d| dir_key(d).map(|k| (k, d.clone()))).collect::<Result<Vec<_>, _>>()?;
        let exe = match &allow.exe {
            Some(path) => {
                let meta = fs::metadata(path).map_err(|source| GuardError::Exe { path: path.clone(), source })?;
                Some(Key::of(&meta))
            }
            None => None,
        };
        let btf = Btf::from_sys_fs().map_err(|e| GuardError::Load(boxed(e)))?;
        let mut ebpf = load_object(OBJECT, &btf, allow.pid, exe)?;

        let mut take = |name: &str| {
            ebpf.take_map(name).ok_or_else(|| GuardError::Load(format!("the BPF object has no map {name}").into()))
        };
        let dirs_map = BpfHashMap::try_from(take("dirs")?).map_err(|e| GuardError::Load(boxed(e)))?;
        let ring = RingBuf::try_from(take("denials")?).map_err(|e| GuardError::Load(boxed(e)))?;
        let dropped = Array::try_from(take("dropped")?).map_err(|e| GuardError::Load(boxed(e)))?;

        let mut inner = Inner { dirs: dirs_map, ring, dropped, paths: HashMap::new(), _ebpf: ebpf };
        for (key, path) in keys {
            inner.insert(key, path)?;
        }
        // Attached last, so that no hook runs before the directories are in.
        for hook in HOOKS {
            let attach_err = |source| GuardError::Attach { hook: hook.to_owned(), source };
            let program: &mut Lsm = inner
                ._ebpf
                .program_mut(hook)
                .ok_or_else(|| attach_err("the BPF object has no such program".into()))?
                .try_into()
                .map_err(|e| attach_err(boxed(e)))?;
            program.load(hook, &btf).map_err(|e| match e {
                ProgramError::LoadError { io_error, verifier_log }
                    if io_error.raw_os_error() == Some(libc::EPERM) && verifier_log.to_string().trim().is_empty() =>
                {
                    GuardError::KernelRefused
                }
                e => attach_err(boxed(e)),
            })?;
            program.attach().map_err(|e| attach_err(boxed(e)))?;
        }
        Ok(inner)
    }

    fn insert(&mut self, key: Key, path: PathBuf) -> Result<(), GuardError> {
        self.dirs.insert(key, 1, 0).map_err(|e| GuardError::Map {
            path: path.clone(),
            max: MAX_DIRS,
            source: boxed(e),
        })?;
        self.paths.insert(key, path);
        Ok(())
    }

    pub(crate) fn protect(&mut self, dir: &Path) -> Result<(), GuardError> {
        let key = dir_key(dir)?;
        self.insert(key, dir.to_path_buf())
    }

    pub(crate) fn denials(&mut self) -> impl Iterator<Item = Denial> + '_ {
        let Inner { ring, paths, .. } = self;
        std::iter::from_fn(move || loop {
            let item = ring.next()?;
            if item.len() < size_of::<RawDenial>() {
                continue;
            }
            // SAFETY: the kernel wrote a whole `struct denial` (length checked
            // above); every bit pattern is a valid RawDenial.
            let raw = unsafe { item.as_ptr().cast::<RawDenial>().read_unaligned() };
            let Some(op) = op(raw.op) else { continue };
            return Some(Denial {
                pid: raw.tgid,
                tid: raw.tid,
                comm: c_str(&raw.comm),
                op,
                dir: paths.get(&raw.dir).cloned().unwrap_or_default(),
                name: OsStr::from_bytes(c_bytes(&raw.name)).to_owned(),
            });
        })
    }

    pub(crate) fn dropped(&self) -> u64 {
        // The map has one entry, created zeroed by the kernel: a failed read
        // means nothing was counted.
        self.dropped.get(&0, 0).unwrap_or(0)
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dev_matches_mkdev() {
        // 8:1 (sda1) and 259:65536 (a large NVMe minor): st_dev as glibc's
        // makedev builds it, s_dev as the kernel's MKDEV does.
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
        assert_eq!(kernel_dev(libc::makedev(259, 65536)), (259 << 20) | 65536);
    }

    /// The same programs built as raw tracepoints: loading them runs the
    /// verifier and the CO-RE relocations against this kernel even where
    /// LSM programs cannot be loaded (see `GuardError::KernelRefused`).
    #[test]
    fn every_hook_passes_the_verifier_on_this_kernel() {
        static VERIFY: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/guard-verify.bpf.o"));
        let btf = Btf::from_sys_fs().unwrap();
        let exe = Key { ino: 1, dev: 1, pad: 0 };
        let mut ebpf = load_object(VERIFY, &btf, 1, Some(exe)).unwrap();
        for hook in HOOKS {
            let program: &mut aya::programs::RawTracePoint =
                ebpf.program_mut(hook).unwrap_or_else(|| panic!("no program {hook}")).try_into().unwrap();
            if let Err(e) = program.load() {
                panic!("{hook} fails the verifier: {e}");
            }
        }
    }

    #[test]
    fn raw_denial_matches_the_c_layout() {
        assert_eq!(size_of::<Key>(), 16);
        assert_eq!(size_of::<RawDenial>(), 16 + 16 + 16 + 256);
    }
}
