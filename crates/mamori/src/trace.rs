//! `mamori record` and `mamori replay`: traces are JSON lines of events.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mamori_event::Event;
use mamori_sensor::{Decision, Handler, Sensor, SensorConfig};

use crate::agent::canonical_folders;
use crate::settings::Settings;
use crate::ui;

#[derive(clap::Args)]
pub struct RecordArgs {
    /// A folder to watch (repeatable).
    #[arg(long, value_name = "DIR", required = true)]
    protect: Vec<PathBuf>,
    /// The trace file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Stop after this many seconds (default: until Ctrl-C / SIGTERM).
    #[arg(long)]
    duration: Option<u64>,
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// A trace written by `mamori record` or `mamori run --record`.
    trace: PathBuf,
    /// Configuration file with the weights to replay with.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the verdicts as JSON.
    #[arg(long)]
    json: bool,
}

struct Recorder {
    out: BufWriter<File>,
    events: u64,
    error: Option<std::io::Error>,
    deadline: Option<Instant>,
    stop: Arc<AtomicBool>,
}

impl Handler for Recorder {
    fn event(&mut self, ev: &Event, _opened: Option<mamori_sensor::Opened<'_>>) -> Decision {
        if self.error.is_none() {
            let line = serde_json::to_string(ev).expect("events always serialise");
            if let Err(e) = writeln!(self.out, "{line}") {
                self.error = Some(e);
                self.stop.store(true, Ordering::Relaxed);
            }
            self.events += 1;
        }
        Decision::Allow
    }

    fn tick(&mut self) {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

pub fn record(args: RecordArgs) -> Result<ExitCode> {
    let protect = canonical_folders(&args.protect)?;
    let out = File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let mut sensor = Sensor::new(SensorConfig { protect, exclude: Vec::new(), guard: Vec::new(), unmarked: vec![] })?;
    let mut rec = Recorder {
        out: BufWriter::new(out),
        events: 0,
        error: None,
        deadline: args.duration.map(|s| Instant::now() + Duration::from_secs(s)),
        stop: Arc::clone(&stop),
    };
    eprintln!("recording to {} (Ctrl-C to stop)", args.out.display());
    sensor.run(&mut rec, &stop)?;
    if let Some(e) = rec.error {
        return Err(e).with_context(|| format!("cannot write {}", args.out.display()));
    }
    rec.out.flush()?;
    eprintln!("{} events recorded", rec.events);
    Ok(ExitCode::SUCCESS)
}

pub fn replay(args: ReplayArgs) -> Result<ExitCode> {
    let settings = Settings::load(args.config.as_deref())?;
    let file = File::open(&args.trace).with_context(|| format!("cannot open trace {}", args.trace.display()))?;
    let mut engine = mamori_engine::Engine::new(settings.engine());
    let mut verdicts = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", args.trace.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: Event = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not a mamori event", args.trace.display(), n + 1))?;
        verdicts.extend(engine.process(&ev));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&verdicts)?);
    } else if verdicts.is_empty() {
        println!("no verdicts ({} events)", engine.stats().events);
    } else {
        let mut table = ui::table(&["time", "actor", "score", "files", "reasons"]);
        for v in &verdicts {
            let exe = v.actor_info.as_ref().map(|i| i.exe.as_str()).unwrap_or("?");
            table.add_row(vec![
                crate::agent::rfc3339(v.time_ns),
                format!("{exe} (pid {})", v.actor.pid),
                format!("{:.0}", v.score),
                v.files.len().to_string(),
                v.reasons.iter().map(ui::reason).collect::<Vec<_>>().join("\n"),
            ]);
        }
        println!("{table}");
    }
    Ok(ExitCode::SUCCESS)
}
