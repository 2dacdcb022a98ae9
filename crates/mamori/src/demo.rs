//! `mamori demo`: the whole story in one command. A sample folder of
//! realistic documents, an agent protecting it, a simulated attack, and the
//! stop, shown as it happens.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mamori_sim::Snapshot;
use mamori_store::Store;

use crate::ui;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Simulated family to attack with (see `mamori sim list`).
    #[arg(long, default_value = "overwrite")]
    family: String,
    /// Folder to create the sample documents in (default: a new folder under /var/tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Place no decoy files, to watch the behavioural indicators alone stop the attack.
    #[arg(long)]
    no_decoys: bool,
}

/// Kills a child we started if the demo ends early, so nothing is left behind.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("the demo needs root (mamori watches files with fanotify): run it with sudo");
    }
    if !mamori_sim::families().iter().any(|f| f.name == args.family) {
        bail!("unknown family {:?}: see `mamori sim list`", args.family);
    }
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(format!("/var/tmp/mamori-demo-{stamp}")));
    let state = PathBuf::from(format!("{}.state", dir.display()));
    let exe = std::env::current_exe()?;

    println!(
        "1. Making a sample folder of documents, spreadsheets, PDFs, pictures and disk images in {}",
        dir.display()
    );
    let spinner = indicatif::ProgressBar::new_spinner().with_message("writing sample files");
    spinner.enable_steady_tick(Duration::from_millis(100));
    let summary = mamori_sim::make_corpus(&dir, &mamori_sim::CorpusSpec::default())?;
    spinner.finish_with_message(format!("{summary:?}"));
    let before = Snapshot::take(&dir)?;

    println!("2. Starting the mamori agent to protect it");
    let mut cmd = Command::new(&exe);
    cmd.args(["run", "--protect"]).arg(&dir).arg("--state").arg(&state).stdin(Stdio::null());
    if args.no_decoys {
        std::fs::create_dir_all(&state)?;
        let config = state.join("demo.toml");
        std::fs::write(&config, "[canary]\nenabled = false\n")?;
        cmd.arg("--config").arg(config);
    }
    let agent = Reap(cmd.spawn().context("cannot start the agent")?);
    wait_for(Duration::from_secs(60), || Ok(mamori_store::agent_status(&state)?.is_some_and(|s| s.active)))
        .context("the agent did not become active")?;

    println!("3. Attacking it with the simulated family `{}`", args.family);
    let mut attack = Reap(
        Command::new(&exe)
            .args(["sim", "run", &args.family])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the simulator")?,
    );
    let store = Store::open(&state)?;
    let started = Instant::now();
    let incident = loop {
        if let Some(inc) = store.incidents()?.pop() {
            break Some(inc);
        }
        if attack.0.try_wait()?.is_some() || started.elapsed() > Duration::from_secs(180) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let after = Snapshot::take(&dir)?;
    let diff = before.diff(&after);

    let Some(inc) = incident else {
        println!("The attack was NOT stopped: {} files were changed or removed.", diff.touched());
        drop(agent);
        return Ok(ExitCode::from(1));
    };
    println!("4. Stopped after {:.1} s.", started.elapsed().as_secs_f64());
    let mut table = ui::table(&["", ""]);
    table.add_row(vec!["incident".into(), inc.id.clone()]);
    table.add_row(vec!["actor".into(), format!("{} (pid {})", inc.actor.exe, inc.actor.pid)]);
    table.add_row(vec!["action".into(), format!("{:?} {} process(es)", inc.action, inc.pids.len())]);
    table.add_row(vec![
        "files touched before the stop".into(),
        format!("{} of {} ({} changed, {} gone)", diff.touched(), before.len(), diff.changed, diff.missing),
    ]);
    table.add_row(vec!["why".into(), inc.reasons.iter().map(ui::reason).collect::<Vec<_>>().join("\n")]);
    if let Some(us) = inc.stop_latency_us {
        table.add_row(vec!["decision to stop".into(), format!("{:.1} ms", us as f64 / 1000.0)]);
    }
    println!("{table}");

    // The simulator is ours and was identified by the incident: end it.
    mamori_response::kill(&inc.procs);
    let _ = attack.0.wait();
    drop(agent);
    println!("Sample folder: {}    State: {}", dir.display(), state.display());
    let (id, st) = (&inc.id, state.display());
    println!("Next, as after a real incident:");
    println!("  mamori incidents --state {st}");
    println!("  mamori restore {id} --state {st}              # put back every file it changed");
    println!("  mamori report {id} --state {st} --lang en     # the report (Japanese by default)");
    println!("  mamori evidence verify {st}/evidence/{id}     # the sealed evidence bundle");
    Ok(ExitCode::SUCCESS)
}

fn wait_for(limit: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    while !ready()? {
        if start.elapsed() > limit {
            bail!("gave up after {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
