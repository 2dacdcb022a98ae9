//! Checks made before loading, so that the two commonest failures (BPF LSM
//! not enabled at boot, not root) get a message that says what to do instead
//! of a bare EPERM or a hook that never runs.

use std::ffi::CStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::GuardError;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_MAC_ADMIN: u32 = 33;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

pub(crate) fn check() -> Result<(), GuardError> {
    check_caps()?;
    check_lsm()
}

fn check_caps() -> Result<(), GuardError> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(eff) =
        status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    else {
        // Without /proc the kernel's own EPERM will have to do.
        return Ok(());
    };
    let has = |cap: u32| eff & (1 << cap) != 0;
    if has(CAP_MAC_ADMIN) && (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
        Ok(())
    } else {
        Err(GuardError::NotPrivileged)
    }
}

fn check_lsm() -> Result<(), GuardError> {
    let list = match fs::read_to_string("/sys/kernel/security/lsm") {
        Ok(list) => list,
        Err(_) => match read_lsm_detached() {
            Some(list) => list,
            // Unknown: go on; attaching will fail if it must.
            None => return Ok(()),
        },
    };
    let list = list.trim();
    if list.split(',').any(|lsm| lsm == "bpf") {
        Ok(())
    } else {
        Err(GuardError::LsmInactive { active: list.to_owned() })
    }
}

/// Reads the LSM list from a securityfs mount that is never attached to the
/// tree (new mount API), for machines where securityfs is not mounted: the
/// check must not leave a mount behind.
fn read_lsm_detached() -> Option<String> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let fs_name: &CStr = c"securityfs";
    // SAFETY: plain system calls on a C string literal and on fds owned here.
    unsafe {
        let fs = owned(libc::syscall(libc::SYS_fsopen, fs_name.as_ptr(), FSOPEN_CLOEXEC))?;
        let fs_fd = std::os::fd::AsRawFd::as_raw_fd(&fs);
        if libc::syscall(libc::SYS_fsconfig, fs_fd, FSCONFIG_CMD_CREATE, 0usize, 0usize, 0) != 0 {
            return None;
        }
        let mnt = owned(libc::syscall(libc::SYS_fsmount, fs_fd, FSMOUNT_CLOEXEC, 0))?;
        let lsm = owned(
            libc::openat(std::os::fd::AsRawFd::as_raw_fd(&mnt), c"lsm".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)
                .into(),
        )?;
        let mut list = String::new();
        File::from(lsm).read_to_string(&mut list).ok()?;
        Some(list)
    }
}

/// # Safety
/// `ret` must be a fresh fd returned by a system call, or negative.
unsafe fn owned(ret: libc::c_long) -> Option<OwnedFd> {
    let fd = RawFd::try_from(ret).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the caller passes a fresh fd nobody else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lsm_list_is_read_without_mounting_securityfs() {
        let list = read_lsm_detached().expect("root can make a detached securityfs mount");
        assert!(list.trim().split(',').any(|lsm| lsm == "capability"), "{list}");
    }
}
