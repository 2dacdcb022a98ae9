//! Ordinary work that looks a little like ransomware must finish and raise
//! no incident. Each workload is a real program run under a real agent with
//! its default configuration (decoys included).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// Runs `script` with bash in the protected folder under an agent, and checks
/// that it succeeded and that the agent recorded nothing. A workload that the
/// agent stopped would wait forever: it is killed (by the pids the incident
/// names) and the test fails with the incident.
fn benign(docs: usize, script: &str) {
    let ws = Workspace::new();
    if docs > 0 {
        ws.corpus(docs, 0);
    }
    let agent = ws.start_agent(None);
    let out_path = ws.tmp.path().join("workload.out");
    let mut workload = Started(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(&ws.data)
            .env("HOME", ws.tmp.path())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::process::Stdio::from(std::fs::File::create(ws.tmp.path().join("workload.err")).unwrap()))
            .spawn()
            .unwrap(),
    );
    let incidents = ws.wait_for_incident(&mut workload.0, Duration::from_secs(600));
    if !incidents.is_empty() {
        for inc in &incidents {
            mamori(&["kill", inc["id"].as_str().unwrap(), "--state", ws.state.to_str().unwrap()]);
        }
        panic!("false positive: {incidents:#?}\n{}", agent.log());
    }
    let Some(status) = workload.0.try_wait().unwrap() else {
        panic!("the workload did not finish within 10 minutes:\n{}", agent.log());
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default()
        + &std::fs::read_to_string(ws.tmp.path().join("workload.err")).unwrap_or_default();
    assert!(status.success(), "workload failed ({status}):\n{output}\nagent log:\n{}", agent.log());
    let incidents = ws.incidents();
    let log = agent.stop();
    assert!(incidents.is_empty(), "false positive: {incidents:#?}\n{log}");
}

#[test]
fn compressing_a_folder_into_archives() {
    benign(80, "tar czf ../backup.tgz . && mv ../backup.tgz . && zip -qr docs.zip . -x docs.zip && 7z a -bd -bso0 docs.7z . -x!docs.7z -x!docs.zip");
}

#[test]
fn moving_files_into_an_archive() {
    // zip -m deletes each original once it is in the archive: read, write new, delete.
    benign(80, "mkdir -p old && find . -maxdepth 2 -name '*.txt' -exec mv {} old/ \\; ; zip -qrm old.zip old");
}

#[test]
fn re_encoding_photos_in_place() {
    benign(80, "find . -name '*.jpg' -print0 | xargs -0 -r mogrify -quality 60 && find . -name '*.png' -print0 | xargs -0 -r mogrify -strip");
}

#[test]
fn an_office_suite_re_saving_documents() {
    // What LibreOffice does on save: write a new zip next to it, then rename it over the original.
    benign(
        80,
        r#"python3 - <<'PY'
import os, zipfile, glob
for path in glob.glob('**/*.docx', recursive=True) + glob.glob('**/*.xlsx', recursive=True):
    with zipfile.ZipFile(path) as src:
        items = [(i, src.read(i.filename)) for i in src.infolist()]
    tmp = os.path.join(os.path.dirname(path), '.~lock.' + os.path.basename(path) + '.tmp')
    with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info, data in items:
            dst.writestr(info.filename, data + (b'<!-- saved -->' if info.filename.endswith('.xml') else b''))
    os.replace(tmp, path)
PY"#,
    );
}

#[test]
fn an_editor_safe_saving_files() {
    benign(80, "for f in $(find . -name '*.txt' -o -name '*.md' -o -name '*.csv'); do sed -i 's/a/A/g' \"$f\"; done");
}

#[test]
fn git_commit_checkout_and_gc() {
    benign(
        60,
        "git init -q . && git -c user.name=t -c user.email=t@e add -A && git -c user.name=t -c user.email=t@e commit -qm one \
         && git checkout -qb topic && for f in $(find . -name '*.txt' -not -path './.git/*' | head -20); do echo more >> \"$f\"; done \
         && git -c user.name=t -c user.email=t@e commit -qam two && git checkout -q - && git checkout -q topic && git gc -q --aggressive --prune=now",
    );
}

#[test]
fn a_database_doing_many_small_transactions() {
    benign(
        0,
        "sqlite3 shop.db 'create table orders(id integer primary key, customer text, total integer);' \
         && for i in $(seq 1 300); do echo \"insert into orders(customer,total) values('customer $i', $i);\"; done | sqlite3 shop.db \
         && python3 -c \"import sqlite3; c=sqlite3.connect('shop.db'); [c.execute('update orders set total=total+1 where id=?', (i,)) or c.commit() for i in range(1,1000)]\" \
         && sqlite3 shop.db 'vacuum;'",
    );
}

#[test]
fn an_encrypted_backup_tool_writing_its_repository_inside() {
    benign(
        80,
        "export RESTIC_PASSWORD=correct-horse && restic -q init --repo ./restic-repo && restic -q --repo ./restic-repo backup . --exclude restic-repo \
         && find . -name '*.txt' | head -10 | xargs -r -I{} sh -c 'echo change >> {}' && restic -q --repo ./restic-repo backup . --exclude restic-repo \
         && restic -q --repo ./restic-repo forget --keep-last 1 --prune",
    );
}

#[test]
fn an_encrypted_store_rewriting_its_files_in_place() {
    // Ciphertext rewritten as ciphertext (an encrypted vault a sync client
    // updates, a store re-encrypting its files). About one random file in
    // four thousand begins with two bytes that some format takes for its
    // magic (MZ, BM, an MP3 frame sync...): here one in three, so that the
    // few a store of tens of thousands holds by chance are all there at once.
    benign(
        0,
        r#"python3 - <<'PY'
import os, random
random.seed(3)
magics = [b"MZ", b"BM", b"\xff\xfb", b"\xff\xf3", b"\xff\xf1", b"BC", b"\x30\x82", b"%!", b"\x1f\x9d", b"\x4c\x01"]
os.makedirs("store")
for i in range(150):
    data = bytearray(os.urandom(random.randint(4, 64) * 1024))
    if i % 3 == 0:
        m = magics[(i // 3) % len(magics)]
        data[:len(m)] = m
    with open(f"store/c{i:03d}.bin", "wb") as f:
        f.write(data)
PY
python3 - <<'PY'
import os
for i in range(150):
    with open(f"store/c{i:03d}.bin", "r+b") as f:
        f.write(os.urandom(os.fstat(f.fileno()).st_size))
PY"#,
    );
}

#[test]
fn one_file_encrypted_by_its_owner() {
    benign(40, "f=$(find . -name '*.docx' | head -1) && ccrypt -e -K 'owner secret' \"$f\" && ccrypt -d -K 'owner secret' \"$f.cpt\"");
}

#[test]
fn rsync_within_the_protected_folder() {
    benign(80, "mkdir mirror && rsync -a --exclude mirror ./ mirror/ && find . -path ./mirror -prune -o -name '*.csv' -print | xargs -r sed -i 's/1/2/' && rsync -a --delete --exclude mirror ./ mirror/");
}

#[test]
fn building_and_deleting_a_build_tree() {
    benign(
        0,
        "mkdir -p src build && for i in $(seq 1 40); do printf 'int f%d(int x){return x*%d;}\\n' $i $i > src/f$i.c; done \
         && for f in src/*.c; do cc -O1 -c $f -o build/$(basename $f .c).o; done && ar rcs build/libf.a build/*.o && rm -rf build",
    );
}

#[test]
fn a_virtual_machine_writing_random_blocks_into_its_disk() {
    benign(
        0,
        "qemu-img create -q -f raw disk.img 256M && fio --name=vm --filename=disk.img --rw=randwrite --bs=4k --size=256M \
         --io_size=24M --refill_buffers --ioengine=psync --output=/dev/null",
    );
}
