//! Cutting off a remote client judged to be the attacker (an SMB client of
//! Samba on this host), and only that client.
//!
//! At the verdict its server processes are stopped like any actor (so their
//! memory, open files and connection are there for the bundle), then its
//! address is blocked in mamori's own nftables table, in the network
//! namespace of the process that served it: its next request on the open
//! connection is answered with a reset, and it cannot connect again. Once the
//! bundle is written (or at once, without evidence) the session is looked up
//! in Samba's own view (`smbstatus`), the account is disabled if asked, and
//! its server processes are ended, which closes its open files. Each step is
//! recorded in the incident as it is taken.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mamori_event::{Client, ProcKey};
use mamori_store::{ClientCut, CutKind, CutStep};
use tracing::{info, warn};

use crate::agent::now_rfc3339;
use crate::settings::ClientsSection;
use crate::state::StateDir;

/// How long Samba may take to report its sessions, and an account command to run.
const SERVER_WAIT: Duration = Duration::from_secs(5);

/// A finished cut, for the agent to write into its incident.
pub type Update = (String, ClientCut);

pub fn step(kind: CutKind, result: Result<String>) -> CutStep {
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(e) => (false, format!("{e:#}")),
    };
    if !ok {
        warn!(?kind, "cutting off the client: {detail}");
    }
    CutStep { at: now_rfc3339(), kind, ok, detail }
}

/// Blocks the client's address where its connection is: in the network
/// namespace of `served` (a stopped process of the client's, so its pid is
/// still its own).
/// `served` lists the client's server processes and the server that
/// started them: the first still running tells the network namespace.
pub fn block(client: &Client, served: &[ProcKey], settings: &ClientsSection) -> Result<String> {
    if client.address.is_empty() {
        bail!("the address of its connection could not be read from its smbd process: nothing to block");
    }
    let addr: IpAddr = client
        .address
        .parse()
        .with_context(|| format!("the client's address {:?} is not an address", client.address))?;
    let minutes = settings.block_minutes;
    let duration = (minutes > 0).then(|| Duration::from_secs(minutes.saturating_mul(60)));
    // The connection that crossed the threshold may be gone already (a
    // client that reconnects for every file): any process of the same
    // server is in the same namespace.
    let place = served.iter().copied().find(|k| mamori_response::proc_key(k.pid) == Some(*k)).with_context(|| {
        "its server processes and the server that started them have all exited: no network namespace to block it in"
    })?;
    let (blocked, reset) = in_netns_of(Some(place), |nft| {
        let blocked = nft.block(addr, duration)?;
        // After the block, so the client cannot open a new one meanwhile.
        let reset = mamori_isolate::reset_connections(blocked.addr);
        Ok((blocked, reset))
    })?;
    let until = match duration {
        Some(_) => format!("for {minutes} min"),
        None => "until `mamori unblock`".to_owned(),
    };
    info!(client = %addr, "client blocked {until}");
    let reset = match reset {
        Ok(n) => format!("{n} open connection(s) reset"),
        Err(e) => format!("its open connections wait for their timeout: {e}"),
    };
    Ok(format!("{} blocked both ways {until}, {reset} (undo: mamori unblock {})", blocked.addr, blocked.addr))
}

/// Runs `f` with nftables as seen from the network namespace of `of` (when
/// it is still that process), else of this process, on a thread of its own:
/// `setns` changes only the calling thread, which ends right after.
pub fn in_netns_of<T: Send>(
    of: Option<ProcKey>,
    f: impl FnOnce(&mamori_isolate::Nft) -> Result<T> + Send,
) -> Result<T> {
    let Some(of) = of else { return f(&mamori_isolate::Nft::default()) };
    let netns = std::fs::File::open(format!("/proc/{}/ns/net", of.pid))
        .with_context(|| format!("cannot find the network namespace of process {}", of.pid))?;
    // Checked after the open: the namespace held is that process's.
    if mamori_response::proc_key(of.pid) != Some(of) {
        bail!("process {} has exited: its network namespace is gone", of.pid);
    }
    std::thread::scope(|s| {
        s.spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a descriptor we hold, for this thread only.
            if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error()).context("cannot enter the server's network namespace");
            }
            f(&mamori_isolate::Nft::default())
        })
        .join()
        .unwrap_or_else(|_| bail!("nftables work in another namespace panicked"))
    })
}

/// The network namespaces where clients were blocked: the servers' (those
/// still running), and this process's own.
fn block_places(state: &StateDir) -> Vec<Option<ProcKey>> {
    let mut places: Vec<Option<ProcKey>> = vec![None];
    let mut seen = vec![netns_id(std::process::id())];
    for server in state.blocked_in() {
        let id = netns_id(server.pid);
        if mamori_response::proc_key(server.pid) == Some(server) && id.is_some() && !seen.contains(&id) {
            seen.push(id);
            places.push(Some(server));
        }
    }
    places
}

fn netns_id(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

/// Every client blocked, where.
pub fn blocks(state: &StateDir) -> Result<Vec<mamori_isolate::Block>> {
    let mut all = Vec::new();
    for place in block_places(state) {
        all.extend(in_netns_of(place, |nft| Ok(nft.blocks()?))?);
    }
    Ok(all)
}

/// Lifts the block on `addr` wherever one was put; whether there was one.
pub fn unblock(state: &StateDir, addr: IpAddr) -> Result<bool> {
    let mut any = false;
    for place in block_places(state) {
        any |= in_netns_of(place, |nft| Ok(nft.unblock(addr)?))?;
    }
    Ok(any)
}

/// What is still to be done once the bundle is written.
pub struct Cut {
    pub incident: String,
    pub cut: ClientCut,
    pub settings: ClientsSection,
    pub updates: mpsc::Sender<Update>,
}

impl Cut {
    /// Adds what the server knows of the session (machine name, shares,
    /// dialect, session id): asked while its processes are stopped, not
    /// ended, so the session is still listed.
    pub fn learn_session(&mut self, procs: &[ProcKey]) {
        // The smbd master's config names the server's state.
        let config = self.cut.server.and_then(|k| mamori_served::samba_config(k.pid));
        match mamori_served::samba_sessions(config.as_deref(), SERVER_WAIT) {
            Ok(sessions) => {
                let known = sessions.into_iter().filter(|(pid, _)| procs.iter().any(|k| k.pid == *pid));
                for (_, session) in known {
                    merge(&mut self.cut.client, session);
                }
            }
            Err(e) => warn!(id = self.incident, "the client's session is not known: {e}"),
        }
        if self.settings.disable_account {
            let done = self.disable_account(config);
            self.cut.steps.push(step(CutKind::AccountDisabled, done));
        }
    }

    fn disable_account(&self, config: Option<PathBuf>) -> Result<String> {
        let user = &self.cut.client.user;
        if user.is_empty() {
            bail!("the client's account is not known");
        }
        let config = config.map(|c| c.display().to_string()).unwrap_or_else(|| "/etc/samba/smb.conf".to_owned());
        let template = if self.settings.disable_command.is_empty() {
            ["smbpasswd", "-c", "{config}", "-d", "{user}"].map(String::from).to_vec()
        } else {
            self.settings.disable_command.clone()
        };
        let argv: Vec<String> =
            template.iter().map(|a| a.replace("{user}", user).replace("{config}", &config)).collect();
        run_bounded(&argv)?;
        Ok(format!("account {user} disabled ({})", argv.join(" ")))
    }

    /// Ends the client's server processes, records it, and hands the cut to the agent.
    pub fn end(mut self, procs: &[ProcKey]) {
        // One at a time: each connection's process was stopped as a tree of
        // its own, frozen in a cgroup of its own that goes with it.
        let mut ended_procs = Vec::new();
        for &key in procs {
            let killed = mamori_response::kill(&[key]);
            if let Some(e) = killed.cgroup {
                warn!("{e}");
            }
            ended_procs.extend(killed.procs);
        }
        let ended = if ended_procs.is_empty() {
            Err(anyhow::anyhow!("none of its {} server process(es) was still there to end", procs.len()))
        } else {
            let pids: Vec<String> = ended_procs.iter().map(|k| k.pid.to_string()).collect();
            Ok(format!("server process(es) {} ended: its open files are closed", pids.join(", ")))
        };
        self.cut.steps.push(step(CutKind::Ended, ended));
        let _ = self.updates.send((self.incident, self.cut));
    }

    /// Without a bundle to wait for: does it all now, on a thread of its own.
    pub fn spawn(mut self, procs: Vec<ProcKey>) {
        let spawned = std::thread::Builder::new().name("cut-client".into()).spawn(move || {
            self.learn_session(&procs);
            self.end(&procs);
        });
        if let Err(e) = spawned {
            warn!("cannot start cutting off the client: {e}");
        }
    }
}

/// Fills what the sensor could not see from the server's own record.
fn merge(into: &mut Client, session: Client) {
    let fill = |field: &mut String, value: String| {
        if field.is_empty() {
            *field = value;
        }
    };
    fill(&mut into.user, session.user);
    fill(&mut into.machine, session.machine);
    fill(&mut into.dialect, session.dialect);
    fill(&mut into.session, session.session);
    for share in session.shares {
        if !into.shares.contains(&share) {
            into.shares.push(share);
        }
    }
}

/// Runs a command, killing it (the child we started, by its handle) if it
/// overruns [`SERVER_WAIT`].
fn run_bounded(argv: &[String]) -> Result<()> {
    let (program, args) = argv.split_first().context("the command is empty")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let deadline = Instant::now() + SERVER_WAIT;
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.by_ref().take(4096).read_to_string(&mut err);
            }
            bail!("{} failed ({status}): {}", argv.join(" "), err.trim());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not finish within {} s", argv.join(" "), SERVER_WAIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_fills_only_what_the_sensor_left_empty() {
        let mut seen =
            Client { server: "samba".into(), address: "10.0.0.2".into(), user: "alice".into(), ..Default::default() };
        let session = Client {
            server: "samba".into(),
            address: "10.0.0.2".into(),
            user: "bob".into(),
            machine: "PC-17".into(),
            shares: vec!["share".into()],
            dialect: "SMB3_11".into(),
            session: "42".into(),
            ..Default::default()
        };
        merge(&mut seen, session.clone());
        merge(&mut seen, session);
        assert_eq!(seen.user, "alice", "what the process showed stands");
        assert_eq!(seen.machine, "PC-17");
        assert_eq!(seen.shares, ["share"], "each share once");
    }

    #[test]
    fn an_account_command_that_fails_or_hangs_is_reported() {
        let err = run_bounded(&["false".into()]).unwrap_err();
        assert!(format!("{err:#}").contains("failed"), "{err:#}");
        let start = Instant::now();
        let err = run_bounded(&["sleep".into(), "30".into()]).unwrap_err();
        assert!(format!("{err:#}").contains("did not finish"), "{err:#}");
        assert!(start.elapsed() < Duration::from_secs(15));
    }
}
