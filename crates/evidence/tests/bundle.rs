//! A real actor: this test binary re-run as a child that holds a file open, a
//! TCP connection to the test, and a secret in memory, then is SIGSTOPped and
//! collected.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mamori_evidence::{collect, export, genesis, verify, CollectSpec, EvidenceError, Problem, PublicKey, SealKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

const CHILD: &str = "MAMORI_EVIDENCE_CHILD";
const MARK: &str = "MAMORI_EVIDENCE_MARK";

/// The child's part; an ordinary test run passes straight through.
#[test]
fn child_role() {
    let Ok(args) = std::env::var(CHILD) else { return };
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number only. The
    // child must not outlive a test that failed without killing it.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let mut parts = args.split('|');
    let (path, port, seed) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let _file = fs::File::open(path).unwrap();
    let _conn = TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    // Built at run time from the seed, so it exists only in heap memory, not
    // in the environment or command line the seed came through.
    let secret: String = format!("SECRET-{}", seed.chars().rev().collect::<String>());
    let secret = std::hint::black_box(secret);
    // libtest has already printed "test child_role ... " on this line.
    println!("ready");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        std::hint::black_box(&secret);
    }
}

struct Actor {
    child: Child,
    secret: String,
    mark: String,
    file: PathBuf,
    port: u16,
    _peer: Option<TcpStream>,
    _dir: tempfile::TempDir,
}

impl Actor {
    fn start() -> Actor {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("victim.txt");
        fs::write(&file, b"precious").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seed = format!("{}x{}", std::process::id(), port);
        let mark = format!("mark-{seed}");
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
            .env(CHILD, format!("{}|{port}|{seed}", file.display()))
            .env(MARK, &mark)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let secret = format!("SECRET-{}", seed.chars().rev().collect::<String>());
        // Owned by the guard from here on, so a failed assertion still kills it.
        let mut actor = Actor { child, secret, mark, file, port, _peer: None, _dir: dir };
        let out = BufReader::new(actor.child.stdout.take().unwrap());
        assert!(out.lines().map_while(Result::ok).any(|l| l.ends_with("ready")), "the child never got ready");
        actor._peer = Some(listener.accept().unwrap().0);
        // SAFETY: signalling our own child, which has not been waited for.
        assert_eq!(unsafe { libc::kill(actor.pid() as i32, libc::SIGSTOP) }, 0);
        actor
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json(dir: &Path, name: &str) -> Value {
    serde_json::from_slice(&fs::read(dir.join(name)).unwrap()).unwrap()
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn key(dir: &Path) -> SealKey {
    SealKey::load_or_create(&dir.join("evidence.key")).unwrap()
}

fn files_of(dir: &Path) -> Vec<String> {
    fn visit(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                visit(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_str().unwrap().to_owned());
            }
        }
    }
    let mut out = Vec::new();
    visit(dir, dir, &mut out);
    out.sort();
    out
}

fn problems(dir: &Path) -> Vec<String> {
    verify(dir, None).unwrap().problems.iter().map(Problem::to_string).collect()
}

#[test]
fn stopped_actor_is_collected_in_full() {
    let actor = Actor::start();
    let state = tempfile::tempdir().unwrap();
    let out = state.path().join("incident-1");
    let spec = CollectSpec {
        pids: vec![actor.pid()],
        memory_cap: Some(512 * 1024 * 1024),
        extra: vec![("incident.json".into(), b"{\"id\":1}\n".to_vec()), ("notes/analyst.txt".into(), b"hi".to_vec())],
    };
    let bundle = collect(&out, &spec, &key(state.path())).unwrap();
    assert_eq!(fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o700);

    let procs = json(&out, "processes.json");
    let me = procs.as_array().unwrap().iter().find(|p| p["pid"] == actor.pid()).unwrap();
    let exe = fs::read(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(me["exe_sha256"], sha_hex(&exe));
    assert_eq!(me["state"], "T", "the actor is stopped");
    assert!(me["cmdline"].as_array().unwrap().iter().any(|a| a == "child_role"));
    let env = me["environ"].as_array().unwrap();
    assert!(env.iter().any(|e| *e == format!("{MARK}={}", actor.mark)), "{env:?}");

    let fds = json(&out, "open-files.json");
    let held = fds.as_array().unwrap().iter().find(|f| f["target"] == actor.file.to_str().unwrap());
    assert_eq!(held.unwrap()["pid"], actor.pid());

    let net = json(&out, "network.json");
    let remote = format!("127.0.0.1:{}", actor.port);
    let conn = net["connections"].as_array().unwrap().iter().find(|c| c["socket"]["remote"] == remote.as_str());
    let conn = conn.unwrap_or_else(|| panic!("no connection to {remote}: {net}"));
    assert_eq!((&conn["pid"], &conn["socket"]["state"]), (&Value::from(actor.pid()), &Value::from("ESTABLISHED")));
    let listening = net["listening"].as_array().unwrap();
    assert!(listening.iter().all(|s| s["state"] == "LISTEN" || s["proto"].as_str().unwrap().starts_with("udp")));

    let maps = fs::read_to_string(out.join(format!("maps/{}.txt", actor.pid()))).unwrap();
    assert!(maps.contains("[stack]"));

    let images: Vec<String> =
        files_of(&out).into_iter().filter(|f| f.starts_with(&format!("memory/{}-", actor.pid()))).collect();
    assert!(!images.is_empty());
    let needle = actor.secret.as_bytes();
    let found = images.iter().any(|f| fs::read(out.join(f)).unwrap().windows(needle.len()).any(|w| w == needle));
    assert!(found, "the secret is in none of {images:?}");

    let host = json(&out, "host.json");
    assert_eq!(host["boot_id"], fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim());
    assert_eq!(json(&out, "collection.json")["pids"][0], actor.pid());

    assert_eq!(fs::read(out.join("notes/analyst.txt")).unwrap(), b"hi");
    assert_eq!(bundle.entries.len(), files_of(&out).len() - 2, "every file but the manifest and seal is an entry");
    let v = verify(&out, Some(&key(state.path()).public_key())).unwrap();
    assert!(v.is_ok(), "{:?}", v.problems);
    assert_eq!(v.fingerprint.as_deref(), Some(key(state.path()).public_key().fingerprint().as_str()));
}

/// A bundle of the stopped actor with a small memory cap: cheap to copy once
/// per file.
fn small_bundle(state: &Path) -> (Actor, PathBuf) {
    let actor = Actor::start();
    let out = state.join("bundle");
    let spec = CollectSpec {
        pids: vec![actor.pid()],
        memory_cap: Some(64 * 1024),
        extra: vec![("timeline.jsonl".into(), b"{\"t\":1}\n{\"t\":2}\n".to_vec())],
    };
    collect(&out, &spec, &key(state)).unwrap();
    (actor, out)
}

#[test]
fn memory_cap_is_respected_and_cuts_are_listed() {
    let state = tempfile::tempdir().unwrap();
    let (_actor, out) = small_bundle(state.path());
    let total: u64 = files_of(&out)
        .iter()
        .filter(|f| f.starts_with("memory/"))
        .map(|f| fs::metadata(out.join(f)).unwrap().len())
        .sum();
    assert!(total > 0 && total <= 64 * 1024, "{total}");
    let c = json(&out, "collection.json");
    let images = c["memory"].as_array().unwrap();
    assert!(images.iter().any(|i| i["skipped"].as_str().is_some_and(|s| s.contains("cap"))), "{images:?}");
    let kept: u64 = images.iter().map(|i| i["bytes"].as_u64().unwrap()).sum();
    assert_eq!(kept, total);
}

#[test]
fn every_flipped_byte_is_found_and_named() {
    let state = tempfile::tempdir().unwrap();
    let (_actor, out) = small_bundle(state.path());
    assert!(problems(&out).is_empty());
    let files = files_of(&out);
    assert!(files.iter().any(|f| f.starts_with("memory/")) && files.iter().any(|f| f.starts_with("maps/")));
    for (i, f) in files.iter().enumerate() {
        let copy = state.path().join(format!("copy-{i}"));
        export(&out, &copy).unwrap();
        let mut bytes = fs::read(copy.join(f)).unwrap();
        assert!(!bytes.is_empty(), "{f}");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        fs::write(copy.join(f), &bytes).unwrap();
        let found = problems(&copy);
        assert!(found.iter().any(|p| p.contains(f.as_str())), "flipping {f}: {found:?}");
        fs::remove_dir_all(&copy).unwrap();
    }
}

#[test]
fn deleted_added_and_linked_files_are_named() {
    let state = tempfile::tempdir().unwrap();
    let (actor, out) = small_bundle(state.path());
    let maps = format!("maps/{}.txt", actor.pid());
    fs::remove_file(out.join(&maps)).unwrap();
    fs::write(out.join("maps/extra.txt"), b"x").unwrap();
    fs::remove_file(out.join("host.json")).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/random/boot_id", out.join("host.json")).unwrap();
    let found = problems(&out);
    for want in [
        format!("missing: {maps}"),
        "not in manifest: maps/extra.txt".to_owned(),
        "not a regular file: host.json".to_owned(),
        "missing: host.json".to_owned(),
    ] {
        assert!(found.contains(&want), "{want} not in {found:?}");
    }
    assert!(export(&out, &state.path().join("copy")).is_err(), "export refuses a bundle with a link in it");

    // A folder replaced by a link to an identical copy of it: the files are
    // "there" only through the link, which the verifier does not follow.
    let fresh = state.path().join("fresh");
    let spec = CollectSpec { pids: vec![actor.pid()], ..Default::default() };
    collect(&fresh, &spec, &key(state.path())).unwrap();
    let aside = state.path().join("maps-aside");
    fs::rename(fresh.join("maps"), &aside).unwrap();
    std::os::unix::fs::symlink(&aside, fresh.join("maps")).unwrap();
    let found = problems(&fresh);
    assert!(found.contains(&"not a regular file: maps".to_owned()), "{found:?}");
    assert!(found.contains(&format!("missing: {maps}")), "{found:?}");
}

/// Writes `entries` back as a manifest whose chain is recomputed from the
/// documented formula, as someone who edited a file would.
fn rechain(entries: &mut [BTreeMap<String, Value>]) -> String {
    let mut prev = genesis();
    let mut text = String::new();
    for e in entries.iter_mut() {
        let unhex = |v: &Value| -> Vec<u8> {
            let s = v.as_str().unwrap();
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
        };
        let path = e["path"].as_str().unwrap().to_owned();
        let mut h = Sha256::new();
        h.update(prev);
        h.update(e["seq"].as_u64().unwrap().to_be_bytes());
        h.update((path.len() as u64).to_be_bytes());
        h.update(path.as_bytes());
        h.update(e["size"].as_u64().unwrap().to_be_bytes());
        h.update(unhex(&e["sha256"]));
        let hash: [u8; 32] = h.finalize().into();
        e.insert("prev".into(), Value::from(sha_hex_raw(&prev)));
        e.insert("hash".into(), Value::from(sha_hex_raw(&hash)));
        prev = hash;
        // The crate writes fields in declaration order.
        let ordered: Vec<String> = ["seq", "path", "size", "sha256", "prev", "hash"]
            .iter()
            .map(|k| format!("{}:{}", Value::from(*k), e[*k]))
            .collect();
        text += &format!("{{{}}}\n", ordered.join(","));
    }
    text
}

fn sha_hex_raw(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn entries(dir: &Path) -> Vec<BTreeMap<String, Value>> {
    fs::read_to_string(dir.join("manifest.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn manifest_and_seal_edits_fail() {
    let state = tempfile::tempdir().unwrap();
    let (_actor, out) = small_bundle(state.path());
    // The test's own chain reproduces the crate's: the formula is as documented.
    let original = fs::read_to_string(out.join("manifest.jsonl")).unwrap();
    assert_eq!(rechain(&mut entries(&out)), original);

    // A consistent edit of one line (and of its file) breaks the chain at
    // that line.
    let copy = state.path().join("line");
    export(&out, &copy).unwrap();
    let mut es = entries(&copy);
    let target = es[1]["path"].as_str().unwrap().to_owned();
    fs::write(copy.join(&target), b"forged").unwrap();
    es[1].insert("size".into(), Value::from(6));
    es[1].insert("sha256".into(), Value::from(sha_hex(b"forged")));
    let lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let mut edited = rechain(&mut es[..2].to_vec()).lines().nth(1).unwrap().to_owned();
    edited.push('\n');
    let text: String =
        lines.iter().enumerate().map(|(i, l)| if i == 1 { edited.clone() } else { format!("{l}\n") }).collect();
    fs::write(copy.join("manifest.jsonl"), text).unwrap();
    let found = problems(&copy);
    assert!(found.iter().any(|p| p.starts_with("chain broken at seq 2")), "{found:?}");
    assert!(found.contains(&"changed: manifest.jsonl".to_owned()), "{found:?}");
    assert!(!found.contains(&format!("changed: {target}")), "the file matches its forged line: {found:?}");

    // Recomputing the whole chain makes the manifest consistent; only the
    // signature can tell, once the seal is made to match.
    let copy = state.path().join("rechained");
    export(&out, &copy).unwrap();
    let mut es = entries(&copy);
    fs::write(copy.join(&target), b"forged").unwrap();
    es[1].insert("size".into(), Value::from(6));
    es[1].insert("sha256".into(), Value::from(sha_hex(b"forged")));
    let text = rechain(&mut es);
    fs::write(copy.join("manifest.jsonl"), &text).unwrap();
    let mut seal: BTreeMap<String, Value> = serde_json::from_slice(&fs::read(copy.join("seal.json")).unwrap()).unwrap();
    seal.insert("head".into(), es.last().unwrap()["hash"].clone());
    seal.insert("manifest_sha256".into(), Value::from(sha_hex(text.as_bytes())));
    let order = ["version", "head", "entries", "manifest_sha256", "sealed", "public_key", "fingerprint", "signature"];
    let mut seal_text = String::from("{\n");
    for (i, k) in order.iter().enumerate() {
        let v = serde_json::to_string_pretty(&seal[*k]).unwrap().replace('\n', "\n  ");
        seal_text += &format!("  \"{k}\": {v}{}\n", if i + 1 < order.len() { "," } else { "" });
    }
    seal_text += "}\n";
    fs::write(copy.join("seal.json"), seal_text).unwrap();
    assert_eq!(problems(&copy), ["signature invalid: seal.json"]);

    // An edited count in the seal.
    let copy = state.path().join("seal");
    export(&out, &copy).unwrap();
    let text = fs::read_to_string(copy.join("seal.json")).unwrap();
    let n = es.len();
    fs::write(copy.join("seal.json"), text.replace(&format!("\"entries\": {n},"), &format!("\"entries\": {},", n - 1)))
        .unwrap();
    let found = problems(&copy);
    assert!(found.contains(&"signature invalid: seal.json".to_owned()), "{found:?}");
    assert!(found.iter().any(|p| p.contains("differs from seal.json")), "{found:?}");
}

#[test]
fn another_key_fails_only_when_pinned() {
    let state = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let (_actor, out) = small_bundle(other.path());
    let ours = key(state.path()).public_key();
    assert!(verify(&out, None).unwrap().is_ok());
    let v = verify(&out, Some(&ours)).unwrap();
    assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    assert!(v.problems[0].to_string().contains("unexpected key"));
    let theirs = PublicKey::from_hex(&key(other.path()).public_key().to_hex()).unwrap();
    assert!(verify(&out, Some(&theirs)).unwrap().is_ok());
}

#[test]
fn archive_export_verifies_and_keeps_its_name() {
    let state = tempfile::tempdir().unwrap();
    let (_actor, out) = small_bundle(state.path());
    let archive = state.path().join("incident-7.tar.zst");
    export(&out, &archive).unwrap();
    assert!(verify(&archive, None).unwrap().is_ok());
    assert!(matches!(export(&out, &archive), Err(EvidenceError::Exists(_))));
    let unpacked = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .args(["--zstd", "-xf", archive.to_str().unwrap(), "-C", unpacked.path().to_str().unwrap()])
        .status();
    // GNU tar with zstd is an independent reader of the archive, when present.
    if status.is_ok_and(|s| s.success()) {
        assert!(verify(&unpacked.path().join("incident-7"), None).unwrap().is_ok());
    }
}

#[test]
fn an_exited_process_leaves_notes_not_errors() {
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = state.path().join("b");
    let spec = CollectSpec { pids: vec![pid], memory_cap: Some(1 << 20), ..Default::default() };
    let b = collect(&out, &spec, &key(state.path())).unwrap();
    assert!(b.notes.iter().any(|n| n.pid == Some(pid)), "{:?}", b.notes);
    assert!(verify(&out, None).unwrap().is_ok());
}

#[test]
fn refused_inputs() {
    let state = tempfile::tempdir().unwrap();
    let k = key(state.path());
    let busy = state.path().join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("x"), b"").unwrap();
    assert!(matches!(collect(&busy, &CollectSpec::default(), &k), Err(EvidenceError::NotEmpty(_))));
    for name in ["../escape", "/abs", "seal.json", "memory/1-0.bin", "a//b"] {
        let spec = CollectSpec { extra: vec![(name.into(), vec![1])], ..Default::default() };
        let r = collect(&state.path().join(format!("n{}", name.len())), &spec, &k);
        assert!(matches!(r, Err(EvidenceError::BadName { .. })), "{name}: {r:?}");
    }
    for pair in [["a", "a"], ["notes", "notes/x"]] {
        let spec = CollectSpec { extra: pair.iter().map(|n| (n.to_string(), vec![1])).collect(), ..Default::default() };
        let out = state.path().join("pair");
        assert!(matches!(collect(&out, &spec, &k), Err(EvidenceError::BadName { .. })), "{pair:?}");
        assert!(!out.exists(), "refused before anything is written");
    }
}

#[test]
fn key_file_is_private_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.key");
    let a = SealKey::load_or_create(&path).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.permissions().mode() & 0o777, meta.len()), (0o600, 32));
    assert_eq!(SealKey::load_or_create(&path).unwrap().public_key(), a.public_key());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(SealKey::load_or_create(&path), Err(EvidenceError::InsecureKey { .. })));
    let short = dir.path().join("short.key");
    fs::write(&short, [0u8; 31]).unwrap();
    fs::set_permissions(&short, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(SealKey::load_or_create(&short), Err(EvidenceError::BadKey(_))));
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&short, &link).unwrap();
    assert!(SealKey::load_or_create(&link).is_err(), "a key is never read through a link");
}
