//! The `process-per-file` and `setsid` families re-execute the running binary, so this
//! test binary plays the CLI: with `__sim-child` as its first argument it is
//! a child, otherwise it is the test (the std harness cannot do both).

use std::path::Path;
use std::time::Duration;

mod common;
use common::files;
use mamori_sim::{child_main, make_corpus, run, CorpusSpec, RunOptions, CHILD_ARG};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_ARG) {
        if let Err(e) = child_main(&args[1..]) {
            eprintln!("child: {e}");
            std::process::exit(1);
        }
        return;
    }
    let passed = usize::from(one_child_per_file("process-per-file", "pwned"))
        + usize::from(one_child_per_file("setsid", "sess"));
    println!("test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

fn one_child_per_file(family: &str, ext: &str) -> bool {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("target");
    make_corpus(&dir, &CorpusSpec { docs: 12, large: 0, large_size: 0 }).unwrap();
    let before = files(&dir);
    let report = run(family, &dir, &RunOptions { delay: Some(Duration::ZERO), max_files: None }).unwrap();
    assert_eq!((report.files_encrypted, report.errors), (before.len(), 0), "{family}: {report:?}");
    for path in &before {
        assert!(!path.exists(), "{family}: {} was not renamed", path.display());
        let enc = Path::new(&format!("{}.{ext}", path.display())).to_path_buf();
        assert!(enc.is_file(), "{}", enc.display());
    }
    true
}
