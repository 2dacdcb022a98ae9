//! Names are bytes: files named in Shift-JIS (as on shares that outlived
//! older systems) are detected, kept and put back under their own names.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// "旧共有" in Shift-JIS, after a `!` so that the simulator (which walks in
/// byte order) reaches this folder before the corpus: the stop comes after
/// these files were encrypted.
const FOLDER: &[u8] = b"!\x8b\x8c\x8b\xa4\x97\x4c";
/// "請求書", "見積書", "契約書", "議事録" in Shift-JIS.
const STEMS: [&[u8]; 4] = [
    b"\x90\xbf\x8b\x81\x8f\x91",
    b"\x8c\xa9\x90\xcf\x8f\x91",
    b"\x8c\x5f\x96\xf1\x8f\x91",
    b"\x8b\x63\x8e\x96\x98\x5e",
];

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn shift_jis_names_are_restored_under_their_own_bytes() {
    let user = mamori_testuser::ordinary();
    let ws = Workspace::new();
    std::fs::set_permissions(ws.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    ws.corpus(40, 0);
    // Copies of corpus documents (real formats, so their encryption counts)
    // under Shift-JIS names.
    let mut corpus = Vec::new();
    files_under(&ws.data, &mut corpus);
    corpus.retain(|p| p.extension().is_some_and(|e| ["docx", "xlsx", "pdf", "txt", "md"].iter().any(|x| e == *x)));
    corpus.sort();
    let folder = ws.data.join(OsStr::from_bytes(FOLDER));
    std::fs::create_dir(&folder).unwrap();
    let mut originals: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for (i, src) in corpus.iter().take(12).enumerate() {
        let mut name = STEMS[i % STEMS.len()].to_vec();
        name.extend_from_slice(format!("_{i:02}.").as_bytes());
        name.extend_from_slice(src.extension().unwrap().as_bytes());
        let path = folder.join(OsString::from_vec(name));
        let bytes = std::fs::read(src).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        originals.push((path, bytes));
    }
    let chown = Command::new("chown").arg("-R").arg(format!("{}:{}", user.uid, user.gid)).arg(&ws.data).status();
    assert!(chown.unwrap().success());

    let cfg = ws.config("[canary]\nenabled = false\n");
    let agent = ws.start_agent(Some(&cfg));
    let mut sim = ws.simulate_as(&user, "overwrite");
    let mut incidents = ws.wait_for_incident(&mut sim.0, Duration::from_secs(120));
    assert_eq!(incidents.len(), 1, "{incidents:#?}\n{}", agent.log());
    let inc = incidents.remove(0);
    ws.kill(&inc);

    let changed = originals.iter().filter(|(p, b)| std::fs::read(p).ok().as_ref() != Some(b)).count();
    assert!(changed >= 3, "the attack changed {changed} of the Shift-JIS files");

    let out = mamori(&["restore", inc["id"].as_str().unwrap(), "--state", ws.state.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}\n{}", agent.log());
    for (path, bytes) in &originals {
        let now = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}\n{said}", path.display()));
        assert!(now == *bytes, "{} is not back as it was\n{said}", path.display());
    }
    let mut all = Vec::new();
    files_under(&ws.data, &mut all);
    let lossy: Vec<_> =
        all.iter().filter(|p| p.to_string_lossy().contains('\u{fffd}') && p.to_str().is_some()).collect();
    assert!(lossy.is_empty(), "restore made files under lossy names: {lossy:#?}\n{said}");

    // The incident names the files by their escaped bytes, never U+FFFD.
    let paths: Vec<&str> = inc["files"].as_array().unwrap().iter().filter_map(|f| f["path"].as_str()).collect();
    let escaped_folder = mamori_event::names::encode(&folder);
    let hit = paths.iter().filter(|p| p.starts_with(&escaped_folder)).count();
    assert!(hit >= 3, "the attack was stopped before it reached the Shift-JIS files: {paths:#?}");
    assert!(!paths.iter().any(|p| p.contains('\u{fffd}')), "{paths:#?}");

    // The listing shows names escaped: printable, not raw bytes.
    let listed = mamori(&["incidents", "--state", ws.state.to_str().unwrap()]);
    assert!(listed.status.success());
    let listed = String::from_utf8(listed.stdout).expect("the listing is UTF-8");
    assert!(!listed.contains('\u{fffd}'), "{listed}");
    assert!(listed.contains(&escaped_folder), "{listed}");

    agent.stop();
}
