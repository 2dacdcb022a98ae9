//! Can this host destroy its own backups? Proven with probes that cannot
//! harm: a uniquely named file made and removed in a repository folder, a
//! `DELETE` of a snapshot id no repository holds.

use std::io;
use std::path::Path;
use std::time::Duration;

use mamori_http::ureq;
use rand::RngExt;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::place::Place;
use crate::{CheckText, Finding, Severity, Words};

pub const DELETABLE: CheckText = CheckText {
    id: "backup.deletable",
    en: Words {
        title: "This host can delete its own backups",
        why: "Ransomware that gets root here deletes or encrypts the backups first, so that paying is the only way back.",
        fix: "Make {target} append-only for this host: serve it from another machine with rest-server --append-only \
              (or rclone serve restic --append-only), or for borg limit this host's key to `borg serve --append-only`; \
              prune from a separate admin machine.",
    },
    ja: Words {
        title: "このサーバーから自分のバックアップを削除できます",
        why: "ここで root 権限を得たランサムウェアは、まずバックアップを消すか暗号化して、身代金を払う以外に戻す手段をなくします。",
        fix: "{target} をこのサーバーからは追記のみ（append-only）にしてください。別のマシンで rest-server --append-only \
              （または rclone serve restic --append-only）を使って提供するか、borg ならこのサーバーの鍵を \
              `borg serve --append-only` に限定します。古いバックアップの削除（prune）は別の管理用マシンから行います。",
    },
};

pub const DELETABLE_UNKNOWN: CheckText = CheckText {
    id: "backup.deletable_unknown",
    en: Words {
        title: "Cannot tell whether this host can delete its backups",
        why: "If the credentials on this host allow deletes, ransomware running here deletes the backups too; \
              that is set on the storage side, which this host cannot see.",
        fix: "Make sure the credentials {target} is opened with cannot delete or overwrite (an S3 key without \
              DeleteObject and with object lock, an SFTP account restricted by the server, `borg serve --append-only` \
              in authorized_keys), or serve it with rest-server --append-only.",
    },
    ja: Words {
        title: "このサーバーからバックアップを削除できるか確認できません",
        why: "このサーバーにある認証情報で削除できるなら、ここに入り込んだランサムウェアもバックアップを消せます。\
              削除できるかどうかは保存先の設定で決まり、このサーバーからは見えません。",
        fix:
            "{target} を開く認証情報では削除や上書きができないことを確かめてください（S3 なら DeleteObject 権限を与えず\
              オブジェクトロックを使う、SFTP ならサーバー側で制限する、borg なら authorized_keys で \
              `borg serve --append-only` に限定する）。または rest-server --append-only で提供してください。",
    },
};

/// The most a REST server may take to answer the probe.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this host can delete the repository at `place`: a finding if it
/// can, or if that cannot be proven from here.
pub fn judge(target: &str, place: &Place) -> Option<Finding> {
    let unknown = |why: String| Some(Finding::new(&DELETABLE_UNKNOWN, Severity::Medium, target, why));
    match place {
        Place::Path(dir) => match probe_folder(dir) {
            Ok(true) => Some(Finding::new(
                &DELETABLE,
                Severity::High,
                target,
                format!("{} is writable from this host: a probe file was created and removed in it", dir.display()),
            )),
            Ok(false) => None,
            Err(e) => unknown(format!("the write probe in {} failed: {e}", dir.display())),
        },
        Place::Rest(url) => match probe_rest(url) {
            Ok(403) => None,
            Ok(status @ (404 | 200..=299)) => Some(Finding::new(
                &DELETABLE,
                Severity::High,
                target,
                format!(
                    "the REST server answered {status} to a DELETE of a snapshot that does not exist: \
                     it accepts deletes (not --append-only)"
                ),
            )),
            Ok(status) => {
                unknown(format!("the REST server answered {status} to a DELETE probe (403 would mean append-only)"))
            }
            Err(e) => unknown(format!("the DELETE probe failed: {e}")),
        },
        Place::Ssh { host } => unknown(format!(
            "reached over SSH ({host}): whether deletes are refused is set on {host} (a restricted account, \
             `borg serve --append-only`), which this host cannot see"
        )),
        Place::Cloud { scheme } => unknown(format!(
            "{scheme} object storage: whether this host's key can delete (and whether object lock keeps old \
             versions) is set in the storage's policies, which this host cannot see"
        )),
        Place::Rclone => unknown("an rclone remote: whether it refuses deletes depends on what it names".into()),
    }
}

/// Creates and removes a uniquely named file in `dir`: true if that worked.
/// A read-only mount, or a folder root may not write (an immutable one), is false.
fn probe_folder(dir: &Path) -> io::Result<bool> {
    let folder = rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let name = format!(".mamori-probe-{}", random_hex(16));
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(&folder, &name, flags, Mode::RUSR | Mode::WUSR) {
        Ok(file) => {
            drop(file);
            rustix::fs::unlinkat(&folder, &name, rustix::fs::AtFlags::empty())?;
            Ok(true)
        }
        Err(Errno::ROFS | Errno::ACCESS | Errno::PERM) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// DELETEs a random snapshot id no repository holds, as restic would
/// delete a snapshot: rest-server and `rclone serve restic` answer 403
/// when append-only, 404 when they would have deleted it.
fn probe_rest(url: &str) -> Result<u16, String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (user_info, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let probe = format!("{scheme}://{host}{}/snapshots/{}", path.trim_end_matches('/'), random_hex(32));
    let roots = if scheme == "https" {
        mamori_http::roots(&rustls_native_certs::load_native_certs().certs)
    } else {
        Vec::new()
    };
    let agent = mamori_http::agent(roots, HTTP_TIMEOUT);
    let mut request = agent.delete(&probe);
    if let Some(user_info) = user_info {
        // As restic sends them: the URL's user and password, percent-decoded.
        let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
        let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
        request = request.header("Authorization", mamori_http::basic_auth(&decode(user), &decode(password)));
    }
    match request.call() {
        Ok(response) => Ok(response.status().as_u16()),
        Err(ureq::Error::Timeout(what)) => Err(format!("no answer in time ({what})")),
        Err(e) => Err(e.to_string()),
    }
}

/// `bytes` random bytes in hex: names no one has made.
pub fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_folder_is_deletable_and_the_probe_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let f = judge("repo", &Place::Path(dir.path().to_path_buf())).unwrap();
        assert_eq!((f.check.as_str(), f.severity), ("backup.deletable", Severity::High));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn servers_that_cannot_be_probed_say_why() {
        let f = judge("s3:s3.amazonaws.com/b", &Place::Cloud { scheme: "s3".into() }).unwrap();
        assert_eq!((f.check.as_str(), f.severity), ("backup.deletable_unknown", Severity::Medium));
        // Nothing listens on port 9 of loopback: refused, so unknown.
        let f = judge("rest", &Place::Rest("http://127.0.0.1:9/".into())).unwrap();
        assert_eq!(f.check, "backup.deletable_unknown");
        assert!(f.detail.contains("DELETE probe failed"), "{}", f.detail);
    }
}
