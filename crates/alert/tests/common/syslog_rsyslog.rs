//! A real rsyslogd of the test's own: its own config, work directory and
//! pid file in a temporary directory, one input (UDP, TCP, or TCP with
//! GnuTLS) on a free loopback port, and two files of what it received:
//! the raw message as it came, and rsyslog's own parse of it as JSON.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Input {
    Udp,
    Tcp,
    /// Server certificate and key from [`Pki`].
    Tls,
}

/// A CA, a server certificate it signed (for `localhost` only, so that
/// connecting by address shows host name checking), and an unrelated CA.
pub struct Pki {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn make(dir: &Path) -> Pki {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl (apt install openssl)");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=mamori test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        Pki {
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

pub struct Rsyslog {
    child: Option<Child>,
    dir: PathBuf,
    pub input: Input,
    pub port: u16,
    pki: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Rsyslog {
    /// Starts rsyslogd in `dir` and waits (bounded) until its input listens.
    pub fn start(dir: &Path, input: Input, pki: Option<&Pki>) -> Rsyslog {
        assert!(
            Path::new(RSYSLOGD).exists(),
            "{RSYSLOGD} is missing: these tests need a real rsyslog (apt install rsyslog rsyslog-gnutls)"
        );
        if input == Input::Tls {
            assert!(
                Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
                    || Path::new("/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so").exists(),
                "rsyslog's TLS driver is missing (apt install rsyslog-gnutls)"
            );
        }
        let port = match input {
            Input::Udp => crate::ports::free_udp(),
            _ => crate::ports::free_tcp(),
        };
        let pki = pki.map(|p| (p.ca.clone(), p.cert.clone(), p.key.clone()));
        let mut r = Rsyslog { child: None, dir: dir.to_owned(), input, port, pki };
        r.launch();
        r
    }

    fn launch(&mut self) {
        let dir = &self.dir;
        let work = dir.join("work");
        fs::create_dir_all(&work).unwrap();
        let mut global = format!("global(workDirectory=\"{}\" maxMessageSize=\"64k\"", work.display());
        if let Some((ca, cert, key)) = &self.pki {
            global.push_str(&format!(
                " defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" \
                 defaultNetstreamDriverKeyFile=\"{}\"",
                ca.display(),
                cert.display(),
                key.display()
            ));
        }
        global.push(')');
        let input = match self.input {
            Input::Udp => format!(
                "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{}\" ruleset=\"in\")",
                self.port
            ),
            Input::Tcp => format!(
                "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\" ruleset=\"in\")",
                self.port
            ),
            // anon: rsyslog asks no client certificate; the client checks the server's.
            Input::Tls => format!(
                "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" \
                 streamDriver.authMode=\"anon\")\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\" ruleset=\"in\")",
                self.port
            ),
        };
        let conf = format!(
            r#"{global}
{input}
template(name="raw" type="string" string="%rawmsg%\n")
template(name="parsed" type="list" option.jsonf="on") {{
  property(outname="pri" name="pri" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}
ruleset(name="in") {{
  action(type="omfile" file="{raw}" template="raw")
  action(type="omfile" file="{parsed}" template="parsed")
}}
"#,
            raw = self.raw_path().display(),
            parsed = self.parsed_path().display(),
        );
        let conf_path = dir.join("rsyslog.conf");
        fs::write(&conf_path, conf).unwrap();
        let log = fs::File::create(dir.join("rsyslogd.out")).unwrap();
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        self.wait_listening();
    }

    /// Stops rsyslogd (closing every connection) and starts it again on
    /// the same port, keeping what it wrote.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_listening(&mut self) {
        let (table, state) = match self.input {
            Input::Udp => ("/proc/net/udp", "07"),
            _ => ("/proc/net/tcp", "0A"),
        };
        let want = format!("0100007F:{:04X}", self.port);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let listening = fs::read_to_string(table).unwrap().lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1] == want && f[3] == state
            });
            // Listed as listening is not yet accepting: the TCP test's first
            // connection was once refused right after. A connection made
            // (and closed unused) is.
            let accepting = || {
                matches!(self.input, Input::Udp)
                    || std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1))
                        .is_ok()
            };
            if listening && accepting() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rsyslogd exited ({status}): {}", self.output());
            }
            assert!(Instant::now() < deadline, "rsyslogd did not listen on {} in 15 s: {}", self.port, self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What rsyslogd said on its own output (its errors).
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.join("rsyslogd.out")).unwrap_or_default()
    }

    fn raw_path(&self) -> PathBuf {
        self.dir.join("raw.log")
    }

    fn parsed_path(&self) -> PathBuf {
        self.dir.join("parsed.log")
    }

    /// The first `n` messages received, raw and as rsyslog parsed them,
    /// waiting at most 10 s for them.
    pub fn received(&self, n: usize) -> Vec<(String, serde_json::Value)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let raw = fs::read_to_string(self.raw_path()).unwrap_or_default();
            let parsed = fs::read_to_string(self.parsed_path()).unwrap_or_default();
            let raw: Vec<&str> = raw.lines().collect();
            let parsed: Vec<&str> = parsed.lines().collect();
            if raw.len() >= n && parsed.len() >= n {
                return raw
                    .iter()
                    .zip(&parsed)
                    .take(n)
                    .map(|(r, p)| {
                        let v = serde_json::from_str(p).unwrap_or_else(|e| panic!("rsyslog's JSON {p}: {e}"));
                        (r.to_string(), v)
                    })
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd wrote {} of {n} messages in 10 s: {}",
                raw.len(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}
