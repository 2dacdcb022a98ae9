//! The restore drill: a random sample of the newest snapshot's files,
//! restored into a private folder and verified, timed to estimate how long
//! restoring everything would take.
//!
//! The repository is hostile input (names, sizes, links): restic writes
//! only under the drill's folder, every restored file is opened beneath it
//! without following a link, and the live files are opened without
//! following one either.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rand::seq::SliceRandom;
use rand::RngExt;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::restic::{Node, Restic, Snapshot};
use crate::run::RunError;
use crate::{AuditConfig, CheckText, Finding, Severity, Words};

pub const DRILL: CheckText = CheckText {
    id: "backup.drill",
    en: Words {
        title: "Restore drill: a sample of files came back intact",
        why: "Only a restore proves a backup, and its speed tells how long getting everything back would take after an attack.",
        fix: "Nothing to fix. If restoring all of {target} would take longer than the business can wait, \
              plan a faster way back (a nearby copy, a faster link) before it is needed.",
    },
    ja: Words {
        title: "リストア訓練：抜き出したファイルは正しく戻りました",
        why: "バックアップが使えるかは実際に戻して初めてわかります。その速さから、攻撃後にすべてを戻すのにかかる時間も見積もれます。",
        fix: "対応は不要です。{target} からすべてを戻す見込み時間が業務で待てる時間より長ければ、\
              手元のコピーや速い回線など、早く戻す手段を前もって用意してください。",
    },
};

pub const DRILL_FAILED: CheckText = CheckText {
    id: "backup.drill_failed",
    en: Words {
        title: "Restore drill failed: files did not come back intact",
        why: "A backup that does not restore is found out after an attack, when it is the only way back.",
        fix: "Read the error for {target}, run `restic check --read-data` on it, fix the storage, and make a fresh \
              full backup into a new repository if data is damaged.",
    },
    ja: Words {
        title: "リストア訓練に失敗しました：ファイルが正しく戻りません",
        why: "戻せないバックアップは、攻撃を受けてそれしか頼れないときに初めて発覚します。",
        fix: "{target} のエラーを確認して restic check --read-data を実行し、保存先の不具合を直してください。\
              データが壊れていれば、新しいリポジトリに改めて全体をバックアップしてください。",
    },
};

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("listing the snapshot failed: {0}")]
    List(RunError),
    #[error("no private folder for the drill: {0}")]
    Folder(io::Error),
    #[error("restic restore failed: {0}")]
    Restore(RunError),
    #[error("{path}: not restored ({source})")]
    Missing { path: String, source: io::Error },
    #[error("{path}: restored {got} bytes, the snapshot holds {want}")]
    Size { path: String, got: u64, want: u64 },
    #[error("{path}: the restored bytes differ from the live file, which still has the snapshot's size and time")]
    Differs { path: String },
}

/// One file of the sample.
#[derive(Debug, Clone)]
struct Pick {
    /// Its path in the snapshot's tree.
    path: String,
    size: u64,
    mtime: Option<Timestamp>,
}

/// The drill of snapshot `snap` of `target`, as a finding either way.
/// `host` is this host's name: only its own snapshots are compared with
/// the live files.
pub fn drill(restic: &Restic, snap: &Snapshot, host: &str, cfg: &AuditConfig, target: &str) -> Finding {
    match run(restic, snap, host, cfg) {
        Ok(detail) => Finding::new(&DRILL, Severity::Info, target, detail),
        Err(e) => Finding::new(&DRILL_FAILED, Severity::High, target, format!("snapshot {}: {e}", snap.short_id)),
    }
}

fn run(restic: &Restic, snap: &Snapshot, host: &str, cfg: &AuditConfig) -> Result<String, DrillError> {
    let limit = Duration::from_secs(cfg.check_minutes.max(1) * 60);
    let budget = cfg.drill_mib.saturating_mul(1 << 20);
    let mut sampler = Sampler::new(cfg.drill_files, budget);
    restic.ls(&snap.id, limit, |node| sampler.offer(node)).map_err(DrillError::List)?;
    let picks = sampler.finish();
    if picks.is_empty() {
        return Ok(format!(
            "snapshot {}: no file fits the drill's limits (drill_files = {}, drill_mib = {}): nothing was restored",
            snap.short_id, cfg.drill_files, cfg.drill_mib
        ));
    }

    let folder = tempfile::Builder::new()
        .prefix("mamori-drill-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(DrillError::Folder)?;
    let paths: Vec<String> = picks.iter().map(|p| p.path.clone()).collect();
    let ran = restic.restore(&snap.id, folder.path(), &paths, limit).map_err(DrillError::Restore)?;
    let root = rustix::fs::open(folder.path(), OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| DrillError::Folder(e.into()))?;

    let own = snap.hostname == host;
    let mut compared = 0;
    for pick in &picks {
        let rel = pick.path.trim_start_matches('/');
        let mut restored = open_beneath(root.as_fd(), rel)
            .map_err(|source| DrillError::Missing { path: pick.path.clone(), source })?;
        let got = restored.metadata().map_err(|source| DrillError::Missing { path: pick.path.clone(), source })?.len();
        if got != pick.size {
            return Err(DrillError::Size { path: pick.path.clone(), got, want: pick.size });
        }
        let Some(mut live) = own.then(|| unchanged_live(snap, pick)).flatten() else { continue };
        if !same_bytes(&mut restored, &mut live, pick.size) {
            return Err(DrillError::Differs { path: pick.path.clone() });
        }
        compared += 1;
    }

    let bytes: u64 = picks.iter().map(|p| p.size).sum();
    let secs = ran.elapsed.as_secs_f64().max(0.001);
    let rate = bytes as f64 / secs;
    let estimate = match restic.total_size(&snap.id) {
        Ok(total) if rate > 0.0 => {
            format!("all of it ({}) would take {} at that rate", size_words(total), duration_words(total as f64 / rate))
        }
        Ok(total) => format!("all of it is {}; no rate from empty files", size_words(total)),
        Err(e) => format!("its total size is unknown ({e})"),
    };
    Ok(format!(
        "snapshot {}: restored {} ({}) in {secs:.1} s, {:.1} MiB/s (restic verified them); {estimate}; \
         {compared} matched the live file byte for byte",
        snap.short_id,
        super::counted(picks.len(), "file", "files"),
        size_words(bytes),
        rate / f64::from(1 << 20),
    ))
}

/// A uniform sample (reservoir) of at most `files` regular files of at most
/// `budget` bytes each, cut to `budget` bytes in all.
struct Sampler {
    files: usize,
    budget: u64,
    seen: u64,
    picks: Vec<Pick>,
}

impl Sampler {
    fn new(files: usize, budget: u64) -> Sampler {
        Sampler { files, budget, seen: 0, picks: Vec::new() }
    }

    fn offer(&mut self, node: Node) {
        if node.kind != "file" || node.size > self.budget || self.files == 0 {
            return;
        }
        let pick = Pick { path: node.path, size: node.size, mtime: node.mtime.parse().ok() };
        self.seen += 1;
        if self.picks.len() < self.files {
            self.picks.push(pick);
            return;
        }
        let slot = rand::rng().random_range(0..self.seen);
        if let Some(old) = usize::try_from(slot).ok().and_then(|i| self.picks.get_mut(i)) {
            *old = pick;
        }
    }

    fn finish(mut self) -> Vec<Pick> {
        self.picks.shuffle(&mut rand::rng());
        let mut left = self.budget;
        self.picks.retain(|p| match left.checked_sub(p.size) {
            Some(rest) => {
                left = rest;
                true
            }
            None => false,
        });
        self.picks
    }
}

/// The live file `pick` was backed up from, if it still has the snapshot's
/// size and modification time (its bytes must then be the snapshot's).
fn unchanged_live(snap: &Snapshot, pick: &Pick) -> Option<File> {
    let path = live_path(snap, &pick.path)?;
    let how = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    let file = File::from(rustix::fs::openat2(rustix::fs::CWD, &path, flags, Mode::empty(), how).ok()?);
    let st = rustix::fs::fstat(&file).ok()?;
    let mtime = Timestamp::new(st.st_mtime, i32::try_from(st.st_mtime_nsec).ok()?).ok()?;
    let regular = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
    (regular && u64::try_from(st.st_size).ok()? == pick.size && Some(mtime) == pick.mtime).then_some(file)
}

/// Where the file at `tree` (a path in the snapshot's tree) lived. restic
/// 0.14 roots the tree at each backed-up path's last name (`/srv/data` is
/// `/data`), later versions at the full path; a tree name two backed-up
/// paths share cannot be placed.
fn live_path(snap: &Snapshot, tree: &str) -> Option<PathBuf> {
    let tree = Path::new(tree);
    if snap.paths.iter().any(|p| tree.starts_with(p)) {
        return Some(tree.to_path_buf());
    }
    let mut parts = tree.strip_prefix("/").ok()?.components();
    let top = parts.next()?;
    let mut owners = snap.paths.iter().map(Path::new).filter(|p| p.file_name() == Some(top.as_os_str()));
    match (owners.next(), owners.next()) {
        (Some(owner), None) => Some(owner.join(parts.as_path())),
        _ => None,
    }
}

fn open_beneath(root: std::os::fd::BorrowedFd, rel: &str) -> io::Result<File> {
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    Ok(File::from(rustix::fs::openat2(root, rel, flags, Mode::empty(), how)?))
}

/// Whether the first `len` bytes of `a` and `b` are the same.
fn same_bytes(a: &mut File, b: &mut File, len: u64) -> bool {
    let (mut a, mut b) = (a.take(len), b.take(len));
    let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = match read_full(&mut a, &mut x) {
            Ok(n) => n,
            Err(_) => return false,
        };
        match read_full(&mut b, &mut y[..n.max(1)]) {
            Ok(m) if m == n && x[..n] == y[..n] => {}
            _ => return false,
        }
        if n < x.len() {
            return true;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn size_words(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_048_576 => format!("{:.1} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.1} GiB", b / 1_073_741_824.0),
    }
}

fn duration_words(secs: f64) -> String {
    let minutes = (secs / 60.0).ceil() as u64;
    match minutes {
        0 | 1 => "under a minute".into(),
        2..120 => format!("about {minutes} min"),
        _ => format!("about {} h {} min", minutes / 60, minutes % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(path: &str, kind: &str, size: u64) -> Node {
        Node { struct_type: "node".into(), kind: kind.into(), path: path.into(), size, mtime: String::new() }
    }

    #[test]
    fn the_sample_keeps_to_its_limits() {
        let mut s = Sampler::new(5, 100);
        for i in 0..1000 {
            s.offer(node(&format!("/d/{i}"), "file", 30));
        }
        s.offer(node("/d/big", "file", 101));
        s.offer(node("/d", "dir", 0));
        let picks = s.finish();
        assert_eq!(picks.len(), 3, "5 picked, cut to 100 bytes");
        assert!(picks.iter().all(|p| p.path.starts_with("/d/") && p.path != "/d/big"));
    }

    #[test]
    fn tree_paths_map_to_where_the_files_live() {
        let snap: Snapshot = serde_json::from_str(
            r#"{"time":"2024-01-01T00:00:00Z","hostname":"h","paths":["/srv/data","/home"],"id":"ab","short_id":"ab"}"#,
        )
        .unwrap();
        assert_eq!(live_path(&snap, "/data/x/y"), Some(PathBuf::from("/srv/data/x/y")));
        assert_eq!(live_path(&snap, "/home/u/f"), Some(PathBuf::from("/home/u/f")));
        assert_eq!(live_path(&snap, "/srv/data/z"), Some(PathBuf::from("/srv/data/z")));
        assert_eq!(live_path(&snap, "/other/z"), None);
    }

    #[test]
    fn bytes_are_compared_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        std::fs::write(&a, &data).unwrap();
        std::fs::write(&b, &data).unwrap();
        let mut other = data.clone();
        other[150_000] ^= 1;
        std::fs::write(&c, &other).unwrap();
        let open = |p: &Path| File::open(p).unwrap();
        assert!(same_bytes(&mut open(&a), &mut open(&b), 200_000));
        assert!(!same_bytes(&mut open(&a), &mut open(&c), 200_000));
        assert_eq!(size_words(3 << 20), "3.0 MiB");
        assert_eq!(duration_words(7300.0), "about 2 h 2 min");
    }
}
