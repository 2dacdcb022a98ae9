//! Builders for synthetic traces: real content facts computed from generated
//! bytes, so the engine is tested on what the sensor would really report.
#![allow(dead_code)]

use mamori_content::facts_of_bytes;
use mamori_event::{ContentFacts, Event, EventKind, OpenMode, ProcInfo, ProcKey};

/// Deterministic pseudo-random bytes (xorshift), standing in for ciphertext.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn prose(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] =
        &["invoice", "customer", "請求書", "total", "the", "of", "quarterly", "報告", "and", "meeting"];
    let mut out = String::new();
    let mut i = seed as usize;
    while out.len() < len {
        out.push_str(WORDS[i % WORDS.len()]);
        out.push(if i.is_multiple_of(11) { '\n' } else { ' ' });
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    out.into_bytes()
}

/// An uncompressed PDF: a recognised document whose bytes are mostly text.
pub fn pdf(seed: u64, len: usize) -> Vec<u8> {
    [b"%PDF-1.4\n".as_slice(), &prose(seed, len), b"\n%%EOF\n"].concat()
}

/// A one-entry ZIP holding `payload` (random bytes stand for deflated or
/// encrypted data), with the encryption flag set when `password` is.
pub fn zip_of(payload: &[u8], password: bool) -> Vec<u8> {
    let flags: u16 = if password { 1 } else { 0 };
    let mut b = b"PK\x03\x04\x14\x00".to_vec();
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&[8, 0]);
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&[10, 0, 0, 0]);
    b.extend_from_slice(b"report.txt");
    b.extend_from_slice(payload);
    b.extend_from_slice(b"PK\x05\x06");
    b.extend_from_slice(&[0; 18]);
    b
}

pub fn facts(bytes: &[u8]) -> ContentFacts {
    facts_of_bytes(bytes)
}

/// A trace under construction, with a clock that advances 1 ms per event.
pub struct Trace {
    pub events: Vec<Event>,
    pub now: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace { events: Vec::new(), now: 1_700_000_000_000_000_000 }
    }
}

pub fn key(pid: u32) -> ProcKey {
    ProcKey { pid, start: 1000 + pid as u64 }
}

impl Trace {
    fn push(&mut self, proc: Option<ProcKey>, kind: EventKind) {
        self.now += 1_000_000;
        self.events.push(Event { time_ns: self.now, proc, kind });
    }

    pub fn wait_secs(&mut self, secs: u64) {
        self.now += secs * 1_000_000_000;
    }

    /// Introduces a process; `parent` None with `sid == pid` makes a session leader.
    pub fn proc(&mut self, pid: u32, parent: Option<u32>, sid: u32, exe: &str) -> ProcKey {
        self.proc_of(1000, pid, parent, sid, exe)
    }

    /// [`Trace::proc`] for the user `uid`.
    pub fn proc_of(&mut self, uid: u32, pid: u32, parent: Option<u32>, sid: u32, exe: &str) -> ProcKey {
        let info = ProcInfo {
            key: key(pid),
            parent: parent.map(key),
            uid,
            pgid: sid,
            sid,
            exe: exe.to_owned(),
            cmdline: vec![exe.to_owned()],
            client: None,
        };
        self.push(None, EventKind::Proc(info));
        key(pid)
    }

    /// Introduces a server's process for one remote client at `address`
    /// (a Samba smbd child of `parent`, in the server's session).
    pub fn served(&mut self, pid: u32, parent: u32, address: &str) -> ProcKey {
        let info = ProcInfo {
            key: key(pid),
            parent: Some(key(parent)),
            uid: 1000,
            pgid: parent,
            sid: parent,
            exe: "/usr/sbin/smbd".to_owned(),
            cmdline: vec!["smbd".to_owned()],
            client: Some(mamori_event::Client {
                server: "samba".to_owned(),
                address: address.to_owned(),
                ..Default::default()
            }),
        };
        self.push(None, EventKind::Proc(info));
        key(pid)
    }

    pub fn open(&mut self, p: ProcKey, path: &str, mode: OpenMode, before: &[u8]) {
        let before = Some(facts(before));
        self.push(Some(p), EventKind::Open { path: path.to_owned(), mode, before });
    }

    pub fn close_write(&mut self, p: ProcKey, path: &str, after: &[u8]) {
        self.push(Some(p), EventKind::CloseWrite { path: path.to_owned(), after: facts(after) });
    }

    pub fn create(&mut self, p: ProcKey, path: &str) {
        self.push(Some(p), EventKind::Create { path: path.to_owned(), dir: false });
    }

    /// A read reported without facts, as the sensor reports a read whose
    /// file the vault holds (its facts come with its delete or rename-over).
    pub fn read_held(&mut self, p: ProcKey, path: &str) {
        self.push(Some(p), EventKind::Open { path: path.to_owned(), mode: OpenMode::Read, before: None });
    }

    pub fn delete(&mut self, p: ProcKey, path: &str) {
        self.push(Some(p), EventKind::Delete { path: path.to_owned(), dir: false, before: None });
    }

    /// A delete of a held file, with the facts of what was deleted.
    pub fn delete_held(&mut self, p: ProcKey, path: &str, content: &[u8]) {
        let before = Some(facts(content));
        self.push(Some(p), EventKind::Delete { path: path.to_owned(), dir: false, before });
    }

    pub fn rename(&mut self, p: ProcKey, from: &str, to: &str) {
        let (from, to) = (from.to_owned(), to.to_owned());
        self.push(Some(p), EventKind::Rename { from, to, dir: false, replaced: None });
    }

    /// A rename over a held file, with the facts of the file replaced.
    pub fn rename_over_held(&mut self, p: ProcKey, from: &str, to: &str, replaced: &[u8]) {
        let (from, to, replaced) = (from.to_owned(), to.to_owned(), Some(facts(replaced)));
        self.push(Some(p), EventKind::Rename { from, to, dir: false, replaced });
    }

    pub fn canary(&mut self, path: &str) {
        self.push(None, EventKind::Canary { path: path.to_owned() });
    }

    pub fn trust(&mut self, exe: &str, dir: &str) {
        self.push(None, EventKind::Trust { exe: exe.to_owned(), dir: dir.to_owned() });
    }

    /// An in-place rewrite: open for writing, then the new content.
    pub fn rewrite(&mut self, p: ProcKey, path: &str, before: &[u8], after: &[u8]) {
        self.open(p, path, OpenMode::Write, before);
        self.close_write(p, path, after);
    }

    /// A create-and-write of a new file.
    pub fn write_new(&mut self, p: ProcKey, path: &str, content: &[u8]) {
        self.create(p, path);
        self.close_write(p, path, content);
    }
}
