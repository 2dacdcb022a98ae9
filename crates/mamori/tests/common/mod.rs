//! Drives the real `mamori` binary as root: an agent on a temporary folder,
//! the simulator or a real program against it, and the incidents it recorded.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mamori_testuser::User;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_mamori");

/// These tests need root and fanotify; they never skip (CI runs as root).
pub fn require_root() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the kernel tests need root (fanotify permission events); run them with sudo"
    );
}

pub fn mamori(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run mamori")
}

/// A temporary workspace: the protected folder and the agent's state.
pub struct Workspace {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub state: PathBuf,
}

impl Workspace {
    pub fn new() -> Workspace {
        require_root();
        let tmp = tempfile::Builder::new().prefix("mamori-test-").tempdir_in("/var/tmp").unwrap();
        let data = tmp.path().join("data");
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&data).unwrap();
        Workspace { tmp, data, state }
    }

    /// Fills the data folder with the simulator's corpus (and marks it as a test target).
    pub fn corpus(&self, docs: usize, large: usize) {
        let out = mamori(&[
            "sim",
            "corpus",
            self.data.to_str().unwrap(),
            "--docs",
            &docs.to_string(),
            "--large",
            &large.to_string(),
        ]);
        assert!(out.status.success(), "corpus: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn config(&self, text: &str) -> PathBuf {
        let path = self.tmp.path().join("mamori.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn start_agent(&self, config: Option<&Path>) -> Agent {
        self.start_agent_under(config, &[])
    }

    /// Starts the agent through a wrapper command (e.g. `ip netns exec NS`).
    pub fn start_agent_under(&self, config: Option<&Path>, wrapper: &[&str]) -> Agent {
        let log = self.tmp.path().join("agent.log");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(["run", "--protect"]).arg(&self.data).arg("--state").arg(&self.state);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd
            .env("MAMORI_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.tmp.path().join("agent.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut agent = Agent { child, log, state: self.state.clone() };
        let start = Instant::now();
        loop {
            if mamori(&["status", "--state", self.state.to_str().unwrap()]).status.success() {
                break;
            }
            if let Some(status) = agent.child.try_wait().unwrap() {
                panic!("agent exited with {status} before becoming active:\n{}", agent.log());
            }
            assert!(start.elapsed() < Duration::from_secs(60), "agent never became active:\n{}", agent.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    pub fn incidents(&self) -> Vec<Value> {
        let out = mamori(&["incidents", "--json", "--state", self.state.to_str().unwrap()]);
        assert!(out.status.success(), "incidents: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
    }

    /// Starts the simulator with `family` against the data folder.
    pub fn simulate(&self, family: &str) -> Started {
        Self::start_sim(Command::new(BIN), &self.data, family)
    }

    /// Starts the simulator with `family` against the data folder, run as `user`.
    pub fn simulate_as(&self, user: &User, family: &str) -> Started {
        Self::start_sim(user.command(BIN), &self.data, family)
    }

    /// Starts the simulator with `family` against the data folder, from
    /// `copy`, a copy of the binary just written. A child that another test
    /// forks meanwhile holds the copy's descriptor open until it execs, and
    /// the kernel refuses to run a file open for writing (`ETXTBSY`): tried
    /// again until that child has.
    pub fn simulate_from(&self, copy: &Path, family: &str) -> Started {
        for _ in 0..100 {
            match Self::spawn_sim(Command::new(copy), &self.data, family) {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => return Started(other.unwrap()),
            }
        }
        panic!("{} stayed busy", copy.display());
    }

    fn start_sim(mamori: Command, data: &Path, family: &str) -> Started {
        Started(Self::spawn_sim(mamori, data, family).unwrap())
    }

    fn spawn_sim(mut mamori: Command, data: &Path, family: &str) -> std::io::Result<Child> {
        mamori.args(["sim", "run", family]).arg(data).stdout(Stdio::null()).stderr(Stdio::null()).spawn()
    }

    /// A corpus of `docs` files under an agent (with `config`, if any), attacked
    /// by `family` until the one incident it must cause.
    pub fn attacked(&self, docs: usize, config: Option<&str>, family: &str) -> (Agent, Started, Value) {
        self.corpus(docs, 0);
        let cfg = config.map(|c| self.config(c));
        let agent = self.start_agent(cfg.as_deref());
        let mut sim = self.simulate(family);
        let mut incidents = self.wait_for_incident(&mut sim.0, Duration::from_secs(120));
        assert_eq!(incidents.len(), 1, "{family}: {incidents:#?}\n{}", agent.log());
        (agent, sim, incidents.remove(0))
    }

    /// Opens every file of the data folder but the decoys to write, changing
    /// nothing (so each is copied), then waits until the vault holds
    /// something. The vault is closed to the tests too: its size is read
    /// from the agent's status.
    pub fn fill_the_vault(&self, agent: &Agent) {
        let read = Command::new("sh")
            .arg("-c")
            .arg("find . -type f ! -name '.0-*' -exec sh -c 'for f; do : >> \"$f\"; done' _ {} +")
            .current_dir(&self.data)
            .status()
            .unwrap();
        assert!(read.success());
        let status = self.state.join("agent.json");
        let start = Instant::now();
        loop {
            let st: Value = serde_json::from_slice(&std::fs::read(&status).unwrap_or_default()).unwrap_or_default();
            if st["vault"]["entries"].as_u64().unwrap_or(0) > 0 {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no copies were taken:\n{}", agent.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the processes of an incident with `mamori kill`.
    pub fn kill(&self, inc: &Value) {
        let out = mamori(&["kill", inc["id"].as_str().unwrap(), "--state", self.state.to_str().unwrap()]);
        assert!(out.status.success(), "kill: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Waits until an incident appears or `child` exits; returns the incidents.
    pub fn wait_for_incident(&self, child: &mut Child, limit: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let incs = self.incidents();
            if !incs.is_empty() {
                return incs;
            }
            if child.try_wait().unwrap().is_some() || start.elapsed() > limit {
                // One last look: the verdict may have landed as the child finished.
                return self.incidents();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The agent under test; stopped with SIGTERM when dropped.
pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
    pub state: PathBuf,
}

impl Agent {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the agent and checks it ended cleanly.
    pub fn stop(mut self) -> String {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        let log = self.log();
        assert!(status.success(), "agent ended with {status}:\n{log}");
        log
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

/// A process we started, killed (by its own pid) if the test ends early.
pub struct Started(pub Child);

impl Drop for Started {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// The pids the incident says it stopped; used to end them by the ids detected.
pub fn incident_pids(inc: &Value) -> Vec<u32> {
    inc["pids"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap() as u32).collect()
}

/// Appends a line to a results file that the README's figures are read from.
pub fn record_result(file: &str, line: &str) {
    use std::io::Write;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(file)).unwrap();
    writeln!(f, "{line}").unwrap();
}

/// The findings of `mamori audit --json` as (check, severity, target, detail).
pub fn audit_findings(json: &str) -> Vec<(String, String, String, String)> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_owned();
            (s("check"), s("severity"), s("target"), s("detail"))
        })
        .collect()
}
