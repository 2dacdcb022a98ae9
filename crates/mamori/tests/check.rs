//! `mamori check`: the real binary, on real folders, against this
//! machine's kernel, with real sockets for the alert outputs.

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn check(args: &[&str]) -> (Output, Value) {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let out = mamori(&all);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (out, json)
}

/// The findings of one kind.
fn findings<'a>(json: &'a Value, check: &str) -> Vec<&'a Value> {
    json["checks"].as_array().expect("a list of checks").iter().filter(|c| c["check"] == check).collect()
}

/// The one finding of `check` whose detail mentions `about`.
fn finding<'a>(json: &'a Value, check: &str, about: &str) -> &'a Value {
    let all = findings(json, check);
    let found: Vec<_> = all.iter().filter(|c| c["detail"].as_str().unwrap().contains(about)).collect();
    assert_eq!(found.len(), 1, "one `{check}` about {about} expected in {json:#}");
    found[0]
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_valid_config_with_a_folder_can_run_and_this_kernel_has_permission_and_pre_content_events() {
    let ws = Workspace::new();
    let data = ws.data.canonicalize().unwrap();
    let config = ws.config(&format!("[agent]\nprotect = [\"{}\"]\nstate = \"{}\"\n", s(&data), s(&ws.state)));
    let (out, json) = check(&["--config", s(&config)]);
    assert_eq!(code(&out), 0, "{json:#}");
    assert_eq!(json["ok"], true);
    for kind in ["fanotify permission events", "fanotify pre-content events", "fanotify file names"] {
        let f = finding(&json, kind, s(&data));
        assert_eq!(f["status"], "ok", "this kernel has {kind}: {f}");
    }
    let folder = finding(&json, "folder", s(&data));
    assert_eq!(folder["status"], "ok", "{folder}");
    assert!(folder["detail"].as_str().unwrap().starts_with(&format!("{} (", s(&data))), "{folder}");
    // The vault goes into the state directory, on the same filesystem.
    let vault = &findings(&json, "vault")[0];
    assert_eq!(vault["status"], "ok", "{vault}");
    assert!(vault["detail"].as_str().unwrap().starts_with(&format!("{}/vault: copies ", s(&ws.state))), "{vault}");
    assert!(findings(&json, "state directory")[0]["detail"].as_str().unwrap().contains("does not exist yet"));
    assert!(!ws.state.exists(), "check makes nothing");
    // A cgroup was made to see the freezer, and removed.
    let freezer = &findings(&json, "cgroup freezer")[0];
    assert_eq!(freezer["status"], "ok", "{freezer}");
    let detail = freezer["detail"].as_str().unwrap();
    let mount = detail.split("cgroup v2 at ").nth(1).and_then(|r| r.split(')').next()).expect("the mount named");
    let left =
        std::fs::read_dir(mount).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains("-probe-"));
    assert_eq!(left.count(), 0, "no probe cgroup left in {mount}");

    // The same, for people.
    let out = mamori(&["check", "--config", s(&config)]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{said}");
    assert!(said.starts_with("Protection on:\n"), "{said}");
    assert!(said.contains(&format!("fanotify pre-content events: {}", s(&data))), "{said}");
    assert!(said.contains("Protection can run"), "{said}");
    // Problems only: nothing that is on.
    let quiet = mamori(&["check", "--quiet", "--config", s(&config)]);
    let said = String::from_utf8_lossy(&quiet.stdout);
    assert!(!said.contains("Protection on:") && !said.contains("fanotify"), "{said}");
}

#[test]
fn a_missing_folder_fails_naming_it_and_what_to_do() {
    let ws = Workspace::new();
    let gone = ws.tmp.path().join("not-here");
    let (out, json) = check(&["--protect", s(&ws.data), "--protect", s(&gone), "--state", s(&ws.state)]);
    assert_eq!(code(&out), 2, "{json:#}");
    assert_eq!(json["ok"], false);
    let f = finding(&json, "folder", s(&gone));
    assert_eq!(f["status"], "fail");
    assert_eq!(f["detail"], format!("{} does not exist", s(&gone)));
    assert!(f["fix"].as_str().unwrap().starts_with(&format!("create {}", s(&gone))), "{f}");
    // The folder that is there is still looked at, and fine.
    assert_eq!(finding(&json, "folder", s(&ws.data))["status"], "ok");

    let out = mamori(&["check", "--protect", s(&gone), "--state", s(&ws.state)]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 2);
    assert!(said.contains(&format!("Cannot run until fixed:\n  - folder: {} does not exist\n", s(&gone))), "{said}");
    assert!(said.contains("what to do: create"), "{said}");
}

#[test]
fn no_folder_means_nothing_to_protect_and_the_condition_skips_the_unit() {
    let ws = Workspace::new();
    let none = ws.config(&format!("[agent]\nstate = \"{}\"\n", s(&ws.state)));
    let (out, json) = check(&["--config", s(&none)]);
    assert_eq!(code(&out), 1, "{json:#}");
    assert_eq!(findings(&json, "folders")[0]["status"], "fail");
    // The kernel is still looked at, on the state directory's filesystem.
    assert_eq!(findings(&json, "fanotify pre-content events")[0]["status"], "ok", "{json:#}");

    let some = ws.tmp.path().join("some.toml");
    std::fs::write(&some, format!("[agent]\nprotect = [\"{}\"]\n", s(&ws.data))).unwrap();
    let bad = ws.tmp.path().join("bad.toml");
    std::fs::write(&bad, "[agent]\nprotekt = [\"/srv\"]\n").unwrap();
    let unreadable = ws.tmp.path().join("absent.toml");
    for (config, want) in [(&some, 0), (&none, 1), (&bad, 255), (&unreadable, 255)] {
        let out = mamori(&["check", "--condition", "--config", s(config)]);
        assert_eq!(code(&out), want, "{}: {}", config.display(), String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "--condition prints nothing on stdout");
    }
    let out = mamori(&["check", "--condition", "--config", s(&bad)]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("protekt") && said.contains(s(&bad)), "the journal is told the key: {said}");
    // A folder given on the command line counts, as for `mamori run`.
    assert_eq!(code(&mamori(&["check", "--condition", "--config", s(&none), "--protect", s(&ws.data)])), 0);
}

#[test]
fn a_malformed_config_fails_with_the_key_named() {
    let ws = Workspace::new();
    let bad = ws.config("[vault]\nper_user_budget_percent = 0\n");
    let (out, json) = check(&["--config", s(&bad), "--protect", s(&ws.data)]);
    assert_eq!(code(&out), 2);
    let f = &findings(&json, "config")[0];
    assert_eq!(f["status"], "fail");
    assert!(f["detail"].as_str().unwrap().contains("vault.per_user_budget_percent"), "{f}");
    let out = mamori(&["check", "--condition", "--config", s(&bad)]);
    assert_eq!(code(&out), 255);
    assert!(String::from_utf8_lossy(&out.stderr).contains("vault.per_user_budget_percent"));

    // An output the agent could not build refuses the config as well.
    let ftp = ws
        .config(&format!("[agent]\nprotect = [\"{}\"]\n[alerts.syslog]\nurl = \"ftp://127.0.0.1:21\"\n", s(&ws.data)));
    let (out, json) = check(&["--config", s(&ftp), "--state", s(&ws.state)]);
    assert_eq!(code(&out), 2, "{json:#}");
    let f = finding(&json, "alert output", "syslog");
    assert_eq!(f["status"], "fail");
    assert!(f["detail"].as_str().unwrap().contains("alerts.syslog.url"), "{f}");
    assert_eq!(code(&mamori(&["check", "--condition", "--config", s(&ftp)])), 255);
}

/// An output that does not answer is a warning: the agent runs and queues
/// its events. One that answers is on.
#[test]
fn an_unreachable_output_is_a_warning_with_its_target_and_a_listening_one_is_on() {
    let ws = Workspace::new();
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = receiver.local_addr().unwrap().port();
    let closed = closed_port();
    let config = ws.config(&format!(
        "[agent]\nprotect = [\"{}\"]\n[alerts.syslog]\nurl = \"tcp://127.0.0.1:{closed}\"\ntimeout_seconds = 2\n\
         [alerts.cef]\nurl = \"tcp://127.0.0.1:{open}\"\ntimeout_seconds = 2\n",
        s(&ws.data)
    ));
    let started = std::time::Instant::now();
    let (out, json) = check(&["--config", s(&config), "--state", s(&ws.state)]);
    assert!(started.elapsed().as_secs() < 20, "bounded: {:?}", started.elapsed());
    assert_eq!(code(&out), 0, "protection still runs: {json:#}");
    let down = finding(&json, "alert output", &format!("tcp://127.0.0.1:{closed}"));
    assert_eq!(down["status"], "warn", "{down}");
    assert!(down["detail"].as_str().unwrap().starts_with("syslog "), "{down}");
    assert!(down["fix"].as_str().unwrap().contains("queue"), "{down}");
    let up = finding(&json, "alert output", &format!("tcp://127.0.0.1:{open}"));
    assert_eq!(up["status"], "ok", "{up}");
    assert!(up["detail"].as_str().unwrap().starts_with("cef "), "{up}");
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn folders_where_protection_cannot_work_are_refused_with_a_reason() {
    let ws = Workspace::new();
    let memory = ws.tmp.path().join("memory");
    std::fs::create_dir(&memory).unwrap();
    assert!(Command::new("mount").args(["-t", "tmpfs", "none"]).arg(&memory).status().unwrap().success());
    let _mounted = Mounted(memory.clone());
    let (out, json) = check(&["--protect", s(&memory), "--protect", "/proc/sys", "--state", s(&ws.state)]);
    assert_eq!(code(&out), 2, "{json:#}");
    // tmpfs takes permission marks but not pre-content ones, which the sensor needs.
    assert_eq!(finding(&json, "fanotify permission events", s(&memory))["status"], "ok");
    let pre = finding(&json, "fanotify pre-content events", s(&memory));
    assert_eq!(pre["status"], "fail", "{pre}");
    assert!(pre["fix"].as_str().unwrap().contains("ext4"), "{pre}");
    let proc = finding(&json, "folder", "/proc/sys");
    assert_eq!(proc["status"], "fail");
    assert!(proc["detail"].as_str().unwrap().contains("on proc"), "{proc}");
}

#[test]
fn an_unsafe_state_directory_and_nested_folders_are_named() {
    let ws = Workspace::new();
    let inner = ws.data.join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::fs::create_dir(&ws.state).unwrap();
    std::fs::set_permissions(&ws.state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (out, json) = check(&["--protect", s(&ws.data), "--protect", s(&inner), "--state", s(&ws.state)]);
    assert_eq!(code(&out), 2, "{json:#}");
    let state = &findings(&json, "state directory")[0];
    assert_eq!(state["status"], "fail");
    assert!(state["detail"].as_str().unwrap().contains("chmod 700"), "{state}");
    let overlap = &findings(&json, "overlap")[0];
    assert_eq!(overlap["status"], "warn");
    assert!(overlap["detail"].as_str().unwrap().starts_with(&format!("{} is inside", s(&inner))), "{overlap}");

    std::fs::set_permissions(&ws.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (out, json) = check(&["--protect", s(&ws.data), "--state", s(&ws.state)]);
    assert_eq!(code(&out), 0, "{json:#}");
    assert_eq!(findings(&json, "state directory")[0]["status"], "ok");
}

/// On XFS the vault sits at the filesystem's mount point and its copies
/// share blocks; a filesystem with less free space than the floor keeps no
/// copies, which is said (protection still runs).
#[test]
fn an_xfs_folder_gets_reflink_copies_and_a_full_one_is_warned_of() {
    let ws = Workspace::new();
    let image = ws.tmp.path().join("xfs.img");
    std::fs::File::create(&image).unwrap().set_len(512 << 20).unwrap();
    let made = Command::new("mkfs.xfs").args(["-q", "-f", "-m", "reflink=1"]).arg(&image).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfs.xfs failed: apt-get install xfsprogs");
    let mnt = ws.tmp.path().join("xfs");
    std::fs::create_dir(&mnt).unwrap();
    assert!(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&mnt).status().unwrap().success());
    let _mounted = Mounted(mnt.clone());
    let share = mnt.join("share");
    std::fs::create_dir(&share).unwrap();

    let roomy = ws.config("[vault]\nfree_floor_mib = 16\n");
    let (out, json) = check(&["--config", s(&roomy), "--protect", s(&share), "--state", s(&ws.state)]);
    assert_eq!(code(&out), 0, "{json:#}");
    assert_eq!(finding(&json, "folder", s(&share))["detail"], format!("{} (XFS)", s(&share)));
    let vault = &findings(&json, "vault")[0];
    assert_eq!(vault["status"], "ok", "{vault}");
    let detail = vault["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("{}/.mamori-vault: copies share blocks", s(&mnt))), "{detail}");
    assert!(!mnt.join(".mamori-vault").exists(), "check makes nothing");
    assert_eq!(std::fs::read_dir(&share).unwrap().count(), 0, "the reflink probe leaves nothing behind");

    // The default floor (1 GiB) is more than this filesystem has.
    let (out, json) = check(&["--protect", s(&share), "--state", s(&ws.state)]);
    assert_eq!(code(&out), 0, "{json:#}");
    let vault = &findings(&json, "vault")[0];
    assert_eq!(vault["status"], "warn", "{vault}");
    assert!(vault["detail"].as_str().unwrap().contains("no copy is kept"), "{vault}");
}
