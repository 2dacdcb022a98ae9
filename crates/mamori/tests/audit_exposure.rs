//! `mamori audit`'s exposure checks against real services: Debian's sshd
//! and smbd, a listener on the RDP port, and nftables, each in a network
//! namespace of the test's own (a veth pair with a 10.88.N.0/24 address
//! inside it), so the host's own services and firewall change nothing and
//! tests run in parallel. Needs root, openssh-server, samba,
//! samba-vfs-modules, smbclient, nftables, iproute2 and python3.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::BIN;

const SSHD: &str = "/usr/sbin/sshd";
const SMBD: &str = "/usr/sbin/smbd";

static NAMESPACES: AtomicU32 = AtomicU32::new(0);

/// A network namespace with loopback and one veth pair up, the address
/// 10.88.N.1/24 on its first end; deleted on drop with what runs in it.
struct Netns {
    name: String,
    address: String,
    children: Vec<Child>,
}

impl Netns {
    fn new() -> Netns {
        let n = NAMESPACES.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("mae-{pid}-{n}");
        let address = format!("10.88.{}.1", (pid.wrapping_mul(13).wrapping_add(n * 37)) % 250 + 1);
        let ns = Netns { name, address, children: Vec::new() };
        ns.ip(&["netns", "add", &ns.name]);
        ns.ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns.ip(&["-n", &ns.name, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        ns.ip(&["-n", &ns.name, "addr", "add", &format!("{}/24", ns.address), "dev", "v0"]);
        ns.ip(&["-n", &ns.name, "link", "set", "v0", "up"]);
        ns.ip(&["-n", &ns.name, "link", "set", "v1", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        let st = Command::new("ip").args(args).status().expect("ip runs (iproute2)");
        assert!(st.success(), "ip {args:?} failed");
    }

    /// Runs `program` in the namespace (`ip netns exec` execs it: the
    /// child's pid is the program's), stopped when the namespace goes.
    fn spawn(&mut self, program: &str, args: &[&str], log: &Path) -> u32 {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(log).unwrap())
            .stderr(fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .expect("ip netns exec runs");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Loads an nftables ruleset into the namespace.
    fn nft(&self, ruleset: &str) {
        let mut nft = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft runs (nftables)");
        std::io::Write::write_all(&mut nft.stdin.take().unwrap(), ruleset.as_bytes()).unwrap();
        assert!(nft.wait().unwrap().success(), "nft refused:\n{ruleset}");
    }

    /// The exposure findings of `mamori audit --json` run in the namespace,
    /// as (check, severity, target, detail), for checks starting with `prefix`.
    fn audit(&self, config: &Path, state: &Path, prefix: &str) -> Vec<(String, String, String, String)> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, BIN, "audit", "--json", "--only", "exposure", "--config"])
            .arg(config)
            .arg("--state")
            .arg(state);
        let (code, stdout, stderr) = run_bounded(cmd, Duration::from_secs(300));
        assert!(matches!(code, Some(0 | 3 | 4 | 5)), "mamori audit exited {code:?}: {stderr}");
        common::audit_findings(&stdout).into_iter().filter(|f| f.0.starts_with(prefix)).collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Asked first, so smbd ends its own children.
        for child in &self.children {
            // SAFETY: a plain kill(2) of a child not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in &mut self.children {
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Runs `cmd` to its end or `limit` (then kills it): exit code, stdout, stderr.
fn run_bounded(mut cmd: Command, limit: Duration) -> (Option<i32>, String, String) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), out.join().unwrap(), err.join().unwrap())
}

/// A folder of the test's own on a disk file system, readable by smbd's
/// guest (nobody), with a mamori config protecting `protect` under it.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::Builder::new().prefix("mamori-audit-exposure-").tempdir_in("/var/tmp").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        Work { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `mamori.toml` protecting `folder`, and a state folder.
    fn config(&self, folder: &Path) -> (PathBuf, PathBuf) {
        let config = self.path("mamori.toml");
        fs::write(&config, format!("[agent]\nprotect = [\"{}\"]\n", folder.display())).unwrap();
        let state = self.path("state");
        fs::create_dir_all(&state).unwrap();
        (config, state)
    }
}

/// Waits until `pid` listens on TCP `port` in its namespace.
fn wait_listening(pid: u32, port: u16, log: &Path) {
    let hex = format!(":{port:04X}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listening = ["tcp", "tcp6"].iter().any(|t| {
            fs::read_to_string(format!("/proc/{pid}/net/{t}")).unwrap_or_default().lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&hex) && f[3] == "0A"
            })
        });
        if listening {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listened on {port} within 20 s: {}",
            fs::read_to_string(log.with_extension("err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn checks(found: &[(String, String, String, String)]) -> Vec<(&str, &str, &str)> {
    found.iter().map(|f| (f.0.as_str(), f.1.as_str(), f.2.as_str())).collect()
}

fn above_info(found: &[(String, String, String, String)]) -> Vec<&(String, String, String, String)> {
    found.iter().filter(|f| f.1 != "info").collect()
}

/// Starts Debian's sshd in `ns` on port 22 with `settings` added to a
/// config of the test's own (host key and pid file in `work`).
fn start_sshd(ns: &mut Netns, work: &Work, settings: &str) {
    let key = work.path("host_ed25519");
    let st = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", ""]).arg("-f").arg(&key).status();
    assert!(st.is_ok_and(|s| s.success()), "ssh-keygen (openssh-client) failed");
    // sshd checks its privilege-separation folder even for -T; systemd's unit makes it.
    fs::create_dir_all("/run/sshd").unwrap();
    let config = work.path("sshd_config");
    fs::write(
        &config,
        format!(
            "Port 22\nListenAddress {}\nHostKey {}\nPidFile {}\nUsePAM no\n{settings}",
            ns.address,
            key.display(),
            work.path("sshd.pid").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let log = work.path("sshd.log");
    let pid = ns.spawn(SSHD, &["-D", "-e", "-f", config.to_str().unwrap()], &log);
    wait_listening(pid, 22, &log);
}

#[test]
fn sshd_taking_passwords_and_root_with_a_weak_cipher_is_found() {
    let mut ns = Netns::new();
    let work = Work::new();
    start_sshd(
        &mut ns,
        &work,
        "PasswordAuthentication yes\nPermitRootLogin yes\nCiphers +aes128-cbc\nMACs +hmac-md5\n",
    );
    let (config, state) = work.config(&work.path("data"));
    let found = ns.audit(&config, &state, "ssh.");
    let target = format!("sshd {}:22", ns.address);
    assert_eq!(
        checks(&found),
        [
            ("ssh.password_auth", "high", target.as_str()),
            ("ssh.root_login", "high", target.as_str()),
            ("ssh.no_rate_limit", "medium", target.as_str()),
            ("ssh.weak_crypto", "medium", target.as_str()),
        ],
        "{found:#?}"
    );
    let detail = |check: &str| &found.iter().find(|f| f.0 == check).unwrap().3;
    assert!(detail("ssh.password_auth").starts_with("passwordauthentication yes (sshd -T -f "), "{found:#?}");
    assert!(detail("ssh.root_login").contains("firewall: exposed"), "{found:#?}");
    assert!(detail("ssh.weak_crypto").starts_with("ciphers aes128-cbc, macs hmac-md5 "), "{found:#?}");
}

#[test]
fn a_hardened_sshd_with_a_rate_limit_is_not_a_problem() {
    let mut ns = Netns::new();
    let work = Work::new();
    start_sshd(&mut ns, &work, "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n");
    ns.nft(
        "table inet filter {
           chain input {
             type filter hook input priority 0; policy accept;
             tcp dport 22 ct state new limit rate 10/minute accept
             tcp dport 22 ct state new drop
           }
         }",
    );
    let (config, state) = work.config(&work.path("data"));
    let found = ns.audit(&config, &state, "ssh.");
    assert!(above_info(&found).is_empty(), "{found:#?}");
}

/// Starts smbd in `ns` with a config of its own (`shares` after [global]'s
/// `extra`), its state in `work`; returns the config, after smbd listens.
fn start_smbd(ns: &mut Netns, work: &Work, extra: &str, shares: &str) -> PathBuf {
    let state = work.path("samba");
    for sub in ["private", "lock", "state", "cache", "pid", "ncalrpc"] {
        fs::create_dir_all(state.join(sub)).unwrap();
    }
    let config = work.path("smb.conf");
    fs::write(
        &config,
        format!(
            "[global]\n  private dir = {s}/private\n  lock directory = {s}/lock\n  state directory = {s}/state\n  \
             cache directory = {s}/cache\n  pid directory = {s}/pid\n  ncalrpc dir = {s}/ncalrpc\n  \
             log file = {s}/log.%m\n  disable netbios = yes\n  smb ports = 445\n{extra}\n{shares}",
            s = state.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let log = work.path("smbd.log");
    // In the foreground (no -D), so the namespace's drop stops it; its
    // children (one per client) end with it.
    let pid = ns.spawn(SMBD, &["-F", "-s", config.to_str().unwrap()], &log);
    wait_listening(pid, 445, &log);
    config
}

fn share(work: &Work, name: &str) -> PathBuf {
    let dir = work.path(name);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Whether an anonymous SMB client in `ns` can list `share`.
fn guest_lists(ns: &Netns, share: &str) -> (bool, String) {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, "smbclient", &format!("//{}/{share}", ns.address), "-N", "-c", "ls"]);
    let (code, out, err) = run_bounded(cmd, Duration::from_secs(60));
    (code == Some(0), format!("{out}{err}"))
}

#[test]
fn samba_with_smb1_a_writable_guest_share_and_a_bad_audit_list_is_found() {
    let mut ns = Netns::new();
    let work = Work::new();
    let public = share(&work, "public");
    let data = share(&work, "data");
    let fine = share(&work, "data/fine");
    start_smbd(
        &mut ns,
        &work,
        "  server min protocol = NT1\n  map to guest = Bad User\n",
        &format!(
            "[public]\n  path = {}\n  guest ok = yes\n  read only = no\n  vfs objects = full_audit\n  \
             full_audit:success = rename unlink openat\n  full_audit:failure = none\n\
             [fine]\n  path = {}\n  guest ok = yes\n  vfs objects = full_audit\n  \
             full_audit:success = OpenAt renameat !unlinkat all\n\
             [data]\n  path = {}\n  read only = no\n  valid users = root\n",
            public.display(),
            fine.display(),
            data.display()
        ),
    );
    let (config, state) = work.config(&data);
    let found = ns.audit(&config, &state, "smb.");
    assert_eq!(
        checks(&found),
        [
            ("smb.guest", "high", "samba share [public]"),
            ("smb.smb1", "high", "smbd 0.0.0.0:445 [::]:445"),
            ("smb.full_audit_ops", "medium", "samba share [public]"),
            ("smb.guest", "medium", "samba share [fine]"),
            ("smb.unprotected_share", "medium", "samba share [public]"),
        ],
        "{found:#?}"
    );
    let audit_ops = &found.iter().find(|f| f.0 == "smb.full_audit_ops").unwrap().3;
    assert!(
        audit_ops.starts_with(
            "full_audit:success = rename unlink openat: unknown rename (this Samba has renameat), \
             unlink (this Samba has unlinkat)"
        ),
        "{audit_ops}"
    );
    // What the findings foretell is what this Samba does: the share with
    // the unknown names refuses clients, the other lets them in.
    let (listed, said) = guest_lists(&ns, "public");
    assert!(!listed && said.contains("NT_STATUS_UNSUCCESSFUL"), "{said}");
    let (listed, said) = guest_lists(&ns, "fine");
    assert!(listed, "{said}");
}

#[test]
fn a_hardened_samba_is_not_a_problem() {
    let mut ns = Netns::new();
    let work = Work::new();
    let data = share(&work, "data");
    start_smbd(
        &mut ns,
        &work,
        "",
        &format!(
            "[data]\n  path = {}\n  read only = no\n  valid users = root\n  vfs objects = full_audit\n  \
             full_audit:success = openat renameat unlinkat !pwrite\n  full_audit:failure = none\n",
            data.display()
        ),
    );
    let (config, state) = work.config(&data);
    let found = ns.audit(&config, &state, "smb.");
    assert!(above_info(&found).is_empty(), "{found:#?}");
}

#[test]
fn a_listener_on_the_rdp_port_is_exposed_until_the_firewall_drops_it() {
    let mut ns = Netns::new();
    let work = Work::new();
    let log = work.path("rdp.log");
    let script = format!(
        "import socket, time\ns = socket.socket()\ns.bind(('{}', 3389))\ns.listen()\ntime.sleep(600)\n",
        ns.address
    );
    let pid = ns.spawn("/usr/bin/python3", &["-c", &script], &log);
    wait_listening(pid, 3389, &log);
    let (config, state) = work.config(&work.path("data"));
    let target = format!("python3 {}:3389", ns.address);

    let found = ns.audit(&config, &state, "rdp.");
    assert_eq!(checks(&found), [("rdp.exposed", "high", target.as_str())], "{found:#?}");
    assert!(found[0].3.ends_with("firewall: exposed (no nftables input chain filters it)"), "{found:#?}");

    ns.nft(
        "table inet filter {
           chain input { type filter hook input priority 0; policy accept; tcp dport 3389 drop; }
         }",
    );
    let found = ns.audit(&config, &state, "rdp.");
    assert_eq!(checks(&found), [("rdp.exposed", "medium", target.as_str())], "{found:#?}");
    assert!(found[0].3.contains("firewall: filtered (inet filter input: rule "), "{found:#?}");
}
