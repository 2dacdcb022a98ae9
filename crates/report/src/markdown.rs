//! Writes a [`Doc`] as GitHub-flavoured Markdown. Text from the case (paths,
//! notes) is escaped so that it can neither format itself nor break a table.

use crate::doc::{Block, Doc};

pub(crate) fn markdown(doc: &Doc) -> String {
    let mut out = format!("# {}\n", escape(&doc.title));
    for section in &doc.sections {
        out.push_str(&format!("\n## {}\n", escape(&section.heading)));
        for block in &section.blocks {
            out.push('\n');
            block_md(&mut out, block);
        }
    }
    out.push_str(&format!("\n---\n\n{}\n", escape(&doc.footer)));
    out
}

fn block_md(out: &mut String, block: &Block) {
    match block {
        Block::Para(text) => out.push_str(&format!("{}\n", escape(text))),
        Block::Important(text) => out.push_str(&format!("> **{}**\n", escape(text))),
        Block::Sub(text) => out.push_str(&format!("### {}\n", escape(text))),
        Block::Facts(pairs) => {
            for (label, value) in pairs {
                out.push_str(&format!("- **{}**: {}\n", escape(label), escape(value)));
            }
        }
        Block::Table { head, rows, more } => {
            out.push_str(&row(head));
            out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
            for r in rows {
                out.push_str(&row(r));
            }
            if let Some(more) = more {
                out.push_str(&format!("\n{}\n", escape(more)));
            }
        }
        Block::List(items) => {
            for item in items {
                out.push_str(&format!("- {}\n", escape(item)));
            }
        }
        Block::Checklist(items) => {
            for item in items {
                out.push_str(&format!("- [ ] {}\n", escape(item)));
            }
        }
        Block::Verbatim(text) => {
            // A fence longer than any backtick run inside cannot be closed by the text.
            let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
            let fence = "`".repeat((longest + 1).max(3));
            out.push_str(&format!("{fence}text\n{}\n{fence}\n", verbatim(text)));
        }
    }
}

fn row(cells: &[String]) -> String {
    let cells: Vec<String> = cells.iter().map(|c| escape(c)).collect();
    format!("| {} |\n", cells.join(" | "))
}

/// Backslash-escapes Markdown's active characters, including `|` for tables,
/// and shows control characters (a newline in a file name) as `\xNN`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Keeps line breaks and tabs, shows other control characters (terminal escapes in a note).
fn verbatim(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if c.is_control() => format!("\\x{:02x}", u32::from(c)),
            c => c.to_string(),
        })
        .collect::<String>()
        .trim_end()
        .to_string()
}
