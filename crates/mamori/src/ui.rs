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
