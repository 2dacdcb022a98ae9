//! Writes a [`Doc`] as one self-contained HTML page: no scripts, no outside
//! resources, every text escaped, styled for screen and for print.

use crate::doc::{Block, Doc};

/// Cells up to this many characters are never wrapped.
const SHORT_CELL: usize = 14;

const STYLE: &str = r#"
body { font-family: "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", Meiryo, system-ui, sans-serif;
       line-height: 1.6; color: #111; background: #fff; margin: 0; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; border-bottom: 3px solid #b00; padding-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #999; }
h3 { font-size: 1.05rem; margin: 1rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #999; padding: .25rem .5rem; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
thead th, table.facts th { background: #eee; }
table.facts th { width: 14em; font-weight: 600; }
.important { border-left: 4px solid #b00; background: #fff3f3; padding: .5rem .75rem; font-weight: 600; }
ul.checklist { list-style: none; padding-left: 1.8rem; }
ul.checklist li { text-indent: -1.3rem; }
ul.checklist li::before { content: "\2610\00a0"; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f6f6; border: 1px solid #ccc; padding: .5rem; font-size: .85rem; }
td.short { white-space: nowrap; }
.more { font-style: italic; }
footer { margin-top: 2rem; padding-top: .5rem; font-size: .85rem; color: #444; border-top: 1px solid #999; }
@media print {
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  h2, h3 { break-after: avoid; }
  tr, pre, .important { break-inside: avoid; }
  thead { display: table-header-group; }
  .important { background: none; }
  @page { margin: 15mm; }
}
"#;

pub(crate) fn html(doc: &Doc) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n",
        doc.lang,
        escape(&doc.title),
        escape(&doc.title)
    );
    for section in &doc.sections {
        out.push_str(&format!("<section>\n<h2>{}</h2>\n", escape(&section.heading)));
        for block in &section.blocks {
            block_html(&mut out, block);
        }
        out.push_str("</section>\n");
    }
    out.push_str(&format!("<footer>{}</footer>\n</main>\n</body>\n</html>\n", escape(&doc.footer)));
    out
}

fn block_html(out: &mut String, block: &Block) {
    match block {
        Block::Para(text) => out.push_str(&format!("<p>{}</p>\n", escape(text))),
        Block::Important(text) => out.push_str(&format!("<p class=\"important\">{}</p>\n", escape(text))),
        Block::Sub(text) => out.push_str(&format!("<h3>{}</h3>\n", escape(text))),
        Block::Facts(pairs) => {
            out.push_str("<table class=\"facts\">\n");
            for (label, value) in pairs {
                out.push_str(&format!("<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n", escape(label), escape(value)));
            }
            out.push_str("</table>\n");
        }
        Block::Table { head, rows, more } => {
            out.push_str("<table>\n<thead><tr>");
            for h in head {
                out.push_str(&format!("<th scope=\"col\">{}</th>", escape(h)));
            }
            out.push_str("</tr></thead>\n<tbody>\n");
            for row in rows {
                out.push_str("<tr>");
                for cell in row {
                    // Times, pids and counts stay on one line; paths may break anywhere.
                    let class = if cell.chars().count() <= SHORT_CELL { " class=\"short\"" } else { "" };
                    out.push_str(&format!("<td{class}>{}</td>", escape(cell)));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n");
            if let Some(more) = more {
                out.push_str(&format!("<p class=\"more\">{}</p>\n", escape(more)));
            }
        }
        Block::List(items) => list(out, "<ul>", items),
        Block::Checklist(items) => list(out, "<ul class=\"checklist\">", items),
        Block::Verbatim(text) => out.push_str(&format!("<pre>{}</pre>\n", escape_keeping_lines(text))),
    }
}

fn list(out: &mut String, open: &str, items: &[String]) {
    out.push_str(open);
    out.push('\n');
    for item in items {
        out.push_str(&format!("<li>{}</li>\n", escape(item)));
    }
    out.push_str("</ul>\n");
}

/// Escapes markup and shows control characters (a newline in a file name) as `\xNN`.
fn escape(text: &str) -> String {
    escape_with(text, |_| false)
}

fn escape_keeping_lines(text: &str) -> String {
    escape_with(text.trim_end(), |c| c == '\n' || c == '\t')
}

fn escape_with(text: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && !keep(c) => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}
