//! `mamori replay trace.jsonl`: every line that parses as an event goes to
//! the engine. No trace may make the parse or the engine panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mamori_engine::{Config, Engine};
use mamori_event::Event;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut engine = Engine::new(Config::default());
    for line in text.lines() {
        if let Ok(ev) = serde_json::from_str::<Event>(line) {
            let _ = engine.process(&ev);
        }
    }
});
