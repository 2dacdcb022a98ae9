//! Writes a [`Doc`] as plain text for a terminal: headings underlined,
//! facts as `label: value`, lists with `-` and `[ ]`. Every text from the
//! case or the host (paths, config lines, notes) has its control characters
//! shown as `\xNN`, so an escape sequence in a file name cannot drive the
//! reader's terminal.

use crate::doc::{Block, Doc};

pub(crate) fn text(doc: &Doc) -> String {
    let mut out = underlined(&doc.title, '=');
    for section in &doc.sections {
        out.push('\n');
        out.push_str(&underlined(&section.heading, '-'));
        for block in &section.blocks {
            block_text(&mut out, block);
        }
    }
    out.push_str(&format!("\n{}\n", plain(&doc.footer)));
    out
}

fn underlined(heading: &str, with: char) -> String {
    let heading = plain(heading);
    // East Asian characters take two columns.
    let width: usize = heading.chars().map(|c| if c.len_utf8() > 2 { 2 } else { 1 }).sum();
    format!("{heading}\n{}\n", with.to_string().repeat(width))
}

fn block_text(out: &mut String, block: &Block) {
    match block {
        Block::Para(text) => out.push_str(&format!("{}\n", plain(text))),
        Block::Important(text) => out.push_str(&format!("!! {}\n", plain(text))),
        Block::Sub(text) => out.push_str(&format!("\n* {}\n", plain(text))),
        Block::Facts(pairs) => {
            for (label, value) in pairs {
                out.push_str(&format!("  {}: {}\n", plain(label), plain(value)));
            }
        }
        Block::Table { head, rows, more } => {
            out.push_str(&format!("  {}\n", row(head)));
            for r in rows {
                out.push_str(&format!("  {}\n", row(r)));
            }
            if let Some(more) = more {
                out.push_str(&format!("  {}\n", plain(more)));
            }
        }
        Block::List(items) => {
            for item in items {
                out.push_str(&format!("  - {}\n", plain(item)));
            }
        }
        Block::Checklist(items) => {
            for item in items {
                out.push_str(&format!("  [ ] {}\n", plain(item)));
            }
        }
        Block::Verbatim(text) => {
            for line in text.lines() {
                out.push_str(&format!("    {}\n", plain(line)));
            }
        }
    }
}

fn row(cells: &[String]) -> String {
    cells.iter().map(|c| plain(c)).collect::<Vec<_>>().join(" | ")
}

/// One line of text with every control character shown as `\xNN`.
fn plain(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { format!("\\x{:02x}", u32::from(c)) } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Section;

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        let doc = Doc {
            lang: "en",
            title: "T\u{1b}[2J".into(),
            sections: vec![Section {
                heading: "点検".into(),
                blocks: vec![Block::Facts(vec![("found".into(), "a\u{1b}]0;owned\u{7}b\nc".into())])],
            }],
            footer: "f".into(),
        };
        let text = text(&doc);
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
        assert!(text.contains("  found: a\\x1b]0;owned\\x07b\\x0ac"), "{text}");
        assert!(text.contains("点検\n----\n"), "two columns a character: {text}");
    }
}
