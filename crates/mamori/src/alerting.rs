//! Telling people: the agent's dispatcher and the events it raises, the
//! one-off events of other commands (a restore finished), and `mamori alert
//! test`. What is sent and how lives in `mamori-alert`; this is the wiring.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mamori_alert::{Alert, AlertsConfig, Cause, Dispatcher, Sender, Spool, What};
use mamori_store::Incident;
use tracing::warn;

use crate::settings::{Settings, DEFAULT_STATE};

/// Where the queue lives under the state directory.
const QUEUE: &str = "alerts";
/// The outputs the running agent uses, for commands run without `--config`.
const OUTPUTS: &str = "outputs.json";
/// The same cause of degraded protection is told at most this often.
const DEGRADED_EVERY: Duration = Duration::from_secs(600);
/// How long a stopping agent gives its outputs: well inside the service's stop timeout.
const STOP_WAIT: Duration = Duration::from_secs(3);
/// How long a command (a restore finished) waits for its event to get out;
/// what does not is sent by the agent later.
const ONCE_WAIT: Duration = Duration::from_secs(10);

/// The agent's alerting: events handed to background threads.
pub struct Alerts {
    dispatcher: Dispatcher,
    sender: Sender,
    state: PathBuf,
    told: HashMap<Cause, Instant>,
}

impl Alerts {
    /// Starts the outputs `config` names; `None` when it names none.
    pub fn start(config: &AlertsConfig, state: &Path) -> Result<Option<Alerts>> {
        let spool = Spool::open(&state.join(QUEUE), config.queue_max_events)?;
        // Commands run later without `--config` tell through the same outputs.
        let saved = serde_json::to_vec_pretty(config).expect("the config always serialises");
        // A webhook's URL may be a secret: root's alone, like the state directory.
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(spool.dir().join(OUTPUTS))
            .and_then(|mut f| f.write_all(&saved))
            .context("cannot save the alert outputs")?;
        let outputs = mamori_alert::outputs(config).context("invalid config")?;
        if outputs.is_empty() {
            return Ok(None);
        }
        let names: Vec<&str> = outputs.iter().map(|o| o.name()).collect();
        spool.forget_others(&names)?;
        let dispatcher = Dispatcher::start(spool, outputs, Duration::from_secs(config.retry_max_seconds));
        let sender = dispatcher.sender();
        Ok(Some(Alerts { dispatcher, sender, state: state.to_owned(), told: HashMap::new() }))
    }

    /// Hands an incident over; returns at once.
    pub fn incident(&self, incident: &Incident) {
        let restore_command = restore_command(&incident.id, &self.state);
        self.sender.send(Alert::new(What::Incident { incident: Box::new(incident.clone()), restore_command }));
    }

    /// Protection is weaker: told once per cause every ten minutes, so a
    /// disk that stays full does not flood the outputs.
    pub fn degraded(&mut self, cause: Cause, detail: String) {
        if self.told.get(&cause).is_some_and(|t| t.elapsed() < DEGRADED_EVERY) {
            return;
        }
        self.told.insert(cause, Instant::now());
        self.sender.send(Alert::new(What::Degraded { cause, detail }));
    }

    /// The agent is stopping: tells so, then gives the outputs a few seconds.
    pub fn stop(self, detail: String) {
        let Alerts { dispatcher, sender, .. } = self;
        sender.send(Alert::new(What::Degraded { cause: Cause::AgentStopping, detail }));
        // The queue's writer ends once every sender is gone.
        drop(sender);
        dispatcher.shutdown(STOP_WAIT);
    }
}

/// Prints the alert outputs' backlog (`mamori status`): an output whose
/// receiver is down shows events waiting for it.
pub fn status(state: &Path) {
    let dir = state.join(QUEUE);
    if !dir.join("sent").is_dir() {
        return;
    }
    let backlog = Spool::open(&dir, u64::MAX).and_then(|spool| spool.backlog());
    match backlog {
        Ok(outputs) => {
            for (name, waiting) in outputs {
                if waiting == 0 {
                    println!("  alerts:    {name}: all sent");
                } else {
                    println!(
                        "  WARNING: alerts: {name}: {waiting} event(s) waiting for its receiver \
                         (sent once it answers; `mamori check` tries it)"
                    );
                }
            }
        }
        Err(e) => println!("  WARNING: cannot read the alert queue: {e}"),
    }
}

/// The restore command as the user types it.
pub fn restore_command(id: &str, state: &Path) -> String {
    if state == Path::new(DEFAULT_STATE) {
        format!("sudo mamori restore {id}")
    } else {
        format!("sudo mamori restore {id} --state {}", state.display())
    }
}

/// Tells events from a command, through the outputs of `config` or, when
/// it names none, those of the agent that last ran on `state`. Waits a few
/// seconds for them to get out; the agent sends what is left.
pub fn tell(config: &AlertsConfig, state: &Path, events: Vec<What>) -> Result<()> {
    let dir = state.join(QUEUE);
    let (config, outputs) = match mamori_alert::outputs(config)? {
        outputs if !outputs.is_empty() => (config.clone(), outputs),
        _ => {
            let saved: AlertsConfig = match std::fs::read(dir.join(OUTPUTS)) {
                Ok(saved) => serde_json::from_slice(&saved).context("the agent's saved alert outputs")?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e).context("cannot read the agent's saved alert outputs"),
            };
            let outputs = mamori_alert::outputs(&saved)?;
            (saved, outputs)
        }
    };
    if outputs.is_empty() || events.is_empty() {
        return Ok(());
    }
    let spool = Spool::open(&dir, config.queue_max_events)?;
    let dispatcher = Dispatcher::start(spool, outputs, Duration::from_secs(config.retry_max_seconds));
    let sender = dispatcher.sender();
    for what in events {
        sender.send(Alert::new(what));
    }
    drop(sender);
    dispatcher.shutdown(ONCE_WAIT);
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum AlertCommand {
    /// Send a test event to every output configured under [alerts], and say which worked.
    Test {
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE", default_value = "/etc/mamori/mamori.toml")]
        config: PathBuf,
    },
}

pub fn run(cmd: AlertCommand) -> Result<ExitCode> {
    let AlertCommand::Test { config } = cmd;
    let settings = Settings::load(Some(&config))?;
    let outputs =
        mamori_alert::outputs(&settings.alerts).with_context(|| format!("config file {}", config.display()))?;
    if outputs.is_empty() {
        bail!("{} configures no output under [alerts]; see mamori.example.toml", config.display());
    }
    // Sent directly, not queued: the point is to learn which work now.
    let alert = Alert::new(What::Test);
    let mut failed = 0;
    for mut output in outputs {
        match output.send(&alert) {
            Ok(()) => println!("ok      {:<14} {}", output.name(), output.target()),
            Err(e) => {
                failed += 1;
                println!("FAILED  {:<14} {}: {e}", output.name(), output.target());
            }
        }
    }
    if failed > 0 {
        warn!("{failed} output(s) did not take the test event");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
