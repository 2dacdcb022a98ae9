//! The agent's configuration file: no text may make `Settings::parse` panic.
//! `mamori` is a binary crate; its settings module is compiled in as is.
#![no_main]
#![allow(dead_code)]

#[path = "../../src/settings.rs"]
mod settings;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(s) = settings::Settings::parse(text) {
        let _ = s.engine();
        let _ = s.state_dir(None);
    }
});
