//! The worker of the `process-per-file` and `setsid` families: one
//! fork/exec of the current executable per file.
//!
//! The parent runs `<current_exe> __sim-child <family> <file>` and waits for
//! it before starting the next. The executable that embeds this crate must
//! recognise [`CHILD_ARG`] as its first argument and pass the arguments after
//! it to [`child_main`].

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::SimError;
use crate::family;
use crate::target::{check_target, MARKER};
use crate::transform::FileJob;

/// The hidden first argument that turns an executable into a per-file child.
pub const CHILD_ARG: &str = "__sim-child";

/// Encrypts one file as `family` does, in this process.
///
/// `args` are the arguments after [`CHILD_ARG`]: `[family, file]`. The file
/// must lie inside a directory that passes [`check_target`], so a child
/// started by hand is no more dangerous than [`run`](crate::run). Each child
/// draws its own key (and its own extension where the family draws one).
pub fn child_main(args: &[String]) -> Result<(), SimError> {
    let [family, file] = args else {
        return Err(SimError::ChildArgs(format!("expected <family> <file>, got {args:?}")));
    };
    let family = family::find(family).ok_or_else(|| SimError::UnknownFamily(family.clone()))?;
    let file = Path::new(file);
    enclosing_target(file)?;
    FileJob::new(family.plan)?.apply(file)
}

/// Starts the child for `file`, in a session of its own when `new_session`,
/// and waits for it.
pub(crate) fn spawn(family: &str, file: &Path, new_session: bool) -> Result<(), SimError> {
    let exe = std::env::current_exe().map_err(SimError::io("/proc/self/exe"))?;
    let mut cmd = Command::new(&exe);
    cmd.arg(CHILD_ARG).arg(family).arg(file).stdin(Stdio::null());
    if new_session {
        // SAFETY: setsid is async-signal-safe, touches no memory, and a
        // freshly forked child is never a process group leader, so it succeeds.
        unsafe {
            cmd.pre_exec(|| if libc::setsid() < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
        }
    }
    let status = cmd.status().map_err(SimError::io(&exe))?;
    if status.success() {
        Ok(())
    } else {
        Err(SimError::Io { path: file.to_path_buf(), source: std::io::Error::other(format!("child {status}")) })
    }
}

/// The nearest marked ancestor of `file`, vetted by [`check_target`].
fn enclosing_target(file: &Path) -> Result<PathBuf, SimError> {
    let parent = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let parent = fs::canonicalize(parent).map_err(SimError::io(parent))?;
    let marked = parent.ancestors().find(|dir| fs::symlink_metadata(dir.join(MARKER)).is_ok_and(|m| m.is_file()));
    match marked {
        Some(dir) => check_target(dir),
        None => Err(SimError::NotMarked { path: parent }),
    }
}
