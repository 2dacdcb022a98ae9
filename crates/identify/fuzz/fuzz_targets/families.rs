//! The families file is loaded by the agent at run time (`STATE/families.toml`)
//! and by `mamori identify --families`: no text may make loading it panic,
//! nor the catalog it yields fail on a note.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mamori_identify::{Catalog, Sample};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(catalog) = Catalog::from_toml(text) {
        // The catalog's own text as a note and as an encrypted file's name
        // and tail reaches every matcher it compiled.
        let name = text.lines().next().unwrap_or_default().to_owned();
        catalog.identify(&[
            Sample::Note { name: name.clone(), text: text.to_owned() },
            Sample::Encrypted { name, tail: data.to_vec() },
        ]);
    }
});
