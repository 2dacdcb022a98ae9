//! Human output: logging, tables, colour only on a terminal.

use std::io::IsTerminal;

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAMORI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if !std::io::stdout().is_terminal() {
        t.force_no_tty();
    }
    t.set_header(header.iter().map(Cell::new));
    t
}

/// A cell coloured red (on a terminal), for what needs attention.
pub fn alert(text: impl ToString) -> Cell {
    Cell::new(text).fg(Color::Red)
}

pub fn good(text: impl ToString) -> Cell {
    Cell::new(text).fg(Color::Green)
}

/// `text` fit to print on a terminal: names come from folders that users
/// control, and a name with escape sequences could rewrite what the
/// administrator sees (hide a line, fake a result). Control characters are
/// shown escaped; everything else, Japanese included, as it is.
pub fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect::<String>()
        .into()
}

/// One of an incident's reasons as a terminal line: worded as the English
/// report words it, escaped because its examples are paths users name.
pub fn reason(r: &mamori_store::Reason) -> String {
    escaped(&mamori_report::reason(r, mamori_report::Lang::En)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(escaped("請求書.pdf"), "請求書.pdf");
        assert_eq!(escaped("a\x1b[2K\rok.pdf"), "a\\u{1b}[2K\\rok.pdf");
        assert!(!escaped("x\ny\u{7}").chars().any(char::is_control));
    }
}
