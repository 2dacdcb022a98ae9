//! A real postfix of the test's own: its config, queue and mailboxes in a
//! temp dir, listening on free loopback ports, never touching /etc/postfix
//! or the system's instance. Mail for `@example.test` is delivered into
//! Maildirs under the temp dir; `maillog` there says what postfix did.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DOMAIN: &str = "example.test";
/// The SASL user's password, for tests that log in.
pub const PASSWORD: &str = "correct horse battery staple";
pub const SASL_USER: &str = "alerts";

const PACKAGES: &str = "postfix openssl sasl2-bin libsasl2-modules";

fn need(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).chain([PathBuf::from("/usr/sbin")]).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "`{program}` is not installed; the e-mail tests need a real MTA: apt install {PACKAGES}");
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (apt install {PACKAGES})"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 it signed,
/// made with the openssl CLI.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        need("openssl");
        let p = |f: &str| dir.join(format!("{name}-{f}"));
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-days", "2", "-subj", &format!("/CN=mamori test CA {name}")])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem")));
        run(Command::new("openssl")
            .arg("req")
            .args(ec)
            .args(["-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")));
        std::fs::write(
            p("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("ext.cnf"))
            .arg("-out")
            .arg(p("server.pem")));
        Pki { ca: p("ca.pem"), cert: p("server.pem"), key: p("server.key") }
    }
}

#[derive(Default)]
pub struct Options {
    /// Offer STARTTLS (and listen for implicit TLS on `tls_port`).
    pub tls: bool,
    /// Offer AUTH (PLAIN, LOGIN; after STARTTLS only) for [`SASL_USER`] with [`PASSWORD`].
    pub sasl: bool,
}

pub struct Postfix {
    dir: tempfile::TempDir,
    conf: PathBuf,
    /// Plain SMTP, with STARTTLS when `tls`.
    pub port: u16,
    /// Implicit TLS (what port 465 is).
    pub tls_port: u16,
    pub pki: Pki,
    running: bool,
}

fn ids(user: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{user}:")))
        .unwrap_or_else(|| panic!("no user {user}: apt install {PACKAGES}"));
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

impl Postfix {
    pub fn start(options: Options) -> Postfix {
        need("postfix");
        let dir = tempfile::Builder::new().prefix("mamori-postfix-").tempdir().unwrap();
        // postfix's daemons run as `postfix` and must reach their files.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = dir.path();
        let pki = Pki::new(d, "good");
        let (uid, gid) = ids("postfix");
        for sub in ["conf", "queue", "data", "mail"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        chown(&d.join("data"), uid, gid);
        chown(&d.join("mail"), uid, gid);
        // smtpd reads the key as `postfix` only after master (root) opened
        // it; keep it private to root like a real install.
        std::fs::set_permissions(&pki.key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            d.join("conf/vmailbox"),
            ["ops", "sec", "a", "b"].iter().map(|u| format!("{u}@{DOMAIN} {u}/\n")).collect::<String>(),
        )
        .unwrap();

        let mut main = format!(
            "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
myhostname = mx.mamori.test
mydomain = mamori.test
myorigin = mamori.test
mydestination =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
biff = no
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = texthash:{d}/conf/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
",
            d = d.display()
        );
        if options.tls {
            main.push_str(&format!(
                "smtpd_tls_cert_file = {}
smtpd_tls_key_file = {}
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
",
                pki.cert.display(),
                pki.key.display()
            ));
        } else {
            main.push_str("smtpd_tls_security_level = none\n");
        }
        if options.sasl {
            need("saslpasswd2");
            // Debian's postfix reads `$config_directory/sasl/smtpd.conf`
            // whatever `cyrus_sasl_config_path` says; both point there.
            let sasl = d.join("conf/sasl");
            std::fs::create_dir(&sasl).unwrap();
            let db = sasl.join("sasldb2");
            std::fs::write(
                sasl.join("smtpd.conf"),
                format!(
                    "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {}\n",
                    db.display()
                ),
            )
            .unwrap();
            let mut child = Command::new("saslpasswd2")
                .args(["-p", "-c", "-u", "mamori.test", "-f"])
                .arg(&db)
                .arg(SASL_USER)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("saslpasswd2: {e} (apt install {PACKAGES})"));
            use std::io::Write;
            child.stdin.take().unwrap().write_all(PASSWORD.as_bytes()).unwrap();
            assert!(child.wait().unwrap().success(), "saslpasswd2 failed");
            chown(&sasl, uid, gid);
            chown(&db, uid, gid);
            main.push_str(&format!(
                "smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {}
smtpd_sasl_local_domain = mamori.test
smtpd_tls_auth_only = yes
smtpd_sasl_authenticated_header = yes
",
                sasl.display()
            ));
        }
        std::fs::write(d.join("conf/main.cf"), main).unwrap();

        let conf = d.join("conf");
        let mut postfix = Postfix { conf, port: 0, tls_port: 0, pki, running: false, dir };
        // A port found free may be taken by another test before postfix
        // binds it; try a few pairs.
        for _ in 0..5 {
            postfix.port = crate::ports::free_tcp();
            postfix.tls_port = crate::ports::free_tcp();
            if postfix.port == postfix.tls_port {
                continue;
            }
            postfix.write_master_cf(options.tls);
            assert_eq!(postfix.postfix("check"), Some(true), "postfix check failed:\n{}", postfix.log());
            if postfix.postfix("start") == Some(true) {
                postfix.running = true;
                break;
            }
            eprintln!("postfix start: {}", postfix.log());
        }
        assert!(postfix.running, "postfix would not start:\n{}", postfix.log());
        postfix.wait_listening();
        postfix
    }

    /// `postfix -c CONF VERB`, bounded: whether it succeeded, `None` when
    /// it could not run or took too long (then it is killed). What it has
    /// to say goes to `maillog`.
    fn postfix(&self, verb: &str) -> Option<bool> {
        let mut child = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg(verb)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().ok()? {
                return Some(status.success());
            }
            if Instant::now() > deadline {
                eprintln!("postfix {verb} took more than 30 s; killed");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn write_master_cf(&self, tls: bool) {
        // chroot `n`: the chroot jail would need copies of /etc files.
        let mut master = format!("127.0.0.1:{} inet n - n - - smtpd\n", self.port);
        if tls {
            master.push_str(&format!(
                "127.0.0.1:{} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt\n",
                self.tls_port
            ));
        }
        master.push_str(
            "cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
virtual   unix - n n - - virtual
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix - - n 1000? 1 tlsmgr
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
",
        );
        std::fs::write(self.conf.join("master.cf"), master).unwrap();
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1)).is_err()
        {
            assert!(Instant::now() < deadline, "postfix is not listening on {}:\n{}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What postfix logged, to explain a failure.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// The mails delivered to `user@example.test`, in no particular order.
    pub fn mails(&self, user: &str) -> Vec<Vec<u8>> {
        let new = self.dir.path().join("mail").join(user).join("new");
        let Ok(entries) = std::fs::read_dir(&new) else { return Vec::new() };
        entries.map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect()
    }

    /// Waits until `user` has at least `n` mails (bounded), and returns them.
    pub fn wait_mails(&self, user: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.mails(user);
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{user}@{DOMAIN} got {} mail(s), not {n}, within {timeout:?}; postfix said:\n{}",
                mails.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        // `postfix stop` ends the master this instance started (its pid file
        // is in our queue directory) and with it every daemon it runs.
        if self.postfix("stop") != Some(true) {
            let pid_file = self.dir.path().join("queue/pid/master.pid");
            if let Some(pid) = std::fs::read_to_string(pid_file).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) with a pid read from our own instance's pid file.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}
