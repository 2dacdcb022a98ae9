//! The lab itself: a real smbd, real clients in their own namespaces, every
//! workload running to its JSON summary. Needs root and samba (CI installs it).

use std::fs;
use std::path::Path;
use std::time::Duration;

use mamori_sim::{Snapshot, MARKER, NOTE_NAME};
use mamori_smblab::{Lab, Outcome};

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn assert_clean(out: &Outcome, what: &str) {
    assert!(out.status.success(), "{what}: {:?}\n{}\n{}", out.status, out.summary, out.stderr);
    assert!(out.summary["first_failure"].is_null(), "{what}: {}", out.summary["first_failure"]);
    assert_eq!(out.summary["workload"], what);
    let ops = out.summary["ops"].as_array().expect("ops");
    assert!(!ops.is_empty(), "{what} did nothing");
    assert!(ops.iter().all(|op| op["t"].as_f64().is_some() && op["op"].is_string()), "{what}: {ops:?}");
}

#[test]
fn two_clients_at_once_write_and_read_over_ipv4_and_ipv6() {
    let lab = Lab::start();
    let one = lab.client(1);
    let two = lab.client(2).over_ipv6(lab.address6());
    let a = one.spawn(&["honest", "--dir", "one", "--interval", "0.05"]);
    let b = two.spawn(&["honest", "--dir", "two", "--interval", "0.05"]);
    std::thread::sleep(Duration::from_secs(3));
    // Two connections, two smbd children serving them (plus smbd's helpers).
    let serving = lab.smbd_children().len();
    let (a, b) = (a.stop(), b.stop());
    for (out, dir) in [(&a, "one"), (&b, "two")] {
        assert!(out.status.success(), "{:?} {}", out.summary, out.stderr);
        assert!(out.summary["successes"].as_u64().unwrap() > 3, "{}", out.summary);
        assert_eq!(out.summary["failures"], 0, "{}", out.summary);
        assert!(lab.share().join(dir).join("note-0000.txt").is_file(), "{dir} was written on the server");
    }
    assert_eq!(a.summary["server"], lab.address().to_string());
    assert_eq!(b.summary["server"], lab.address6().to_string());
    assert!(serving >= 4, "two client processes and smbd's helpers, saw {serving}");
}

#[test]
fn attacks_refuse_an_unmarked_share() {
    let lab = Lab::start();
    lab.seed(12);
    fs::remove_file(lab.share().join(MARKER)).unwrap();
    let before = Snapshot::take(lab.share()).unwrap();
    let client = lab.client(1);
    for attack in ["overwrite", "rename-then-encrypt", "copy-then-delete", "notes", "slow"] {
        let out = client.run(&[attack, "--limit", "2"]);
        assert!(out.refused(), "{attack} ran on an unmarked share: {:?} {}", out.status, out.summary);
        assert_eq!(out.touched(), 0);
    }
    let diff = before.diff(&Snapshot::take(lab.share()).unwrap());
    assert_eq!((diff.touched(), diff.added), (0, 0), "nothing changed");
    // A folder named like the marker is no consent either.
    fs::create_dir(lab.share().join(MARKER)).unwrap();
    assert!(client.run(&["overwrite"]).refused());
    // Benign work needs no marker.
    assert_clean(&client.run(&["backup-read"]), "backup-read");
}

#[test]
fn attacks_run_and_report() {
    let lab = Lab::start();
    let corpus = lab.seed(24);
    assert_eq!(corpus.files, 24);
    let client = lab.client(7);

    let before = Snapshot::take(lab.share()).unwrap();
    let out = client.run(&["overwrite", "--limit", "3"]);
    assert_clean(&out, "overwrite");
    assert_eq!(out.touched(), 3);
    let after = Snapshot::take(lab.share()).unwrap();
    assert_eq!(before.diff(&after).changed, 3, "three files hold ciphertext, same names");
    for file in out.summary["files"].as_array().unwrap() {
        let rel = file.as_str().unwrap();
        let now = fs::metadata(lab.share().join(rel)).unwrap().len();
        assert!(now > 0, "{rel} keeps its size");
    }

    let out = client.run(&["rename-then-encrypt", "--limit", "2"]);
    assert_clean(&out, "rename-then-encrypt");
    assert_eq!(out.touched(), 2);
    let locked = files_under(lab.share()).into_iter().filter(|f| f.ends_with(".locked")).count();
    assert_eq!(locked, 2);

    let out = client.run(&["copy-then-delete", "--limit", "2"]);
    assert_clean(&out, "copy-then-delete");
    for file in out.summary["files"].as_array().unwrap() {
        let rel = file.as_str().unwrap();
        assert!(!lab.share().join(rel).exists(), "{rel} was deleted on close");
        assert!(lab.share().join(format!("{rel}.locked")).is_file(), "{rel}.locked was written");
    }

    let out = client.run(&["notes", "--limit", "1"]);
    assert_clean(&out, "notes");
    assert!(lab.share().join(NOTE_NAME).is_file(), "a note at the root");
    let notes = files_under(lab.share()).into_iter().filter(|f| f.ends_with(NOTE_NAME)).count();
    assert!(notes > 3, "a note in every folder, saw {notes}");

    let out = client.run(&["slow", "--limit", "2"]);
    assert_clean(&out, "slow");
    let writes: Vec<f64> = out.summary["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| op["op"] == "write")
        .map(|op| op["t"].as_f64().unwrap())
        .collect();
    assert_eq!(writes.len(), 2);
    assert!(writes[1] - writes[0] >= 1.9, "one file every 2 s: {writes:?}");
}

#[test]
fn an_attack_stopped_by_the_server_says_when() {
    let lab = Lab::start();
    lab.seed(10);
    let client = lab.client(3);
    let running = client.spawn(&["slow", "--interval", "0.5", "--op-timeout", "3"]);
    std::thread::sleep(Duration::from_millis(1800));
    // What a defence does to an SMB client: its server process ends.
    for pid in lab.smbd_children() {
        if serves_a_client(pid) {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
    let out = running.stop();
    assert_eq!(out.status.code(), Some(1), "{}", out.summary);
    let failure = &out.summary["first_failure"];
    assert!(failure["t"].as_f64().is_some() && failure["error"].is_string(), "{failure}");
    let touched = out.touched();
    assert!((1..10).contains(&touched), "stopped part way: {touched}");
}

/// Whether `pid` serves a client: it holds an established connection on port
/// 445 (its helpers hold none). mamori-served does this properly; the lab stays free of it.
fn serves_a_client(pid: u32) -> bool {
    let tcp = fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let inodes: Vec<String> = tcp
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[1].ends_with(":01BD") && f[3] == "01").then(|| f[9].to_string())
        })
        .collect();
    fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten().any(|fd| {
        let link = fs::read_link(fd.path()).unwrap_or_default();
        inodes.iter().any(|i| link.to_string_lossy() == format!("socket:[{i}]"))
    })
}

#[test]
fn benign_work_runs_and_reports() {
    let lab = Lab::start();
    lab.seed(24);
    let client = lab.client(9);

    let docs = lab.documents(6);
    let out = client.run(&["copy-in", "--source", docs.to_str().unwrap(), "--dir", "Incoming"]);
    assert_clean(&out, "copy-in");
    assert_eq!(out.touched(), 6);
    let copied = Snapshot::take(&lab.share().join("Incoming")).unwrap();
    assert_eq!(Snapshot::take(&docs).unwrap().diff(&copied), Default::default(), "a faithful copy");

    let out = client.run(&["office-save", "--limit", "2"]);
    assert_clean(&out, "office-save");
    assert!(out.touched() >= 1, "{}", out.summary);
    for file in out.summary["files"].as_array().unwrap() {
        let path = lab.share().join(file.as_str().unwrap());
        let docx = zip::ZipArchive::new(fs::File::open(&path).unwrap()).expect("still a package");
        assert!(docx.file_names().any(|n| n == "word/document.xml"), "{}", path.display());
    }
    let leftovers: Vec<String> =
        files_under(lab.share()).into_iter().filter(|f| f.rsplit('/').next().unwrap().starts_with('~')).collect();
    assert!(leftovers.is_empty(), "Word's temp and lock files are gone: {leftovers:?}");

    let before = Snapshot::take(lab.share()).unwrap();
    let out = client.run(&["backup-read"]);
    assert_clean(&out, "backup-read");
    assert_eq!(out.touched() as usize, before.len());
    assert_eq!(before.diff(&Snapshot::take(lab.share()).unwrap()), Default::default(), "reading changes nothing");

    let photos = files_under(lab.share()).into_iter().filter(|f| f.ends_with(".jpg")).count();
    assert!(photos > 0);
    let out = client.run(&["bulk-rename"]);
    assert_clean(&out, "bulk-rename");
    assert_eq!(out.touched() as usize, photos);
    let trips = files_under(lab.share()).into_iter().filter(|f| f.contains("Trip 2024 - 00")).count();
    assert_eq!(trips, photos);

    let out = client.run(&["honest", "--limit", "4", "--interval", "0"]);
    assert!(out.status.success(), "{}", out.summary);
    assert_eq!((out.summary["successes"].as_u64(), out.summary["failures"].as_u64()), (Some(4), Some(0)));
}

#[test]
fn an_attack_cut_off_by_a_firewall_still_reports() {
    let lab = Lab::start();
    lab.seed(10);
    let client = lab.client(5);
    let mut running = client.spawn(&["slow", "--interval", "0.3", "--op-timeout", "2"]);
    std::thread::sleep(Duration::from_millis(1500));
    // Dropped, not refused: the client's requests get no answer at all.
    let rules = format!(
        "add table inet lab; add chain inet lab input {{ type filter hook input priority 0; policy accept; }}; \
         add rule inet lab input ip saddr {} drop",
        client.address()
    );
    let nft = std::process::Command::new("ip")
        .args(["netns", "exec", lab.namespace(), "nft", &rules])
        .status()
        .expect("nft runs");
    assert!(nft.success());
    let blocked = std::time::Instant::now();
    // Its next request waits out --op-timeout, then it logs off (bounded) and exits.
    while !running.exited() && blocked.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(running.exited(), "the client hung for {:?}", blocked.elapsed());
    let out = running.stop();
    assert_eq!(out.status.code(), Some(1), "{}", out.summary);
    let failure = &out.summary["first_failure"];
    assert!(failure["error"].as_str().is_some_and(|e| !e.is_empty()), "{failure}");
    assert!(failure["t"].as_f64().is_some(), "{failure}");
    assert!((1..10).contains(&out.touched()), "{}", out.summary);
}
