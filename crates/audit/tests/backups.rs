//! The backup checks against real restic, borg and rclone repositories in
//! temporary folders (and a REST server on loopback).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mamori_audit::backups::backups;
use mamori_audit::{AuditConfig, BorgRepo, Finding, ResticRepo, Severity};
use tempfile::TempDir;

/// Most seconds one setup command (init, backup, create) may take.
const TOOL_SECONDS: &str = "120";

/// A folder with live data, a password file, and room for repositories.
struct Lab {
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab { dir: tempfile::tempdir().unwrap() };
        std::fs::write(lab.path("password"), "correct horse\n").unwrap();
        std::fs::write(lab.path("wrong"), "battery staple\n").unwrap();
        std::fs::create_dir(lab.path("data")).unwrap();
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `size` bytes that do not compress or deduplicate into data/`name`.
    fn file(&self, name: &str, size: usize) {
        let mut bytes = vec![0u8; size];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (name.len() as u64) ^ (size as u64);
        for b in &mut bytes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(self.path("data").join(name), bytes).unwrap();
    }

    fn restic(&self, repository: &str, args: &[&str]) {
        let password = self.path("password");
        tool("restic", &[&["-r", repository, "--password-file", password.to_str().unwrap(), "-q"], args].concat(), &[]);
    }

    fn restic_repo(&self, repository: &str, backup_args: &[&str]) -> ResticRepo {
        self.restic(repository, &["init"]);
        let data = self.path("data");
        self.restic(repository, &[&["backup", data.to_str().unwrap()], backup_args].concat());
        ResticRepo { repository: repository.into(), password_file: self.path("password"), rpo_hours: 24 }
    }

    fn borg_repo(&self, name: &str, init_args: &[&str], create_args: &[&str]) -> BorgRepo {
        let repo = self.path(name);
        let repo = repo.to_str().unwrap();
        let env = [("BORG_PASSPHRASE", "correct horse")];
        tool("borg", &[&["init", "-e", "repokey"], init_args, &[repo]].concat(), &env);
        let archive = format!("{repo}::first");
        let data = self.path("data");
        tool("borg", &[&["create"], create_args, &[&archive, data.to_str().unwrap()]].concat(), &env);
        BorgRepo { repository: repo.into(), password_file: Some(self.path("password")), rpo_hours: 24 }
    }

    fn audit(&self, cfg: &AuditConfig) -> Vec<Finding> {
        let found = backups(cfg, &self.path("state"));
        for f in &found {
            eprintln!("{} {} {}: {}", f.severity.as_str(), f.check, f.target, f.detail);
        }
        found
    }
}

/// Runs a setup command, bounded, and insists that it succeeds.
fn tool(program: &str, args: &[&str], env: &[(&str, &str)]) {
    let out = Command::new("timeout")
        .args([TOOL_SECONDS, program])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn restic_cfg(repos: Vec<ResticRepo>) -> AuditConfig {
    AuditConfig { restic: repos, ..AuditConfig::default() }
}

fn has(found: &[Finding], check: &str, severity: Severity) -> bool {
    found.iter().any(|f| f.check == check && f.severity == severity)
}

fn find<'f>(found: &'f [Finding], check: &str) -> Option<&'f Finding> {
    found.iter().find(|f| f.check == check)
}

/// `rclone serve restic` on a free loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path, append_only: bool) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new("rclone");
        cmd.args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")]);
        if append_only {
            cmd.arg("--append-only");
        }
        let child = cmd.arg(dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rclone did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self) -> String {
        format!("rest:http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_old_snapshot_in_a_local_folder_is_stale_and_deletable() {
    let lab = Lab::new();
    lab.file("report.docx", 50_000);
    let repo = lab.path("repo");
    let cfg = restic_cfg(vec![lab.restic_repo(repo.to_str().unwrap(), &["--time", "2020-01-01 00:00:00"])]);
    let found = lab.audit(&cfg);
    let stale = find(&found, "backup.stale").expect("stale");
    assert_eq!(stale.severity, Severity::High);
    assert!(stale.detail.contains("2020-01-01 00:00 UTC"), "{}", stale.detail);
    assert!(has(&found, "backup.deletable", Severity::High));
    assert!(has(&found, "backup.drill", Severity::Info), "an old snapshot still restores");
    let leftovers: Vec<_> = std::fs::read_dir(&repo).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().starts_with(".mamori-probe")), "{leftovers:?}");
    let rule = find(&found, "backup.321").expect("one local backup is not 3-2-1");
    assert!(rule.detail.contains("0 backups within the objective"), "{}", rule.detail);
}

#[test]
fn an_append_only_rest_server_is_not_deletable_and_its_drill_passes() {
    let lab = Lab::new();
    for i in 0..30 {
        lab.file(&format!("doc-{i}.xlsx"), 40_000 + i * 1000);
    }
    lab.file("photo.jpg", 3 << 20);
    let served = lab.path("served");
    std::fs::create_dir(&served).unwrap();
    let server = Server::start(&served, true);
    let cfg = restic_cfg(vec![lab.restic_repo(&server.url(), &[])]);
    let found = lab.audit(&cfg);
    for check in ["backup.deletable", "backup.deletable_unknown", "backup.stale", "backup.check_failed"] {
        assert!(find(&found, check).is_none(), "{check}");
    }
    let drill = find(&found, "backup.drill").expect("a drill");
    assert!(drill.detail.contains("MiB/s"), "{}", drill.detail);
    assert!(drill.detail.contains("restored 20 files"), "{}", drill.detail);
    assert!(drill.detail.contains("20 matched the live file"), "{}", drill.detail);
    let rule = find(&found, "backup.321").expect("a server on loopback is this host");
    assert!(rule.detail.contains("none off this host"), "{}", rule.detail);
    drop(server);

    // The same repository served without --append-only accepts deletes.
    let server = Server::start(&served, false);
    let cfg = restic_cfg(vec![ResticRepo { repository: server.url(), ..cfg.restic[0].clone() }]);
    let found = lab.audit(&cfg);
    let deletable = find(&found, "backup.deletable").expect("deletable");
    assert!(deletable.detail.contains("404"), "{}", deletable.detail);
}

#[test]
fn a_corrupted_pack_fails_the_check_and_the_drill() {
    let lab = Lab::new();
    lab.file("disk.img", 4 << 20);
    let repo = lab.path("repo");
    let mut cfg = restic_cfg(vec![lab.restic_repo(repo.to_str().unwrap(), &[])]);
    cfg.check_subsets = 1;
    let biggest = walk(&repo.join("data")).into_iter().max_by_key(|p| p.metadata().unwrap().len()).unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    for b in &mut bytes[1000..1100] {
        *b ^= 0xff;
    }
    std::fs::write(&biggest, bytes).unwrap();

    let found = lab.audit(&cfg);
    let check = find(&found, "backup.check_failed").expect("check failed");
    assert_eq!(check.severity, Severity::High);
    assert!(check.detail.starts_with("data subset 1/1: "), "{}", check.detail);
    assert!(check.detail.contains("does not match") || check.detail.contains("contains errors"), "{}", check.detail);
    let drill = find(&found, "backup.drill_failed").expect("drill failed");
    assert_eq!(drill.severity, Severity::High);
    assert!(drill.detail.contains("restic restore failed"), "{}", drill.detail);
}

#[test]
fn a_wrong_password_or_a_missing_repository_is_unreachable() {
    let lab = Lab::new();
    lab.file("a.txt", 100);
    let repo = lab.path("repo");
    let mut good = lab.restic_repo(repo.to_str().unwrap(), &[]);
    good.password_file = lab.path("wrong");
    let missing = ResticRepo { repository: lab.path("nowhere").to_str().unwrap().into(), ..good.clone() };
    let found = lab.audit(&restic_cfg(vec![good, missing]));
    let unreachable: Vec<_> = found.iter().filter(|f| f.check == "backup.unreachable").collect();
    assert_eq!(unreachable.len(), 2, "{found:?}");
    assert!(unreachable.iter().all(|f| f.severity == Severity::High));
    assert!(unreachable[0].detail.contains("wrong password"), "{}", unreachable[0].detail);
    assert!(!found.iter().any(|f| f.check == "backup.drill" || f.check == "backup.stale"));
}

#[test]
fn each_run_checks_the_next_subset_and_a_damaged_state_file_starts_over() {
    let lab = Lab::new();
    lab.file("a.bin", 200_000);
    let repo = lab.path("repo");
    let mut cfg = restic_cfg(vec![lab.restic_repo(repo.to_str().unwrap(), &[])]);
    cfg.check_subsets = 5;
    cfg.drill_files = 0;
    let state_file = lab.path("state").join("backup-check.json");
    let next = || -> u64 {
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
        saved["next"][repo.to_str().unwrap()].as_u64().unwrap()
    };

    assert!(find(&lab.audit(&cfg), "backup.check_failed").is_none());
    assert_eq!(next(), 2, "the first run read subset 1");
    lab.audit(&cfg);
    assert_eq!(next(), 3, "the second read subset 2");

    std::fs::write(&state_file, b"\x00{not json").unwrap();
    let found = lab.audit(&cfg);
    assert!(find(&found, "backup.state").is_none() && find(&found, "backup.check_failed").is_none());
    assert_eq!(next(), 2, "a damaged file starts at subset 1");
}

#[test]
fn borg_old_archives_are_stale_and_append_only_repositories_are_not_deletable() {
    let lab = Lab::new();
    lab.file("ledger.xlsx", 30_000);
    let old = lab.borg_repo("old", &[], &["--timestamp", "2020-01-01T00:00:00"]);
    let kept = lab.borg_repo("kept", &["--append-only"], &[]);
    let wrong = BorgRepo { password_file: Some(lab.path("wrong")), ..kept.clone() };
    let cfg = AuditConfig { borg: vec![old, kept, wrong], ..AuditConfig::default() };
    let found = lab.audit(&cfg);
    let about = |name: &str| -> Vec<&Finding> { found.iter().filter(|f| f.target.ends_with(name)).collect() };

    let old = about("/old");
    assert!(old.iter().any(|f| f.check == "backup.stale" && f.severity == Severity::High), "{old:?}");
    assert!(old.iter().any(|f| f.check == "backup.deletable" && f.severity == Severity::High), "{old:?}");

    let kept = about("/kept");
    assert_eq!(kept.len(), 1, "only the wrong passphrase: {kept:?}");
    assert_eq!(kept[0].check, "backup.unreachable");
    assert!(kept[0].detail.contains("passphrase"), "{}", kept[0].detail);
    assert!(!found.iter().any(|f| f.check == "backup.check_failed"), "{found:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
