//! Turns a case into a [`Doc`] in one language: the facts are chosen here
//! once, the words come from the string table.

use std::collections::BTreeSet;

use mamori_event::EventKind;
use mamori_store::{Action, Client, ClientCut, CutKind, CutStep, FileOp};

use crate::doc::{Block, Doc, Section};
use crate::indicators::{contacts, leak_threat, new_extensions};
use crate::personal::{personal_data, PersonalData, Reason};
use crate::text::{fill, Text};
use crate::time::{parse_rfc3339, Clock};
use crate::timeline::{command_line, detected_ns, entries, entropy, kind_name, Entry, What};
use crate::{Candidate, Case, Family, FileOutcome, Restored};

/// Rows of the file table before the rest is only counted.
const MAX_FILE_ROWS: usize = 50;
/// Timeline rows shown from each end of a long timeline.
const TIMELINE_ENDS: usize = 15;
/// Characters of a note kept where a one-line excerpt is wanted.
const NOTE_LINE: usize = 200;

pub(crate) fn compose(case: &Case, t: &Text) -> Doc {
    let facts = Facts::gather(case, t);
    let mut sections = vec![
        summary(case, t, &facts),
        timeline(case, t, &facts),
        stopped(case, t, &facts),
        files(case, t),
        personal(t, &facts.personal),
        automatic(case, t, &facts),
        family(case, t),
        notes(case, t),
        checklist(case, t, &facts),
        ppc(case, t, &facts),
        nco(case, t, &facts),
    ];
    if !case.incident.notes.is_empty() {
        sections.push(Section { heading: t.h_remarks.into(), blocks: vec![Block::List(case.incident.notes.clone())] });
    }
    Doc {
        lang: t.lang,
        title: fill(t.title, &[("id", &case.incident.id)]),
        sections,
        footer: fill(t.footer, &[("id", &case.incident.id)]),
    }
}

/// What several sections say, worked out once.
struct Facts {
    clock: Clock,
    detected: String,
    /// When the processes were stopped (detection plus latency), if known.
    stopped_at: Option<String>,
    first_activity: Option<u64>,
    latency: String,
    host: String,
    action: &'static str,
    pids: String,
    restore: String,
    family: String,
    personal: PersonalData,
    personal_short: String,
    isolation: String,
    evidence: String,
    vars: Vec<(&'static str, String)>,
}

impl Facts {
    fn gather(case: &Case, t: &Text) -> Facts {
        let inc = &case.incident;
        let clock = Clock::new(case.timezone.as_deref());
        let detected_ns = detected_ns(case);
        let stopped = matches!(inc.action, Action::Suspended | Action::Killed);
        let stopped_at = inc.stop_latency_us.filter(|_| stopped).map(|us| clock.long(detected_ns + us * 1_000));
        let first_activity = case.timeline.iter().find(|e| changes(&e.kind)).map(|e| e.time_ns);
        let personal = personal_data(case.files.iter().map(|f| f.path.as_str()));
        let personal_short = if personal.likely {
            fill(t.personal_yes_short, &[("n", &personal.files.to_string())])
        } else {
            t.personal_no_short.into()
        };
        let pids = if inc.pids.is_empty() {
            inc.actor.pid.to_string()
        } else {
            inc.pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        };
        let mut facts = Facts {
            detected: clock.long(detected_ns),
            stopped_at,
            first_activity,
            latency: inc.stop_latency_us.map_or_else(|| t.unknown.into(), latency),
            host: if case.host.hostname.is_empty() { t.unknown.into() } else { case.host.hostname.clone() },
            action: action_label(t, inc.action),
            pids,
            restore: restore_summary(t, &case.files),
            family: case
                .family
                .as_ref()
                .map_or_else(|| t.unknown.into(), |f| format!("{} ({}: {})", f.name, t.confidence, confidence(t, f))),
            personal,
            personal_short,
            isolation: case.isolation.clone().unwrap_or_else(|| t.isolation_none.into()),
            evidence: case.evidence.as_ref().map_or_else(|| t.evidence_none.into(), |e| e.dir.clone()),
            clock,
            vars: Vec::new(),
        };
        facts.vars = vec![
            ("id", inc.id.clone()),
            ("time", facts.detected.clone()),
            ("host", facts.host.clone()),
            ("exe", non_empty(&inc.actor.exe, t.unknown)),
            ("pid", inc.actor.pid.to_string()),
            ("pids", facts.pids.clone()),
            ("n", case.files.len().to_string()),
            ("latency", facts.latency.clone()),
            ("evidence", facts.evidence.clone()),
            ("family", facts.family.clone()),
            ("restore", facts.restore.clone()),
        ];
        if let Some(cut) = &inc.client {
            facts.vars.extend(client_vars(&cut.client, t));
        }
        facts
    }

    fn fill(&self, template: &str) -> String {
        self.fill_with(template, &[])
    }

    /// Fills with `extra` first, so it overrides a blank of the same name.
    fn fill_with(&self, template: &str, extra: &[(&str, &str)]) -> String {
        let vars: Vec<(&str, &str)> =
            extra.iter().copied().chain(self.vars.iter().map(|(k, v)| (*k, v.as_str()))).collect();
        fill(template, &vars)
    }
}

/// The client's blanks, each the `unknown` word when the server did not say:
/// a reader must never meet an empty name where a machine or account belongs.
fn client_vars(c: &Client, t: &Text) -> [(&'static str, String); 4] {
    let shares = if c.shares.is_empty() { t.unknown.to_string() } else { c.shares.join(t.list_sep) };
    [
        ("machine", non_empty(&c.machine, t.unknown)),
        ("address", non_empty(&c.address, t.unknown)),
        ("user", non_empty(&c.user, t.unknown)),
        ("shares", shares),
    ]
}

fn cut_label(t: &Text, kind: CutKind) -> &'static str {
    match kind {
        CutKind::Stopped => t.cut_stopped,
        CutKind::Blocked => t.cut_blocked,
        CutKind::Ended => t.cut_ended,
        CutKind::AccountDisabled => t.cut_account,
        CutKind::Reconnected => t.cut_reconnected,
        CutKind::Unblocked => t.cut_unblocked,
    }
}

fn cut_result(t: &Text, step: &CutStep) -> &'static str {
    if step.ok {
        t.cut_done
    } else {
        t.cut_failed
    }
}

/// A step's time in the reader's zone; as recorded when it does not parse.
fn cut_time(step: &CutStep, t: &Text, f: &Facts) -> String {
    match parse_rfc3339(&step.at) {
        Some(ns) => f.clock.long(ns),
        None => non_empty(&step.at, t.unknown),
    }
}

fn cut_line(step: &CutStep, t: &Text, f: &Facts) -> String {
    let mut line = fill(
        t.cut_line,
        &[("time", &cut_time(step, t, f)), ("step", cut_label(t, step.kind)), ("result", cut_result(t, step))],
    );
    if !step.detail.is_empty() {
        line.push_str(&fill(t.cut_detail, &[("detail", &step.detail)]));
    }
    line
}

/// Whether the client's server processes are gone: then nothing is left
/// suspended to resume or kill, and saying so would send a reader looking.
fn client_ended(cut: &ClientCut) -> bool {
    cut.steps.iter().any(|s| s.kind == CutKind::Ended && s.ok)
}

/// Events that change something on disk (opening does not).
fn changes(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::CloseWrite { .. }
            | EventKind::Create { .. }
            | EventKind::Delete { .. }
            | EventKind::Rename { .. }
            | EventKind::Canary { .. }
            | EventKind::Guarded { .. }
    )
}

fn non_empty(s: &str, otherwise: &str) -> String {
    if s.is_empty() {
        otherwise.into()
    } else {
        s.into()
    }
}

fn latency(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else {
        format!("{:.1} ms", us as f64 / 1_000.0)
    }
}

fn action_label(t: &Text, action: Action) -> &'static str {
    match action {
        Action::Suspended => t.action_suspended,
        Action::Killed => t.action_killed,
        Action::Resumed => t.action_resumed,
        Action::Failed => t.action_failed,
    }
}

fn restore_summary(t: &Text, files: &[FileOutcome]) -> String {
    let count = |want: fn(&Option<Restored>) -> bool| files.iter().filter(|f| want(&f.restored)).count();
    let parts = [
        (count(|r| matches!(r, Some(Restored::Restored))), t.restored_restored),
        (count(|r| matches!(r, Some(Restored::AlreadyIntact))), t.restored_intact),
        (count(|r| matches!(r, Some(Restored::Failed(_)))), t.restored_failed),
        (count(|r| matches!(r, Some(Restored::NotYet))), t.restored_not_yet),
    ];
    if parts.iter().all(|(n, _)| *n == 0) {
        return t.restore_none.into();
    }
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, label)| fill(t.count_of, &[("label", label), ("n", &n.to_string())]))
        .collect::<Vec<_>>()
        .join(t.list_sep)
}

fn restored_label(t: &Text, r: &Option<Restored>) -> String {
    match r {
        Some(Restored::Restored) => t.restored_restored.into(),
        Some(Restored::AlreadyIntact) => t.restored_intact.into(),
        Some(Restored::Failed(why)) => format!("{}: {why}", t.restored_failed),
        Some(Restored::NotYet) => t.restored_not_yet.into(),
        None => t.restored_unchecked.into(),
    }
}

fn op_label(t: &Text, op: FileOp) -> &'static str {
    match op {
        FileOp::Write => t.op_write,
        FileOp::Truncate => t.op_truncate,
        FileOp::Create => t.op_create,
        FileOp::Delete => t.op_delete,
        FileOp::Rename => t.op_rename,
    }
}

fn summary(case: &Case, t: &Text, f: &Facts) -> Section {
    let inc = &case.incident;
    let cut = inc.client.as_ref();
    let mut text = match cut {
        // The actor is the server's process for the client: the program that
        // encrypts runs on the client machine, which is what a reader must act on.
        Some(cut) => {
            let shares = cut.client.shares.len().to_string();
            f.fill(t.summary_client_detected) + &f.fill_with(t.summary_client, &[("n", &shares)])
        }
        None => f.fill(t.summary_detected),
    };
    text.push_str(&f.fill(match (inc.action, cut) {
        (Action::Suspended | Action::Killed, Some(_)) => t.summary_client_cut,
        (Action::Suspended, None) => t.summary_suspended,
        (Action::Killed, None) => t.summary_killed,
        (Action::Resumed, _) => t.summary_resumed,
        (Action::Failed, _) => t.summary_failed,
    }));
    text.push_str(&f.fill(if case.files.is_empty() { t.summary_no_files } else { t.summary_files }));
    let mut blocks = vec![Block::Para(text)];
    if inc.action == Action::Failed {
        blocks.push(Block::Important(failed_warning(case, t, f)));
    }
    if let Some(cut) = cut {
        let failed: Vec<&str> = cut.steps.iter().filter(|s| !s.ok).map(|s| cut_label(t, s.kind)).collect();
        if !failed.is_empty() {
            blocks.push(Block::Important(fill(t.summary_client_steps_failed, &[("steps", &failed.join(t.list_sep))])));
        }
    }
    let mut facts = vec![
        (t.l_incident.into(), inc.id.clone()),
        (t.l_detected.into(), f.detected.clone()),
        (t.l_host.into(), host_line(case, t, f)),
    ];
    if let Some(cut) = cut {
        let [machine, address, user, shares] = client_vars(&cut.client, t).map(|(_, v)| v);
        facts.extend([
            (t.l_client_machine.into(), machine),
            (t.l_client_address.into(), address),
            (t.l_client_user.into(), user),
            (t.l_client_shares.into(), shares),
        ]);
    }
    facts.extend([
        (program_label(case, t).into(), non_empty(&inc.actor.exe, t.unknown)),
        (t.l_response.into(), fill(t.response_pids, &[("action", f.action), ("pids", &f.pids)])),
        (t.l_latency.into(), f.latency.clone()),
        (t.l_files.into(), f.fill(t.files_count)),
        (t.l_restore.into(), f.restore.clone()),
        (t.l_family.into(), f.family.clone()),
        (t.l_personal.into(), f.personal_short.clone()),
        (t.l_isolation.into(), f.isolation.clone()),
        (t.l_evidence.into(), f.evidence.clone()),
    ]);
    blocks.push(Block::Facts(facts));
    Section { heading: t.h_summary.into(), blocks }
}

/// With a client, the actor's program is the server that served it, not the ransomware.
fn program_label(case: &Case, t: &Text) -> &'static str {
    if case.incident.client.is_some() {
        t.l_served_by
    } else {
        t.l_program
    }
}

/// A failed stop with a client is ended by unplugging the client, not the server.
fn failed_warning(case: &Case, t: &Text, f: &Facts) -> String {
    if case.incident.client.is_some() {
        f.fill(t.summary_client_failed_warning)
    } else {
        t.summary_failed_warning.into()
    }
}

fn host_line(case: &Case, t: &Text, f: &Facts) -> String {
    let h = &case.host;
    if h.os.is_empty() && h.kernel.is_empty() {
        return f.host.clone();
    }
    fill(
        t.host_detail,
        &[("host", &f.host), ("os", &non_empty(&h.os, t.unknown)), ("kernel", &non_empty(&h.kernel, t.unknown))],
    )
}

fn timeline(case: &Case, t: &Text, f: &Facts) -> Section {
    let mut facts = Vec::new();
    if let Some(first) = f.first_activity {
        facts.push((t.l_first_activity.into(), f.clock.long(first)));
    }
    facts.push((t.l_detected.into(), f.detected.clone()));
    if let Some(stopped) = &f.stopped_at {
        facts.push((t.l_stopped_at.into(), stopped.clone()));
    }
    let mut blocks = vec![Block::Facts(facts)];
    let all = entries(case);
    if all.is_empty() {
        blocks.push(Block::Para(t.timeline_empty.into()));
        return Section { heading: t.h_timeline.into(), blocks };
    }
    let detected = detected_ns(case);
    let dated = all.iter().any(|e| f.clock.day(e.time_ns) != f.clock.day(detected));
    let row = |e: &Entry| {
        vec![
            f.clock.row(e.time_ns, dated),
            e.pid.map_or_else(String::new, |p| p.to_string()),
            what_label(t, e.what).into(),
            entry_detail(t, e),
        ]
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    if all.len() > 2 * TIMELINE_ENDS {
        rows.extend(all[..TIMELINE_ENDS].iter().map(row));
        let skipped = (all.len() - 2 * TIMELINE_ENDS).to_string();
        rows.push(vec!["…".into(), String::new(), fill(t.timeline_skipped, &[("n", &skipped)]), String::new()]);
        rows.extend(all[all.len() - TIMELINE_ENDS..].iter().map(row));
    } else {
        rows.extend(all.iter().map(row));
    }
    blocks.push(Block::Table {
        head: vec![
            fill(t.c_time, &[("zone", &f.clock.zone(detected))]),
            "PID".into(),
            t.c_event.into(),
            t.c_detail.into(),
        ],
        rows,
        more: None,
    });
    blocks.push(Block::Para(fill(t.timeline_exports, &[("n", &all.len().to_string())])));
    Section { heading: t.h_timeline.into(), blocks }
}

fn what_label(t: &Text, what: What) -> &'static str {
    match what {
        What::ProcSeen => t.w_proc,
        What::Open(mode) if mode.writes() => t.w_open_write,
        What::Open(_) => t.w_open_read,
        What::Written => t.w_written,
        What::Created => t.w_created,
        What::Deleted => t.w_deleted,
        What::Renamed => t.w_renamed,
        What::VaultTouched => t.w_vault,
        What::CanaryTouched => t.w_canary,
        What::Trusted => t.w_trusted,
        What::Overflow => t.w_overflow,
    }
}

fn entry_detail(t: &Text, e: &Entry) -> String {
    let mut detail = match e.what {
        What::ProcSeen => e.proc.map(|p| command_line(&p.cmdline)).unwrap_or_default(),
        What::Renamed => format!("{} → {}", e.path.unwrap_or(""), e.to.unwrap_or("")),
        What::Trusted => format!("{} @ {}", e.to.unwrap_or(""), e.path.unwrap_or("")),
        What::Overflow => fill(t.lost_events, &[("n", &e.lost.unwrap_or(0).to_string())]),
        _ => e.path.unwrap_or("").to_string(),
    };
    if let Some(after) = e.after {
        let change = match e.before {
            Some(before) => format!(
                "{} → {}, {} {} → {}",
                kind_name(before.kind),
                kind_name(after.kind),
                t.entropy,
                entropy(before.entropy),
                entropy(after.entropy)
            ),
            None => format!("{}, {} {}", kind_name(after.kind), t.entropy, entropy(after.entropy)),
        };
        detail.push_str(&format!(" ({change})"));
    }
    detail
}

fn stopped(case: &Case, t: &Text, f: &Facts) -> Section {
    let inc = &case.incident;
    let mut facts = vec![
        (t.l_response.into(), f.action.into()),
        ("PID".into(), f.pids.clone()),
        (program_label(case, t).into(), non_empty(&inc.actor.exe, t.unknown)),
        ("SHA-256".into(), case.exe_sha256.clone().unwrap_or_else(|| t.unknown.into())),
        (t.l_cmdline.into(), command_line(&inc.actor.cmdline)),
        (t.l_uid.into(), if inc.actor.uid == u32::MAX { t.unknown.into() } else { inc.actor.uid.to_string() }),
    ];
    if let Some(started) = inc.actor.started_ns {
        facts.push((t.l_started.into(), f.clock.long(started)));
    }
    facts.push((t.l_latency.into(), f.latency.clone()));
    facts.push((t.l_score.into(), format!("{:.1}", inc.score)));
    let mut blocks = Vec::new();
    if inc.client.is_some() {
        blocks.push(Block::Para(f.fill(t.stopped_client)));
    }
    blocks.push(Block::Facts(facts));
    if !inc.reasons.is_empty() {
        blocks.push(Block::Sub(t.reasons.into()));
        blocks.push(Block::List(inc.reasons.iter().map(|r| t.reason(r)).collect()));
    }
    if let Some(cut) = inc.client.as_ref().filter(|c| !c.steps.is_empty()) {
        blocks.push(Block::Sub(t.h_cut.into()));
        blocks.push(Block::Table {
            head: vec![t.c_when.into(), t.c_step.into(), t.c_result.into(), t.c_detail.into()],
            rows: cut
                .steps
                .iter()
                .map(|s| {
                    vec![cut_time(s, t, f), cut_label(t, s.kind).into(), cut_result(t, s).into(), s.detail.clone()]
                })
                .collect(),
            more: None,
        });
    }
    let ended = inc.client.as_ref().is_some_and(client_ended);
    match inc.action {
        Action::Suspended if !ended => blocks.push(Block::Important(f.fill(t.suspended_hint))),
        Action::Failed => blocks.push(Block::Important(failed_warning(case, t, f))),
        Action::Suspended | Action::Killed | Action::Resumed => {}
    }
    Section { heading: t.h_stopped.into(), blocks }
}

fn files(case: &Case, t: &Text) -> Section {
    if case.files.is_empty() {
        return Section { heading: t.h_files.into(), blocks: vec![Block::Para(t.files_none.into())] };
    }
    // Failures first, so a capped table never hides what still needs work.
    let rank = |r: &Option<Restored>| match r {
        Some(Restored::Failed(_)) => 0,
        Some(Restored::NotYet) => 1,
        None => 2,
        Some(Restored::Restored) => 3,
        Some(Restored::AlreadyIntact) => 4,
    };
    let mut list: Vec<&FileOutcome> = case.files.iter().collect();
    list.sort_by_key(|f| rank(&f.restored));
    let rows = list
        .iter()
        .take(MAX_FILE_ROWS)
        .map(|f| {
            vec![
                f.path.clone(),
                op_label(t, f.op).into(),
                f.to.clone().unwrap_or_default(),
                restored_label(t, &f.restored),
            ]
        })
        .collect();
    let more = (case.files.len() > MAX_FILE_ROWS)
        .then(|| fill(t.files_more, &[("n", &(case.files.len() - MAX_FILE_ROWS).to_string())]));
    Section {
        heading: t.h_files.into(),
        blocks: vec![
            Block::Para(fill(t.files_intro, &[("n", &case.files.len().to_string())])),
            Block::Table {
                head: vec![t.c_path.into(), t.c_op.into(), t.c_new_name.into(), t.c_restore.into()],
                rows,
                more,
            },
        ],
    }
}

fn reason_label(t: &Text, reason: Reason) -> &'static str {
    match reason {
        Reason::Customers => t.r_customers,
        Reason::Employees => t.r_employees,
        Reason::Payroll => t.r_payroll,
        Reason::Medical => t.r_medical,
        Reason::Applicants => t.r_applicants,
        Reason::People => t.r_people,
    }
}

fn reasons_line(t: &Text, p: &PersonalData) -> String {
    p.by_reason
        .iter()
        .map(|(r, n)| fill(t.count_of, &[("label", reason_label(t, *r)), ("n", &n.to_string())]))
        .collect::<Vec<_>>()
        .join(t.list_sep)
}

fn personal(t: &Text, p: &PersonalData) -> Section {
    let mut blocks = Vec::new();
    if p.likely {
        blocks.push(Block::Important(fill(t.personal_likely, &[("n", &p.files.to_string())])));
        blocks.push(Block::Table {
            head: vec![t.c_reason.into(), t.c_count.into()],
            rows: p.by_reason.iter().map(|(r, n)| vec![reason_label(t, *r).into(), n.to_string()]).collect(),
            more: None,
        });
    } else {
        blocks.push(Block::Para(t.personal_unlikely.into()));
    }
    blocks.push(Block::Para(t.personal_method.into()));
    Section { heading: t.h_personal.into(), blocks }
}

fn automatic(case: &Case, t: &Text, f: &Facts) -> Section {
    let inc = &case.incident;
    let mut done = match &inc.client {
        // Its steps say what became of the server's processes, each with its
        // own time and outcome, so the line about "the program" would only mislead.
        Some(cut) => {
            let mut done = vec![f.fill(t.auto_client)];
            done.extend(cut.steps.iter().map(|s| cut_line(s, t, f)));
            done
        }
        None => vec![f.fill(match inc.action {
            Action::Suspended => t.auto_suspended,
            Action::Killed => t.auto_killed,
            Action::Resumed => t.auto_resumed,
            Action::Failed => t.auto_failed,
        })],
    };
    let restored = case.files.iter().filter(|f| f.restored == Some(Restored::Restored)).count();
    if restored > 0 {
        done.push(fill(t.auto_restored, &[("n", &restored.to_string())]));
    }
    if case.files.iter().any(|f| matches!(f.restored, None | Some(Restored::NotYet))) {
        done.push(f.fill(t.auto_vault));
    }
    match &case.isolation {
        Some(how) => done.push(fill(t.auto_isolated, &[("how", how)])),
        // Cutting off the one client is what kept everyone else working:
        // advice to take the server off the network would undo that.
        None if inc.client.is_some() => {}
        None => done.push(t.auto_not_isolated.into()),
    }
    done.push(match &case.evidence {
        Some(e) => fill(t.auto_evidence, &[("dir", &e.dir), ("head", &e.chain_head), ("key", &e.key_fingerprint)]),
        None => t.auto_no_evidence.into(),
    });
    if !case.notes.is_empty() {
        done.push(fill(t.auto_notes, &[("n", &case.notes.len().to_string())]));
    }
    Section { heading: t.h_automatic.into(), blocks: vec![Block::List(done)] }
}

fn family(case: &Case, t: &Text) -> Section {
    let blocks = match &case.family {
        None => {
            let mut blocks = vec![Block::Para(t.family_unknown.into())];
            if !case.candidates.is_empty() {
                blocks.push(Block::Sub(t.family_candidates.into()));
                let weight = |c: &Candidate| c.weight.to_string();
                let lines = case
                    .candidates
                    .iter()
                    .map(|c| fill(t.family_candidate, &[("family", &c.family), ("weight", &weight(c))]));
                blocks.push(Block::List(lines.collect()));
            }
            blocks.push(Block::Para(t.family_hint.into()));
            blocks
        }
        Some(fam) => {
            let decryptor = fam
                .decryptor
                .as_ref()
                .map_or_else(|| t.decryptor_none.to_string(), |d| format!("{} — {}", d.name, d.url));
            let mut blocks = vec![Block::Facts(vec![
                (t.l_family_name.into(), fam.name.clone()),
                (t.confidence.into(), confidence(t, fam)),
                (t.l_decryptor.into(), decryptor),
            ])];
            let evidence = if fam.matched.is_empty() { fam.evidence.clone() } else { matched_lines(fam, t) };
            if !evidence.is_empty() {
                blocks.push(Block::Sub(t.family_evidence.into()));
                blocks.push(Block::List(evidence));
            }
            blocks.push(Block::Para(t.family_caution.into()));
            blocks
        }
    };
    Section { heading: t.h_family.into(), blocks }
}

/// The identifier's confidence in the report's language.
fn confidence(t: &Text, fam: &Family) -> String {
    match fam.confidence.as_str() {
        "high" => t.confidence_high.into(),
        "medium" => t.confidence_medium.into(),
        "low" => t.confidence_low.into(),
        other => other.into(),
    }
}

/// What matched, in the report's language: the kinds that agreed, then
/// each marker and the note or file that showed it.
fn matched_lines(fam: &Family, t: &Text) -> Vec<String> {
    let label = |kind: &str| match kind {
        "name" => t.marker_name,
        "phrase" => t.marker_phrase,
        "contact" => t.marker_contact,
        "note_name" => t.marker_note_name,
        "extension" => t.marker_extension,
        "trailer" => t.marker_trailer,
        "channel" => t.marker_channel,
        "id_shape" => t.marker_id_shape,
        _ => t.unknown,
    };
    let mut kinds: Vec<&str> = Vec::new();
    for m in &fam.matched {
        if !kinds.contains(&m.kind.as_str()) {
            kinds.push(&m.kind);
        }
    }
    let agreed: Vec<&str> = kinds.iter().map(|k| label(k)).collect();
    let mut lines =
        vec![fill(t.family_agreed, &[("n", &kinds.len().to_string()), ("kinds", &agreed.join(t.list_sep))])];
    lines.extend(
        fam.matched
            .iter()
            .map(|m| fill(t.family_match, &[("sample", &m.sample), ("kind", label(&m.kind)), ("text", &m.text)])),
    );
    lines
}

fn notes(case: &Case, t: &Text) -> Section {
    let mut blocks = Vec::new();
    if case.notes.is_empty() {
        blocks.push(Block::Para(t.notes_none.into()));
    }
    for note in &case.notes {
        blocks.push(Block::Sub(note.path.clone()));
        blocks.push(Block::Verbatim(note.excerpt.clone()));
    }
    blocks.push(Block::Important(t.notes_warning.into()));
    Section { heading: t.h_notes.into(), blocks }
}

fn checklist(case: &Case, t: &Text, f: &Facts) -> Section {
    let items = |list: &[&str]| list.iter().map(|s| f.fill(s)).collect::<Vec<_>>();
    let (first_30_min, first_24_hours) = if case.incident.client.is_some() {
        // The client machine is what to isolate; the server keeps serving
        // everyone else, so it stays on the network.
        let mut first = items(t.checklist_client);
        first.push(f.fill(t.checklist_keep_host_on));
        let unblocked =
            case.incident.client.iter().flat_map(|c| &c.steps).any(|s| s.kind == CutKind::Unblocked && s.ok);
        (first, if unblocked { Vec::new() } else { vec![f.fill(t.checklist_client_unblock)] })
    } else {
        (items(&[t.checklist_keep_host_on, t.checklist_isolate_host]), Vec::new())
    };
    Section {
        heading: t.h_checklist.into(),
        blocks: vec![
            Block::Sub(t.next_30_min.into()),
            Block::Checklist([first_30_min, items(t.checklist_30_min)].concat()),
            Block::Sub(t.next_24_hours.into()),
            Block::Checklist([first_24_hours, items(t.checklist_24_hours)].concat()),
            Block::Sub(t.contacts_heading.into()),
            Block::List(items(t.contacts)),
            Block::Sub(t.tell_heading.into()),
            Block::List(items(t.tell)),
        ],
    }
}

fn ppc(case: &Case, t: &Text, f: &Facts) -> Section {
    let mut first = f.fill(if case.incident.client.is_some() { t.ppc_overview_client } else { t.ppc_overview });
    if let Some(ns) = f.first_activity {
        first.push_str(&fill(t.ppc_first_change, &[("time", &f.clock.long(ns))]));
    }
    first.push_str(t.ppc_rest_to_fill);
    let items = if f.personal.likely {
        fill(t.ppc_items_likely, &[("n", &f.personal.files.to_string()), ("reasons", &reasons_line(t, &f.personal))])
    } else {
        t.ppc_items_unlikely.into()
    };
    let family = case.family.as_ref().map_or(t.unknown, |fam| fam.name.as_str());
    let secondary = if leak_threat(case) { t.ppc_secondary_leak } else { t.ppc_secondary };
    let mut measures = Vec::new();
    if matches!(case.incident.action, Action::Suspended | Action::Killed) {
        measures.push(fill(t.measure_action, &[("action", f.action)]));
    }
    if let Some(how) = &case.isolation {
        measures.push(fill(t.measure_isolation, &[("how", how)]));
    }
    if case.files.iter().any(|f| f.restored == Some(Restored::Restored)) {
        measures.push(fill(t.measure_restore, &[("restore", &f.restore)]));
    }
    if case.evidence.is_some() {
        measures.push(t.measure_evidence.into());
    }
    if measures.is_empty() {
        measures.push(t.to_fill.into());
    }
    let values = [
        first,
        items,
        t.ppc_people.to_string(),
        fill(t.ppc_cause, &[("family", family)]),
        secondary.to_string(),
        t.to_fill.to_string(),
        t.to_fill.to_string(),
        fill(t.ppc_prevention, &[("done", &measures.join(t.list_sep))]),
        f.fill(t.ppc_other),
    ];
    Section {
        heading: t.h_ppc.into(),
        blocks: vec![
            Block::Para(t.ppc_intro.into()),
            Block::Important(t.ppc_deadlines.into()),
            Block::Table {
                head: vec![t.c_item.into(), t.c_content.into()],
                rows: t.ppc_items.iter().zip(values).map(|(label, value)| vec![label.to_string(), value]).collect(),
                more: None,
            },
        ],
    }
}

fn nco(case: &Case, t: &Text, f: &Facts) -> Section {
    let note = case.notes.first().map_or_else(
        || t.notes_none.to_string(),
        |n| {
            let line = n.excerpt.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = line.chars().take(NOTE_LINE).collect();
            let cut = if short.len() < line.len() { "…" } else { "" };
            fill(t.quote, &[("path", &n.path), ("text", &format!("{short}{cut}"))])
        },
    );
    let extensions = new_extensions(case);
    let extensions = if extensions.is_empty() {
        t.nco_no_extension.to_string()
    } else {
        extensions
            .iter()
            .map(|(ext, n)| fill(t.count_of, &[("label", &format!(".{ext}")), ("n", &n.to_string())]))
            .collect::<Vec<_>>()
            .join(t.list_sep)
    };
    let encrypted = case.files.iter().any(|f| matches!(f.op, FileOp::Write | FileOp::Truncate | FileOp::Rename));
    let damage = fill(
        t.nco_damage,
        &[
            ("encryption", if encrypted { t.yes } else { t.no }),
            ("leak", if leak_threat(case) { t.nco_leak_yes } else { t.nco_leak_no }),
        ],
    );
    let mut indicators = Vec::new();
    // With a client, the processes seen are the server's own (Samba): their
    // hash and name would flag a legitimate program; the client is the indicator.
    let by_client = case.incident.client.is_some();
    if by_client {
        indicators.push(f.fill(t.nco_client));
    }
    if let Some(sha) = case.exe_sha256.as_ref().filter(|_| !by_client) {
        indicators.push(format!("SHA-256 {sha} ({})", case.incident.actor.exe));
    }
    let tools: BTreeSet<&str> = case
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Proc(p) if !p.exe.is_empty() => Some(p.exe.as_str()),
            _ => None,
        })
        .chain((!case.incident.actor.exe.is_empty()).then_some(case.incident.actor.exe.as_str()))
        .collect();
    if !tools.is_empty() && !by_client {
        indicators.push(format!("{}: {}", t.nco_tools, tools.into_iter().collect::<Vec<_>>().join(", ")));
    }
    if !case.remote_addrs.is_empty() {
        indicators.push(format!("{}: {}", t.nco_addresses, case.remote_addrs.join(", ")));
    }
    let indicators = if indicators.is_empty() { t.to_fill.to_string() } else { indicators.join(" / ") };
    let route = if by_client { f.fill(t.nco_route_client) } else { t.nco_route_value.into() };
    let contact = contacts(case);
    let demand = if contact.is_empty() {
        t.nco_demand_unknown.to_string()
    } else {
        fill(t.nco_demand, &[("contacts", &contact.join(", "))])
    };
    Section {
        heading: t.h_nco.into(),
        blocks: vec![
            Block::Para(t.nco_intro.into()),
            Block::Facts(vec![
                (t.nco_note.into(), note),
                (t.nco_extension.into(), extensions),
                (t.nco_damage_label.into(), damage),
                (t.nco_route.into(), route),
                (t.nco_indicators.into(), indicators),
                (t.nco_demand_label.into(), demand),
                (t.l_detected.into(), f.detected.clone()),
            ]),
        ],
    }
}
