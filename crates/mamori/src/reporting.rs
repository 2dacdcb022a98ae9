//! `mamori report`, `mamori timeline` and `mamori identify`: an incident
//! put together from the store, its evidence bundle and its restore, in
//! the forms people and tools read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use mamori_identify::Kind;
use mamori_report::{Candidate, Case, Decryptor, EvidenceRef, Family, FileOutcome, Host, Matched, NoteFound, Restored};
use mamori_store::Incident;

use crate::evidence;
use crate::state::StateDir;

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).inspect_err(|e| tracing::warn!(file = %path.display(), "unreadable: {e}")).ok()
}

/// The incident with everything known about it.
pub fn case(state: &StateDir, inc: Incident) -> Case {
    let bundle = state.bundle(&inc.id);
    let timeline = std::fs::read_to_string(bundle.join(evidence::TIMELINE))
        .map(|text| text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        .unwrap_or_default();
    let processes: Vec<mamori_evidence::ProcessRecord> = read_json(&bundle.join("processes.json")).unwrap_or_default();
    let exe_sha256 = processes.iter().find(|p| p.pid == inc.actor.pid).and_then(|p| p.exe_sha256.clone());
    let network: Option<mamori_evidence::Network> = read_json(&bundle.join("network.json"));
    let mut remote_addrs: Vec<String> = network
        .iter()
        .flat_map(|n| &n.connections)
        .filter_map(|c| c.socket.as_ref()?.remote.clone())
        .filter(|r| !r.starts_with("0.0.0.0") && !r.starts_with("[::]"))
        .collect();
    remote_addrs.sort();
    remote_addrs.dedup();
    let seal: Option<mamori_evidence::Seal> = read_json(&bundle.join("seal.json"));
    let evidence = seal.map(|s| EvidenceRef {
        dir: bundle.display().to_string(),
        chain_head: s.head,
        key_fingerprint: s.fingerprint,
    });
    let identification: Option<mamori_identify::Identification> = read_json(&bundle.join(evidence::IDENTIFICATION));
    let candidates = identification
        .iter()
        .flat_map(|id| &id.candidates)
        .map(|c| Candidate { family: c.family.clone(), weight: c.weight })
        .collect();
    let word = |value: serde_json::Result<serde_json::Value>| value.ok()?.as_str().map(str::to_owned);
    let family = identification.and_then(|id| {
        let matched = id
            .matched
            .iter()
            .filter_map(|m| {
                // A trailer is bytes: shown escaped, as the evidence shows it.
                let text = if m.kind == Kind::Trailer { m.text.escape_default().to_string() } else { m.text.clone() };
                Some(Matched { kind: word(serde_json::to_value(m.kind))?, text, sample: m.sample.clone() })
            })
            .collect();
        Some(Family {
            name: id.family?,
            confidence: word(serde_json::to_value(id.confidence))?,
            evidence: id.evidence,
            matched,
            decryptor: id.decryptor.map(|d| Decryptor { name: d.name, url: d.url }),
        })
    });
    let notes: Vec<NoteFound> = read_json(&bundle.join(evidence::NOTES)).unwrap_or_default();
    let host: Option<mamori_evidence::Host> = read_json(&bundle.join("host.json"));
    let outcomes: BTreeMap<String, Restored> = read_json(&state.restore_outcomes(&inc.id)).unwrap_or_default();
    let files = inc
        .files
        .iter()
        .map(|f| FileOutcome {
            path: f.path.clone(),
            op: f.op,
            to: f.to.clone(),
            restored: outcomes.get(&f.path).cloned().or_else(|| (!outcomes.is_empty()).then_some(Restored::NotYet)),
        })
        .collect();
    let isolation = inc.notes.iter().find(|n| n.starts_with("network isolation")).cloned();
    Case {
        host: {
            let here = Host::this_machine();
            Host {
                hostname: host.as_ref().and_then(|h| h.hostname.clone()).unwrap_or(here.hostname),
                kernel: host.as_ref().and_then(|h| h.kernel.as_ref()).map(|k| k.release.clone()).unwrap_or_default(),
                os: here.os,
            }
        },
        incident: inc,
        timeline,
        files,
        family,
        candidates,
        notes,
        exe_sha256,
        remote_addrs,
        isolation,
        evidence,
        timezone: jiff::tz::TimeZone::system().iana_name().map(str::to_owned),
    }
}

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum LangArg {
    Ja,
    En,
}

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum ReportFormat {
    Md,
    Html,
    /// Plain text, for a terminal.
    Text,
}

impl From<LangArg> for mamori_report::Lang {
    fn from(lang: LangArg) -> mamori_report::Lang {
        match lang {
            LangArg::Ja => mamori_report::Lang::Ja,
            LangArg::En => mamori_report::Lang::En,
        }
    }
}

impl From<ReportFormat> for mamori_report::Format {
    fn from(format: ReportFormat) -> mamori_report::Format {
        match format {
            ReportFormat::Md => mamori_report::Format::Markdown,
            ReportFormat::Html => mamori_report::Format::Html,
            ReportFormat::Text => mamori_report::Format::Text,
        }
    }
}

#[derive(clap::Args)]
pub struct ReportArgs {
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    id: String,
    #[arg(long, value_enum, default_value = "ja")]
    lang: LangArg,
    #[arg(long, value_enum, default_value = "md")]
    format: ReportFormat,
    /// Write to this file instead of the terminal.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum TimelineFormat {
    /// Timesketch JSON lines (message, datetime, timestamp_desc, ...).
    Timesketch,
    /// Timesketch CSV.
    TimesketchCsv,
    /// Elastic Common Schema JSON lines.
    Ecs,
}

#[derive(clap::Args)]
pub struct TimelineArgs {
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    id: String,
    #[arg(long, value_enum, default_value = "timesketch")]
    format: TimelineFormat,
    /// Write to this file instead of the terminal.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn load_case(state: Option<PathBuf>, id: &str) -> Result<Case> {
    let state = StateDir::at(state);
    let inc = state.store()?.incident(id)?.with_context(|| format!("no incident {id} (see `mamori incidents`)"))?;
    Ok(case(&state, inc))
}

pub fn output(out: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match out {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    })
}

pub fn report(args: ReportArgs) -> Result<ExitCode> {
    let case = load_case(args.state, &args.id)?;
    let mut out = output(args.out.as_deref())?;
    out.write_all(mamori_report::render(&case, args.lang.into(), args.format.into()).as_bytes())?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn timeline(args: TimelineArgs) -> Result<ExitCode> {
    let case = load_case(args.state, &args.id)?;
    let mut out = output(args.out.as_deref())?;
    match args.format {
        TimelineFormat::Timesketch => mamori_report::timesketch(&case, &mut out, mamori_report::TsFormat::Jsonl)?,
        TimelineFormat::TimesketchCsv => mamori_report::timesketch(&case, &mut out, mamori_report::TsFormat::Csv)?,
        TimelineFormat::Ecs => mamori_report::ecs(&case, &mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct IdentifyArgs {
    /// Ransom notes or encrypted files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print JSON: `family` (a name or null), `confidence`, `evidence`, `decryptor`.
    #[arg(long)]
    json: bool,
    /// Family markers to use instead of the built-in ones (or STATE/families.toml).
    #[arg(long, value_name = "FILE")]
    families: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
}

pub fn identify(args: IdentifyArgs) -> Result<ExitCode> {
    let catalog = match &args.families {
        Some(path) => mamori_identify::Catalog::load(path)?,
        None => evidence::catalog(&StateDir::at(args.state.clone()))?,
    };
    let mut samples = Vec::new();
    for path in &args.paths {
        samples
            .push(mamori_identify::Sample::from_path(path).with_context(|| format!("cannot read {}", path.display()))?);
    }
    let id = catalog.identify(&samples);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&id)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &id.family {
        Some(name) => println!("family: {name} (confidence {:?})", id.confidence),
        None => println!("family: unknown (no known family's markers match well enough; mamori does not guess)"),
    }
    if !id.candidates.is_empty() {
        let listed: Vec<String> = id.candidates.iter().map(|c| format!("{} (weight {})", c.family, c.weight)).collect();
        println!("candidates, not confirmed: {}", listed.join(", "));
    }
    for line in &id.evidence {
        println!("  {line}");
    }
    match &id.decryptor {
        Some(d) => println!("free decryptor known: {} <{}>", d.name, d.url),
        None if id.family.is_some() => {
            println!("no free decryptor known to mamori (check https://www.nomoreransom.org/)")
        }
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}
