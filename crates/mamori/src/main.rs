//! `mamori`: the command line. Each subcommand lives in its own module; this
//! file only parses arguments and dispatches.

mod agent;
mod alerting;
mod audit;
mod canary;
mod check;
mod clients;
mod commands;
mod demo;
mod evidence;
mod handshake;
mod isolation;
mod reporting;
mod restore;
mod settings;
mod state;
mod trace;
mod trust;
mod ui;
mod vaults;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mamori", version, about = "Ransomware defence for Linux servers and file shares (守り)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct StateArg {
    /// State directory of the agent (incidents, status).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent in the foreground: watch the protected folders and stop ransomware.
    Run(agent::RunArgs),
    /// Exit 0 only while an agent on this state directory runs with protection active.
    Status {
        #[command(flatten)]
        state: StateArg,
    },
    /// List incidents.
    Incidents {
        #[command(flatten)]
        state: StateArg,
        /// Print JSON (an array of incidents).
        #[arg(long)]
        json: bool,
    },
    /// A false positive: resume the suspended processes and trust that program for that folder.
    Resume {
        #[command(flatten)]
        state: StateArg,
        id: String,
    },
    /// Lift the block on a file-share client's address that an incident put in place.
    Unblock {
        #[command(flatten)]
        state: StateArg,
        /// The client's address (IPv4 or IPv6), as `mamori status` lists it.
        addr: String,
    },
    /// Kill the suspended processes of an incident.
    Kill {
        #[command(flatten)]
        state: StateArg,
        id: String,
    },
    /// Put back every file an incident's actor changed, renamed or deleted, and remove what it made.
    Restore(restore::RestoreArgs),
    /// Export an incident's sealed evidence bundle (folder or .tar.zst), or verify one.
    Evidence(evidence::EvidenceArgs),
    /// An incident's timeline for Timesketch or Elastic (ECS).
    Timeline(reporting::TimelineArgs),
    /// The incident report for managers and responders (Japanese or English, Markdown or HTML).
    Report(reporting::ReportArgs),
    /// Name the ransomware family from ransom notes or encrypted files.
    Identify(reporting::IdentifyArgs),
    /// Cut this host off the network except loopback and an allow-list (nftables), or undo it.
    Isolate(isolation::IsolateArgs),
    /// Record what the sensor sees into a trace file (JSON lines), without acting.
    Record(trace::RecordArgs),
    /// Replay a recorded trace through the engine and print the verdicts.
    Replay(trace::ReplayArgs),
    /// Alert outputs ([alerts] in the config): `mamori alert test` sends a test event to each.
    #[command(subcommand)]
    Alert(alerting::AlertCommand),
    /// Check the configuration, the folders, the alert outputs and the kernel: say what protection is on and what is missing.
    Check(check::CheckArgs),
    /// Audit what this host exposes to ransomware, whether its backups would survive and restore, and mamori itself.
    Audit(audit::AuditArgs),
    /// The built-in attack simulator (only ever runs inside marked test folders).
    #[command(subcommand)]
    Sim(commands::SimCommand),
    /// Show mamori at work: make a sample folder, protect it, attack it, watch the stop.
    Demo(demo::DemoArgs),
    /// Internal: one simulator child process (the process-per-file family).
    #[command(name = "__sim-child", hide = true)]
    SimChild {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    ui::init_logging();
    let cli = Cli::parse();
    // A listing piped into `head` or `grep -q` ends quietly when the reader
    // goes, as other command-line tools do, instead of panicking on the
    // write. Not for the agent, whose sockets must never kill it.
    if !matches!(cli.command, Command::Run(_) | Command::Demo(_) | Command::Record(_)) {
        // SAFETY: setting a signal's disposition to its default, before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Run(args) => agent::run(args),
        Command::Status { state } => commands::status(state.state),
        Command::Incidents { state, json } => commands::incidents(state.state, json),
        Command::Resume { state, id } => commands::resume(state.state, &id),
        Command::Kill { state, id } => commands::kill(state.state, &id),
        Command::Unblock { state, addr } => commands::unblock(state.state, &addr),
        Command::Restore(args) => restore::run(args),
        Command::Evidence(args) => evidence::run(args),
        Command::Timeline(args) => reporting::timeline(args),
        Command::Report(args) => reporting::report(args),
        Command::Identify(args) => reporting::identify(args),
        Command::Isolate(args) => isolation::run(args),
        Command::Record(args) => trace::record(args),
        Command::Replay(args) => trace::replay(args),
        Command::Alert(cmd) => alerting::run(cmd),
        Command::Check(args) => check::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Sim(cmd) => commands::sim(cmd),
        Command::Demo(args) => demo::run(args),
        Command::SimChild { args } => mamori_sim::child_main(&args).map(|()| ExitCode::SUCCESS).map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mamori: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// There is no man page: `--help` and the README's command list are the
    /// manual, so every command `--help` lists must be in the README.
    #[test]
    fn the_readme_lists_every_command() {
        let readme = include_str!("../../../README.md");
        for cmd in super::Cli::command().get_subcommands().filter(|c| !c.is_hide_set()) {
            let name = cmd.get_name();
            assert!(readme.contains(&format!("mamori {name}")), "README lacks `mamori {name}`");
            for sub in cmd.get_subcommands() {
                let full = format!("{name} {}", sub.get_name());
                assert!(readme.contains(&full) || sub.get_name() == "help", "README lacks `mamori {full}`");
            }
        }
    }
}
