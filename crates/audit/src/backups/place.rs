//! Where a repository lives, read from the string restic or borg opens it
//! by: the kind of storage and whether it is off this host (for 3-2-1), and
//! what the deletable probe can reach (a path, a REST server).

use std::path::{Path, PathBuf};

/// Where a repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A folder this host opens: its own disk or a network mount.
    Path(PathBuf),
    /// A REST server (restic's `rest:`): the URL without the `rest:`.
    Rest(String),
    /// Reached over SSH (restic's `sftp:`, borg's `ssh://` and `user@host:path`).
    Ssh { host: String },
    /// An object store (`s3:`, `b2:`, `azure:`, `gs:`, `swift:`).
    Cloud { scheme: String },
    /// Whatever an rclone remote names (`rclone:remote:path`).
    Rclone,
}

/// A kind of storage, as 3-2-1 counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    LocalDisk,
    NetworkMount,
    Rest,
    Ssh,
    Cloud,
    Rclone,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LocalDisk => "local disk",
            Kind::NetworkMount => "network mount",
            Kind::Rest => "REST server",
            Kind::Ssh => "SFTP/SSH",
            Kind::Cloud => "cloud storage",
            Kind::Rclone => "rclone remote",
        }
    }
}

const CLOUD: &[&str] = &["s3", "b2", "azure", "gs", "swift"];

impl Place {
    /// A restic repository string (`/srv/restic`, `local:…`, `rest:…`, `sftp:…`, `s3:…`).
    pub fn restic(repository: &str) -> Place {
        let (scheme, rest) = repository.split_once(':').unwrap_or(("", repository));
        match scheme {
            "rest" => Place::Rest(rest.to_owned()),
            "sftp" => Place::Ssh { host: ssh_host(rest.trim_start_matches("//")) },
            "rclone" => Place::Rclone,
            "local" => Place::Path(PathBuf::from(rest)),
            s if CLOUD.contains(&s) => Place::Cloud { scheme: s.to_owned() },
            _ => Place::Path(PathBuf::from(repository)),
        }
    }

    /// A borg repository string (`/srv/borg`, `file:///…`, `ssh://user@host:port/…`, `user@host:path`).
    pub fn borg(repository: &str) -> Place {
        if let Some(path) = repository.strip_prefix("file://") {
            return Place::Path(PathBuf::from(path));
        }
        if let Some(rest) = repository.strip_prefix("ssh://") {
            return Place::Ssh { host: ssh_host(rest) };
        }
        match repository.split_once(':') {
            // scp-like `host:path`: a colon before any slash.
            Some((host, _)) if !host.contains('/') && !host.is_empty() => Place::Ssh { host: ssh_host(repository) },
            _ => Place::Path(PathBuf::from(repository)),
        }
    }

    /// The kind of storage, and whether it is off this host. A server on
    /// loopback is this host; an rclone remote is taken to be off it.
    pub fn kind(&self) -> (Kind, bool) {
        match self {
            Place::Path(path) => match mount_type(path) {
                Some(fs) if is_network_fs(&fs) => (Kind::NetworkMount, true),
                _ => (Kind::LocalDisk, false),
            },
            Place::Rest(url) => (Kind::Rest, !is_loopback(&url_host(url))),
            Place::Ssh { host } => (Kind::Ssh, !is_loopback(host)),
            Place::Cloud { .. } => (Kind::Cloud, true),
            Place::Rclone => (Kind::Rclone, true),
        }
    }
}

/// The host of `[user@]host[:port][/path]` or `[user@]host:path`.
fn ssh_host(s: &str) -> String {
    let s = s.split('/').next().unwrap_or(s);
    let s = s.rsplit_once('@').map_or(s, |(_, h)| h);
    host_of_authority(s)
}

/// The host of `scheme://[user[:pw]@]host[:port]/…`.
pub fn url_host(url: &str) -> String {
    let authority = url.split_once("://").map_or(url, |(_, r)| r).split('/').next().unwrap_or("");
    host_of_authority(authority.rsplit_once('@').map_or(authority, |(_, h)| h))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` → the host.
fn host_of_authority(s: &str) -> String {
    if let Some(v6) = s.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_owned();
    }
    s.split(':').next().unwrap_or(s).to_owned()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A repository string as shown in findings: a password in a URL's user
/// information is left out.
pub fn shown(repository: &str) -> String {
    let Some((head, rest)) = repository.split_once("://") else { return repository.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or("");
            format!("{head}://{user}@{host}{}", &rest[authority_end..])
        }
        None => repository.to_owned(),
    }
}

const NETWORK_FS: &[&str] =
    &["nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "afs", "lustre", "gpfs"];
const NETWORK_FUSE: &[&str] = &["sshfs", "rclone", "s3fs", "gcsfuse", "davfs", "glusterfs", "cephfs"];

fn is_network_fs(fs: &str) -> bool {
    NETWORK_FS.contains(&fs) || fs.strip_prefix("fuse.").is_some_and(|f| NETWORK_FUSE.contains(&f))
}

/// The file system type of the mount holding `path` (matched by device
/// number in this namespace's mount table).
fn mount_type(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let wanted = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().find_map(|line| {
        let mut fields = line.split(' ');
        if fields.nth(2)? != wanted {
            return None;
        }
        let (_, after) = line.split_once(" - ")?;
        after.split(' ').next().map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_strings_name_their_place() {
        assert_eq!(Place::restic("/srv/restic"), Place::Path("/srv/restic".into()));
        assert_eq!(Place::restic("local:/srv/r"), Place::Path("/srv/r".into()));
        assert_eq!(Place::restic("rest:http://u:p@[::1]:8000/r"), Place::Rest("http://u:p@[::1]:8000/r".into()));
        assert_eq!(Place::restic("sftp:backup@nas:/r"), Place::Ssh { host: "nas".into() });
        assert_eq!(Place::restic("sftp://backup@nas:2222//r"), Place::Ssh { host: "nas".into() });
        assert_eq!(Place::restic("s3:s3.amazonaws.com/bucket"), Place::Cloud { scheme: "s3".into() });
        assert_eq!(Place::borg("/srv/borg"), Place::Path("/srv/borg".into()));
        assert_eq!(Place::borg("ssh://b@nas:22/./repo"), Place::Ssh { host: "nas".into() });
        assert_eq!(Place::borg("b@nas:repo"), Place::Ssh { host: "nas".into() });
        assert_eq!(Place::borg("./rel:odd/path"), Place::Path("./rel:odd/path".into()));
    }

    #[test]
    fn loopback_servers_are_this_host() {
        assert_eq!(Place::restic("rest:http://127.0.0.1:8000/").kind(), (Kind::Rest, false));
        assert_eq!(Place::restic("rest:https://u:p@backup.example:8000/").kind(), (Kind::Rest, true));
        assert_eq!(Place::restic("rest:http://[::1]:8000/").kind(), (Kind::Rest, false));
        assert_eq!(Place::restic("sftp:localhost:/r").kind(), (Kind::Ssh, false));
        assert!(!Place::restic("/").kind().1);
    }

    #[test]
    fn passwords_in_urls_are_not_shown() {
        assert_eq!(shown("rest:https://u:secret@h:8000/r"), "rest:https://u@h:8000/r");
        assert_eq!(shown("rest:http://h/r"), "rest:http://h/r");
        assert_eq!(shown("/srv/restic"), "/srv/restic");
    }
}
