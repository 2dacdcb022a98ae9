//! `host.json`: which machine, which boot, who was logged in, and when.

use std::ffi::CStr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::probe::{read_noted, Notes};
use crate::time::Stamp;
use crate::utmp::{self, Login};

const UTMP: &str = "/var/run/utmp";
/// Ten thousand sessions; a larger login record is cut, and the cut noted.
const UTMP_CAP: u64 = 10_000 * std::mem::size_of::<libc::utmpx>() as u64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub hostname: Option<String>,
    pub kernel: Option<Kernel>,
    pub uptime_secs: Option<f64>,
    /// Names this boot: pids and start ticks only mean something within it.
    pub boot_id: Option<String>,
    /// `None` when the login record could not be read (many containers and
    /// minimal systems keep none).
    pub users: Option<Vec<Login>>,
    pub collected: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kernel {
    pub sysname: String,
    pub release: String,
    pub version: String,
    pub machine: String,
}

pub(crate) fn collect(notes: &mut Notes) -> Host {
    let text = |p: &str, notes: &mut Notes| {
        read_noted(notes, None, Path::new(p), 4096).map(|b| String::from_utf8_lossy(&b).trim().to_owned())
    };
    let kernel = uname();
    if kernel.is_none() {
        notes.add(None, "uname", std::io::Error::last_os_error());
    }
    let users = read_noted(notes, None, Path::new(UTMP), UTMP_CAP).map(|bytes| utmp::parse(&bytes));
    Host {
        hostname: kernel.as_ref().map(|k| k.1.clone()),
        kernel: kernel.map(|k| k.0),
        uptime_secs: text("/proc/uptime", notes).and_then(|t| t.split_whitespace().next()?.parse().ok()),
        boot_id: text("/proc/sys/kernel/random/boot_id", notes),
        users,
        collected: Stamp::now(),
    }
}

fn uname() -> Option<(Kernel, String)> {
    // SAFETY: utsname is plain bytes; uname fills it and NUL-terminates
    // every field.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    // SAFETY: each field is NUL-terminated within its array (see above).
    let s = |f: &[libc::c_char]| unsafe { CStr::from_ptr(f.as_ptr()) }.to_string_lossy().into_owned();
    Some((
        Kernel { sysname: s(&u.sysname), release: s(&u.release), version: s(&u.version), machine: s(&u.machine) },
        s(&u.nodename),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn this_host() {
        let mut notes = Notes::default();
        let h = collect(&mut notes);
        let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        assert_eq!(h.boot_id.as_deref(), Some(boot.trim()));
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(h.kernel.unwrap().release, release.trim());
        let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(h.hostname.as_deref(), Some(hostname.trim()));
        assert!(h.uptime_secs.unwrap() > 0.0);
        // No utmp on this machine is fine, but then it must be noted.
        assert_eq!(h.users.is_none(), notes.0.iter().any(|n| n.what == UTMP));
    }
}
