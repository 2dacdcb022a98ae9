//! Running the tools the checks ask (`restic`, `borg`, `sshd -T`,
//! `testparm`, `nft`, `apt-get -s`) as bounded children.
//!
//! What they read is hostile input and a repository's server may hang:
//! every child gets no shell, no stdin, an environment cleared of the
//! tool's own variables (a `RESTIC_REPOSITORY` left in root's environment
//! must not redirect a check), a deadline, and a cap on what is kept of its
//! output. Each child leads a process group of its own, so the deadline also
//! stops what it started (restic's `rclone` back end, borg's `ssh`).

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Most of a child's error output kept: restic's and borg's messages are far smaller.
const MAX_STDERR: u64 = 64 * 1024;
/// Longest line handed to a line reader; longer ones (no JSON restic writes) are skipped.
const MAX_LINE: u64 = 1 << 20;
/// How long a child stopped at its deadline has to clean up (restic and
/// borg remove their lock on SIGTERM) before it is killed.
const GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);
/// Most characters of a tool's message quoted in a finding.
const EXCERPT: usize = 600;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{program} is not installed")]
    Missing { program: String },
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("{program} did not finish within {} and was stopped", shown(*.limit))]
    Stopped { program: String, limit: Duration },
    #[error("{0}")]
    Failed(String),
    #[error("unexpected output from {program}: {why}")]
    Output { program: String, why: String },
}

/// A limit as people say it: seconds up to two minutes, then minutes.
fn shown(limit: Duration) -> String {
    match limit.as_secs() {
        s if s < 120 => format!("{s} s"),
        s => format!("{} min", s.div_ceil(60)),
    }
}

/// A command for `program` with no stdin, its output piped, and the
/// variables starting with one of `clear` removed from its environment.
pub fn command(program: impl AsRef<OsStr>, clear: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if clear.iter().any(|p| key.as_encoded_bytes().starts_with(p.as_bytes())) {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    cmd
}

/// What a child left: its exit status and the start of its error output.
pub struct Ran {
    pub status: ExitStatus,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Ran {
    /// `Ok` if the child succeeded, else its message as [`RunError::Failed`].
    pub fn ok(self, stdout: &[u8]) -> Result<Ran, RunError> {
        if self.status.success() {
            return Ok(self);
        }
        let said = if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) { &self.stderr[..] } else { stdout };
        Err(RunError::Failed(excerpt(said, &self.status)))
    }
}

/// Runs `cmd` until it exits or `limit` passes, keeping at most `max_out`
/// bytes of its standard output.
pub fn capture(cmd: &mut Command, limit: Duration, max_out: u64) -> Result<(Ran, Vec<u8>), RunError> {
    let mut out = Vec::new();
    let ran = run(cmd, limit, |stdout| {
        let _ = stdout.by_ref().take(max_out).read_to_end(&mut out);
        // The rest is read and dropped so the child does not block on a full pipe.
        let _ = io::copy(stdout, &mut io::sink());
    })?;
    Ok((ran, out))
}

/// Runs `cmd` until it exits or `limit` passes, handing each line of its
/// standard output to `each` as it comes (for listings too big to keep).
pub fn lines(cmd: &mut Command, limit: Duration, mut each: impl FnMut(&[u8]) + Send) -> Result<Ran, RunError> {
    run(cmd, limit, |stdout| {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line.ends_with(b"\n") => each(&line[..line.len() - 1]),
                Ok(_) if (line.len() as u64) < MAX_LINE => return each(&line), // the last line, unterminated
                Ok(_) => {
                    let mut rest = Vec::new();
                    if reader.read_until(b'\n', &mut rest).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

fn run(
    cmd: &mut Command,
    limit: Duration,
    read_stdout: impl FnOnce(&mut std::process::ChildStdout) + Send,
) -> Result<Ran, RunError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => RunError::Missing { program: program.clone() },
        _ => RunError::Spawn { program: program.clone(), source },
    })?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let (stopped, stderr) = std::thread::scope(|s| {
        s.spawn(move || read_stdout(&mut stdout));
        let err = s.spawn(move || {
            let mut kept = Vec::new();
            let _ = stderr.by_ref().take(MAX_STDERR).read_to_end(&mut kept);
            let _ = io::copy(&mut stderr, &mut io::sink());
            kept
        });
        let stopped = wait_exit(&child, start + limit);
        // The leader has exited (or is being stopped) but is not reaped yet,
        // so its group id is still its own: what it left behind goes too,
        // and the readers see the end of their pipes.
        kill_group(&child, libc::SIGKILL);
        (stopped, err.join().unwrap_or_default())
    });
    let status = child.wait().map_err(|source| RunError::Spawn { program: program.clone(), source })?;
    if stopped {
        return Err(RunError::Stopped { program, limit });
    }
    Ok(Ran { status, stderr, elapsed: start.elapsed() })
}

/// Waits, without reaping, until `child` exits; past `deadline` it is asked
/// to stop, then killed. True if it had to be stopped.
fn wait_exit(child: &Child, deadline: Instant) -> bool {
    let mut stopping: Option<Instant> = None;
    loop {
        if exited(child) {
            return stopping.is_some();
        }
        let now = Instant::now();
        match stopping {
            None if now >= deadline => {
                kill_group(child, libc::SIGTERM);
                stopping = Some(now + GRACE);
            }
            Some(kill_at) if now >= kill_at => {
                kill_group(child, libc::SIGKILL);
                stopping = Some(now + Duration::from_secs(3600));
            }
            _ => {}
        }
        std::thread::sleep(POLL);
    }
}

/// Whether `child` has exited, leaving it to be reaped (`WNOWAIT`).
fn exited(child: &Child) -> bool {
    // SAFETY: waitid writes only into `info`, which lives on this stack.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    let rc = unsafe { libc::waitid(libc::P_PID, child.id(), &mut info, flags) };
    // SAFETY: the pid field is valid for a WEXITED answer; 0 means none yet.
    rc != 0 || unsafe { info.si_pid() } != 0
}

fn kill_group(child: &Child, signal: libc::c_int) {
    // SAFETY: a plain kill(2) of the group the child leads (process_group(0));
    // the child is not reaped yet, so the id cannot have been reused.
    unsafe { libc::kill(-(child.id() as libc::pid_t), signal) };
}

/// A tool's message for a finding: its last lines that say something, on
/// one line, bounded.
pub fn excerpt(said: &[u8], status: &ExitStatus) -> String {
    let text = String::from_utf8_lossy(said);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        // Progress lines (`[0:00] 100.00%`) say nothing about the failure.
        .filter(|l| !l.is_empty() && !l.starts_with('['))
        .collect();
    let tail = lines[lines.len().saturating_sub(8)..].join(" / ");
    let one_line: String = tail.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let count = one_line.chars().count();
    let shown = if count > EXCERPT {
        format!("…{}", one_line.chars().skip(count - EXCERPT).collect::<String>())
    } else {
        one_line
    };
    if shown.is_empty() {
        format!("exited with {status}")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_past_its_deadline_is_stopped_with_what_it_started() {
        let mut cmd = command("sh", &[]);
        cmd.args(["-c", "sleep 30 & sleep 30"]);
        let start = Instant::now();
        assert!(matches!(capture(&mut cmd, Duration::from_millis(300), 100), Err(RunError::Stopped { .. })));
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    }

    #[test]
    fn output_is_bounded_and_lines_are_streamed() {
        let mut cmd = command("sh", &[]);
        cmd.args(["-c", "yes | head -c 100000; echo oops >&2; exit 3"]);
        let (ran, out) = capture(&mut cmd, Duration::from_secs(20), 1000).unwrap();
        assert_eq!(out.len(), 1000);
        let err = ran.ok(&out).err().unwrap().to_string();
        assert_eq!(err, "oops");

        let mut seen = Vec::new();
        let mut cmd = command("printf", &[]);
        cmd.arg("a\nb\nc");
        lines(&mut cmd, Duration::from_secs(20), |l| seen.push(l.to_vec())).unwrap().ok(b"").unwrap();
        assert_eq!(seen, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn the_tools_own_variables_are_not_inherited() {
        // HOME stands for RESTIC_PASSWORD and its like: setting a variable
        // here would race with the other tests' children.
        let mut cmd = command("/bin/sh", &["HOM"]);
        cmd.args(["-c", "echo \"[$HOME]\""]);
        let (_, out) = capture(&mut cmd, Duration::from_secs(20), 100).unwrap();
        assert_eq!(out, b"[]\n");
    }

    #[test]
    fn excerpts_keep_the_last_lines_that_say_something() {
        let said =
            b"load indexes\n[0:00] 100.00%  1 / 1 packs\n\nPack ID does not match\nFatal: repository contains errors\n";
        let status = std::process::Command::new("false").status().unwrap();
        assert_eq!(excerpt(said, &status), "load indexes / Pack ID does not match / Fatal: repository contains errors");
        assert_eq!(excerpt(b"  \n", &status), "exited with exit status: 1");
    }
}
