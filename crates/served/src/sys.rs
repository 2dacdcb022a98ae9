//! Asking another process's socket about its connection: a copy of its
//! descriptor (`pidfd_getfd`), then the socket calls on the copy. The copy
//! is closed when dropped; the connection is the process's and goes on.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `tcpi_state` of an established connection.
const TCP_ESTABLISHED: u8 = 1;

pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: plain integers in, a new descriptor (or -1) out.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    owned(fd)
}

/// A copy of descriptor `fd` of the process behind `pidfd` (close-on-exec).
pub(crate) fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain integers in, a new descriptor (or -1) out.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    owned(fd)
}

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just made this descriptor for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The local address of a TCP socket; `None` for any other descriptor.
pub(crate) fn local_tcp(sock: &OwnedFd) -> Option<SocketAddr> {
    let ty = int_option(sock, libc::SOL_SOCKET, libc::SO_TYPE)?;
    let proto = int_option(sock, libc::SOL_SOCKET, libc::SO_PROTOCOL)?;
    if ty != libc::SOCK_STREAM || proto != libc::IPPROTO_TCP {
        return None;
    }
    address(sock, libc::getsockname)
}

pub(crate) fn peer(sock: &OwnedFd) -> Option<SocketAddr> {
    address(sock, libc::getpeername)
}

pub(crate) fn established(sock: &OwnedFd) -> bool {
    // tcp_info grows with kernels; only its first byte (tcpi_state) is read.
    let mut info = [0u64; 32];
    let mut len = size_of::<[u64; 32]>() as libc::socklen_t;
    // SAFETY: info is writable for len bytes; the kernel writes at most len.
    let rc = unsafe {
        libc::getsockopt(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, info.as_mut_ptr().cast(), &mut len)
    };
    rc == 0 && len >= 1 && info[0].to_ne_bytes()[0] == TCP_ESTABLISHED
}

fn int_option(sock: &OwnedFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value is writable for len bytes.
    let rc = unsafe { libc::getsockopt(sock.as_raw_fd(), level, name, (&raw mut value).cast(), &mut len) };
    (rc == 0 && len as usize == size_of::<libc::c_int>()).then_some(value)
}

type NameCall = unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn address(sock: &OwnedFd, call: NameCall) -> Option<SocketAddr> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage is writable for len bytes; the kernel writes at most len.
    let rc = unsafe { call(sock.as_raw_fd(), storage.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised, then (partly) filled by the kernel: every byte is initialised.
    let storage = unsafe { storage.assume_init() };
    from_storage(&storage, len as usize)
}

fn from_storage(storage: &libc::sockaddr_storage, len: usize) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says sockaddr_in, and len says it is all there.
            let sin: libc::sockaddr_in = unsafe { *(storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: libc::sockaddr_in6 = unsafe { *(storage as *const libc::sockaddr_storage).cast() };
            let v6 = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            // A dual-stack listener's IPv4 clients are IPv4 clients.
            let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
            Some(SocketAddr::new(ip, u16::from_be(sin6.sin6_port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::zeroed;

    #[test]
    fn short_or_foreign_addresses_are_refused() {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        storage.ss_family = libc::AF_INET as libc::sa_family_t;
        assert_eq!(from_storage(&storage, 4), None);
        assert!(from_storage(&storage, size_of::<libc::sockaddr_in>()).is_some());
        storage.ss_family = libc::AF_INET6 as libc::sa_family_t;
        assert_eq!(from_storage(&storage, size_of::<libc::sockaddr_in>()), None);
        storage.ss_family = libc::AF_UNIX as libc::sa_family_t;
        assert_eq!(from_storage(&storage, size_of::<libc::sockaddr_storage>()), None);
    }
}
