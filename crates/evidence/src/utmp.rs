//! Logged-in users from the utmp file, read with glibc's record layout
//! (`struct utmpx`, as the `libc` crate declares it for this target).

use std::ffi::CStr;
use std::mem::size_of;

use serde::{Deserialize, Serialize};

use crate::time::Stamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub user: String,
    /// The terminal (`pts/0`, `tty1`).
    pub line: String,
    /// Where the session came from (an address for ssh), empty for local.
    pub host: String,
    pub pid: i32,
    pub since: Stamp,
}

/// The `USER_PROCESS` records of a utmp file; a trailing partial record is
/// ignored.
pub(crate) fn parse(bytes: &[u8]) -> Vec<Login> {
    bytes
        .chunks_exact(size_of::<libc::utmpx>())
        .filter_map(|rec| {
            // SAFETY: `rec` holds exactly size_of::<utmpx>() bytes, and utmpx
            // is plain integers and byte arrays, valid for any bit pattern;
            // read_unaligned because the buffer has no particular alignment.
            let u: libc::utmpx = unsafe { std::ptr::read_unaligned(rec.as_ptr().cast()) };
            if u.ut_type != libc::USER_PROCESS {
                return None;
            }
            let secs = u64::try_from(i64::from(u.ut_tv.tv_sec)).unwrap_or(0);
            let usecs = u64::try_from(i64::from(u.ut_tv.tv_usec)).unwrap_or(0);
            Some(Login {
                user: text(&u.ut_user),
                line: text(&u.ut_line),
                host: text(&u.ut_host),
                pid: u.ut_pid,
                since: Stamp::from_unix_ns(secs * 1_000_000_000 + usecs * 1000),
            })
        })
        .collect()
}

/// A fixed-size field, NUL-terminated only when shorter than its array.
fn text(field: &[libc::c_char]) -> String {
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(field.as_ptr().cast(), field.len()) };
    match CStr::from_bytes_until_nul(bytes) {
        Ok(c) => c.to_string_lossy().into_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: libc::c_short, user: &str, line: &str, host: &str, pid: i32, secs: i32) -> Vec<u8> {
        // SAFETY: an all-zero utmpx is a valid (empty) record.
        let mut u: libc::utmpx = unsafe { std::mem::zeroed() };
        u.ut_type = kind;
        u.ut_pid = pid;
        for (dst, src) in [(&mut u.ut_user[..], user), (&mut u.ut_line[..], line), (&mut u.ut_host[..], host)] {
            for (d, s) in dst.iter_mut().zip(src.bytes()) {
                *d = s as libc::c_char;
            }
        }
        // i32 here, a wider type on other targets.
        u.ut_tv.tv_sec = secs as _;
        // SAFETY: reading the bytes of a plain struct.
        unsafe { std::slice::from_raw_parts((&u as *const libc::utmpx).cast::<u8>(), size_of::<libc::utmpx>()) }
            .to_vec()
    }

    #[test]
    fn user_records_only() {
        let mut file = record(libc::BOOT_TIME, "", "~", "6.18", 0, 1_700_000_000);
        file.extend(record(libc::USER_PROCESS, "alice", "pts/0", "192.0.2.7", 4242, 1_700_000_100));
        file.extend(record(libc::DEAD_PROCESS, "bob", "pts/1", "", 4343, 1_700_000_200));
        // A full-width user name has no terminating NUL.
        file.extend(record(libc::USER_PROCESS, &"x".repeat(32), "tty1", "", 1, 1_700_000_300));
        file.extend([0u8; 10]);
        let logins = parse(&file);
        assert_eq!(logins.len(), 2);
        assert_eq!(
            (logins[0].user.as_str(), logins[0].line.as_str(), logins[0].host.as_str()),
            ("alice", "pts/0", "192.0.2.7")
        );
        assert_eq!((logins[0].pid, logins[0].since.unix_ns), (4242, 1_700_000_100_000_000_000));
        assert_eq!(logins[1].user, "x".repeat(32));
    }
}
