//! NFS exports anyone may mount (`/etc/exports`, `/etc/exports.d/*.exports`):
//! to `*`, to no client named (which exports to everyone), or to a
//! network as wide as a /8. NFS trusts the client's word for who the user
//! is, so such an export is as open as a guest share.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::firewall::Firewall;
use super::sockets::Listener;
use super::{lower, UNCHECKED};
use crate::{CheckText, Finding, Severity, Words};

pub const EXPORTS: &str = "/etc/exports";
const NFS_PORT: u16 = 2049;
/// IPv4 networks this wide or wider count as everyone.
const WIDEST_V4: u8 = 8;

pub const EXPORT_ALL: CheckText = CheckText {
    id: "nfs.export_all",
    en: Words {
        title: "An NFS export is open to everyone",
        why: "Any machine can mount it and act as any user it claims to be; if writable, ransomware anywhere on the network can encrypt it.",
        fix: "Name the clients that need {target} in /etc/exports (`/srv/x 10.0.0.5(rw)`, never `*`), \
              then run `exportfs -ra`.",
    },
    ja: Words {
        title: "誰でもマウントできる NFS エクスポート",
        why: "どのマシンからでもマウントでき、名乗ったユーザーとして扱われる。書き込めるなら、ネットワーク上のどこのランサムウェアでも暗号化できる。",
        fix: "/etc/exports で {target} を使うクライアントだけを指定し(`/srv/x 10.0.0.5(rw)`、`*` は使わない)、`exportfs -ra` を実行する。",
    },
};

/// One export line's client that means everyone: where, what, how.
struct Open {
    origin: String,
    path: String,
    client: String,
    writable: bool,
}

/// The most of an exports file read: a real one is a few lines.
const MAX_EXPORTS: u64 = 1 << 20;

/// An exports file's text: never blocking on a FIFO put in its place, and
/// bounded. A link is followed, as the NFS server follows it.
fn read_exports(path: &Path) -> io::Result<String> {
    let file = mamori_userfile::open_regular(path, mamori_userfile::Follow::MagicLink)?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, MAX_EXPORTS), &mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The findings for the exports file at `exports` and those in `EXPORTS.d`.
pub fn check(exports: &Path, listeners: &[Listener], firewall: &Firewall) -> Vec<Finding> {
    let mut files = vec![exports.to_path_buf()];
    let dir = PathBuf::from(format!("{}.d", exports.display()));
    if let Ok(entries) = fs::read_dir(&dir) {
        let mut more: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "exports")).collect();
        more.sort();
        files.extend(more);
    }
    let nfsd: Vec<&Listener> = listeners.iter().filter(|l| l.port == NFS_PORT).collect();
    let verdict =
        nfsd.iter().map(|l| firewall.verdict(NFS_PORT, l.takes_ipv4(), l.takes_ipv6())).max_by_key(|v| !v.shields());
    let serving = match (&verdict, nfsd.first()) {
        (Some(v), Some(l)) => format!("{}; {v}", l.evidence()),
        _ => "no NFS server listens now".to_owned(),
    };
    let mut found = Vec::new();
    for file in files {
        let text = match read_exports(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                found.push(Finding::new(&UNCHECKED, Severity::Low, file.display().to_string(), e.to_string()));
                continue;
            }
        };
        for open in open_exports(&text, &file.display().to_string()) {
            let base = if open.writable { Severity::High } else { Severity::Medium };
            let severity = match &verdict {
                Some(v) if v.shields() => lower(base),
                Some(_) => base,
                // Mountable the moment the server starts.
                None => lower(lower(base)),
            };
            let detail = format!("{}: {} {}; {serving}", open.origin, open.path, open.client);
            found.push(Finding::new(&EXPORT_ALL, severity, format!("nfs export {}", open.path), detail));
        }
    }
    found
}

fn open_exports(text: &str, name: &str) -> Vec<Open> {
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, first)) = lines.next() {
        // A line ending in a backslash goes on on the next.
        let mut line = first.split('#').next().unwrap_or("").to_owned();
        while line.ends_with('\\') {
            line.pop();
            match lines.next() {
                Some((_, more)) => line.push_str(more.split('#').next().unwrap_or("")),
                None => break,
            }
        }
        let Some((path, clients)) = split_path(line.trim()) else { continue };
        let clients: Vec<&str> = clients.split_whitespace().filter(|c| !c.starts_with('-')).collect();
        let origin = format!("{name}:{}", n + 1);
        if clients.is_empty() {
            found.push(Open { origin, path, client: "(no client: everyone)".into(), writable: false });
            continue;
        }
        for client in clients {
            let (host, opts) = client.split_once('(').unwrap_or((client, ""));
            if everyone(host) {
                let writable = opts.trim_end_matches(')').split(',').any(|o| o == "rw");
                found.push(Open { origin: origin.clone(), path: path.clone(), client: client.to_owned(), writable });
            }
        }
    }
    found
}

/// The exported path (possibly quoted) and the rest of the line.
fn split_path(line: &str) -> Option<(String, &str)> {
    if let Some(quoted) = line.strip_prefix('"') {
        let (path, rest) = quoted.split_once('"')?;
        return Some((path.to_owned(), rest));
    }
    let (path, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    (!path.is_empty()).then(|| (path.to_owned(), rest))
}

fn everyone(host: &str) -> bool {
    if host.is_empty() || host == "*" {
        return true;
    }
    let Some((addr, len)) = host.split_once('/') else { return false };
    let bits = match len.parse::<std::net::Ipv4Addr>() {
        Ok(mask) => u32::from(mask).leading_ones() as u8,
        Err(_) => len.parse().unwrap_or(u8::MAX),
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= WIDEST_V4,
        Ok(std::net::IpAddr::V6(_)) => bits == 0,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORTS_FILE: &str = "# /etc/exports: the access control list for filesystems which may be exported
/srv/projects    10.0.0.5(rw,sync) *(rw,no_root_squash)
/srv/public      (ro)
\"/srv/with space\" 192.168.0.0/255.0.0.0(rw) \\
                 10.1.0.0/16(rw)
/srv/private     10.0.0.0/24(rw) @admins(rw) *.example.com(ro)
/srv/bare
";

    #[test]
    fn exports_to_everyone_are_found() {
        let found: Vec<(String, String, String, bool)> = open_exports(EXPORTS_FILE, "/etc/exports")
            .into_iter()
            .map(|o| (o.origin, o.path, o.client, o.writable))
            .collect();
        let expect = [
            ("/etc/exports:2", "/srv/projects", "*(rw,no_root_squash)", true),
            ("/etc/exports:3", "/srv/public", "(ro)", false),
            ("/etc/exports:4", "/srv/with space", "192.168.0.0/255.0.0.0(rw)", true),
            ("/etc/exports:7", "/srv/bare", "(no client: everyone)", false),
        ];
        let expect: Vec<(String, String, String, bool)> =
            expect.iter().map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d)).collect();
        assert_eq!(found, expect);
    }

    #[test]
    fn severity_follows_what_serves_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exports");
        fs::write(&file, "/srv/a *(rw)\n").unwrap();
        fs::create_dir(dir.path().join("exports.d")).unwrap();
        fs::write(dir.path().join("exports.d/b.exports"), "/srv/b *(ro)\n").unwrap();
        let fw = Firewall::from_json(r#"{"nftables": []}"#);
        let none = check(&file, &[], &fw);
        let sev: Vec<(String, Severity)> = none.iter().map(|f| (f.target.clone(), f.severity)).collect();
        assert_eq!(sev, [("nfs export /srv/a".into(), Severity::Low), ("nfs export /srv/b".into(), Severity::Info)]);
        let nfsd = Listener { addr: "0.0.0.0".parse().unwrap(), port: NFS_PORT, procs: vec![] };
        let served = check(&file, &[nfsd], &fw);
        assert_eq!(served[0].severity, Severity::High);
        assert!(served[0].detail.ends_with("/srv/a *(rw); 0.0.0.0:2049 (no process holds it: kernel or out of sight); firewall: exposed (no nftables input chain filters it)"), "{}", served[0].detail);
        assert!(check(&dir.path().join("none"), &[], &fw).is_empty());
    }

    #[test]
    fn a_fifo_or_a_huge_file_in_place_of_the_exports_is_read_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exports");
        use rustix::fs::{mknodat, FileType, Mode, CWD};
        mknodat(CWD, &file, FileType::Fifo, Mode::from(0o600), 0).unwrap();
        let fw = Firewall::from_json(r#"{"nftables": []}"#);
        let found = check(&file, &[], &fw);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].check, UNCHECKED.id);
        assert!(found[0].detail.contains("not a regular file"), "{}", found[0].detail);
        fs::remove_file(&file).unwrap();
        // An export to everyone past the first MiB is not read.
        let mut big = "# padding\n".repeat((MAX_EXPORTS as usize / 10) + 1);
        big.push_str("/srv/late *(rw)\n");
        fs::write(&file, big).unwrap();
        assert!(check(&file, &[], &fw).is_empty());
    }
}
