//! The alert outputs under `[alerts]`: each built alone (so one bad table
//! does not hide the others) and probed, all at once, within a deadline.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use mamori_alert::{AlertsConfig, Output};

use super::Check;

const CHECK: &str = "alert output";
/// Beyond the longest timeout of the outputs, what a probe may take
/// (name resolution, a TLS handshake after the connect).
const GRACE: Duration = Duration::from_secs(5);

pub fn check(cfg: &AlertsConfig, checks: &mut Vec<Check>) {
    let each = mamori_alert::each_output(cfg);
    if each.is_empty() {
        checks.push(Check::warn(
            "alert outputs",
            "none configured: incidents reach only the agent's log and `mamori incidents`",
            "add an output under [alerts] (syslog, journal, webhook, email…; see mamori.example.toml), then run \
             `mamori alert test`",
        ));
        return;
    }
    let mut built: Vec<Box<dyn Output>> = Vec::new();
    for (table, made) in each {
        match made {
            Ok(output) => built.push(output),
            Err(e) => checks.push(Check::fail(
                CHECK,
                format!("{table}: {e}"),
                format!("correct [alerts.{table}] (see mamori.example.toml): the agent does not start with it"),
            )),
        }
    }
    let deadline = Instant::now() + longest_timeout(cfg) + GRACE;
    let (tx, rx) = mpsc::channel();
    let mut waiting: Vec<(&'static str, String)> = Vec::new();
    for mut output in built {
        let (name, target) = (output.name(), output.target());
        waiting.push((name, target.clone()));
        let tx = tx.clone();
        // A probe past the deadline is left behind; the process exits soon after anyway.
        std::thread::spawn(move || {
            let _ = tx.send((name, target, output.probe()));
        });
    }
    drop(tx);
    let queue = cfg.queue_max_events;
    while !waiting.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((name, target, result)) = rx.recv_timeout(left) else { break };
        waiting.retain(|(n, _)| *n != name);
        match result {
            Ok(said) => checks.push(Check::ok(CHECK, format!("{name} {target}: {said}"))),
            Err(e) => checks.push(unreachable(name, &target, &e.to_string(), queue)),
        }
    }
    for (name, target) in waiting {
        let why = format!("no answer within {} s", (longest_timeout(cfg) + GRACE).as_secs());
        checks.push(unreachable(name, &target, &why, queue));
    }
}

/// Not a failure: the agent runs, and keeps what it could not send.
fn unreachable(name: &str, target: &str, why: &str, queue: u64) -> Check {
    Check::warn(
        CHECK,
        format!("{name} {target} cannot be reached: {why}"),
        format!(
            "check the address, the firewall and that the receiver runs; meanwhile protection runs and events \
             wait in the queue on disk (up to {queue}), sent once it answers"
        ),
    )
}

fn longest_timeout(cfg: &AlertsConfig) -> Duration {
    let seconds = [
        cfg.syslog.as_ref().map(|c| c.timeout_seconds),
        cfg.cef.as_ref().map(|c| c.timeout_seconds),
        cfg.elasticsearch.as_ref().map(|c| c.timeout_seconds),
        cfg.webhook.as_ref().map(|c| c.timeout_seconds),
        cfg.email.as_ref().map(|c| c.timeout_seconds),
    ];
    // Bounded even if a config asks for hours: `mamori check` answers in a minute at most.
    Duration::from_secs(seconds.into_iter().flatten().max().unwrap_or(1).clamp(1, 55))
}
