//! Incident reports and timeline exports for mamori.
//!
//! The binary fills a [`Case`] (the incident, the actor's events, the host,
//! what restore did, the family if known, the notes found, the evidence) and
//! gets back:
//! - a report for people, in Japanese or English, as Markdown or HTML
//!   ([`render`]): what happened, what was stopped, which files were hit and
//!   restored, whether personal data may be involved, the first-response
//!   checklist and the items Japan's breach and incident-report forms ask for;
//! - timelines for tools: Timesketch ([`timesketch`]) and Elastic Common
//!   Schema ([`ecs`]) JSON lines.
//!
//! One composer builds a language- and format-neutral document from a string
//! table per language; one writer per format prints it.

mod audit;
mod case;
mod compose;
mod doc;
mod ecs;
mod error;
mod html;
mod indicators;
mod markdown;
mod personal;
mod text;
mod text_out;
mod time;
mod timeline;
mod timesketch;

pub use case::{
    hostname, Candidate, Case, Decryptor, EvidenceRef, Family, FileOutcome, Host, Matched, NoteFound, Restored,
};
pub use ecs::{ecs, ECS_VERSION};
pub use error::ReportError;
pub use personal::{personal_data, PersonalData, Reason};
pub use timesketch::{timesketch, TsFormat, COLUMNS};

/// The report's language. Both are written natively, from one string table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

/// Markdown (GitHub-flavoured), a self-contained, printable HTML page, or
/// plain text for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
    Text,
}

fn write(doc: &doc::Doc, format: Format) -> String {
    match format {
        Format::Markdown => markdown::markdown(doc),
        Format::Html => html::html(doc),
        Format::Text => text_out::text(doc),
    }
}

impl Lang {
    fn text(self) -> &'static text::Text {
        match self {
            Lang::Ja => &text::JA,
            Lang::En => &text::EN,
        }
    }
}

/// The incident report for people.
pub fn render(case: &Case, lang: Lang, format: Format) -> String {
    write(&compose::compose(case, lang.text()), format)
}

/// The audit report for people (`mamori audit --format md|html`).
pub fn render_audit(audit: &mamori_audit::Audit, lang: Lang, format: Format) -> String {
    write(&audit::compose(audit, lang), format)
}

/// One of an incident's reasons as a line, as the report words it (for the
/// terminal, which shows reasons without a whole report).
pub fn reason(reason: &mamori_store::Reason, lang: Lang) -> String {
    lang.text().reason(reason)
}
