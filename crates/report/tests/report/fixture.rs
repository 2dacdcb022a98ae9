//! A realistic case: an encryptor with a helper child rewrote office files
//! in folders named for customers and staff, renamed them to `.locked`,
//! dropped a note, and was suspended. Paths carry the characters that break
//! naive exports: commas, quotes, newlines, `<`, `|` and Japanese.

use mamori_event::{
    BlockSample, ContentFacts, Digest, Event, EventKind, FileKind, Format, OpenMode, ProcInfo, ProcKey,
};
use mamori_report::{Case, EvidenceRef, FileOutcome, Host, NoteFound, Restored};
use mamori_store::{
    Action, ActorInfo, Client, ClientCut, CutKind, CutStep, FileOp, Finding, Incident, Indicator, Reason,
};

pub const T0: u64 = 1_795_000_000_000_000_000;
pub const ACTOR: ProcKey = ProcKey { pid: 4242, start: 987_654 };
pub const CHILD: ProcKey = ProcKey { pid: 4243, start: 987_700 };
pub const EXE: &str = "/tmp/.cache/enc";
pub const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

pub const CUSTOMERS: &str = "/srv/share/顧客/顧客リスト, 2025 \"最新\".xlsx";
pub const PAYROLL: &str = "/srv/share/社員/給与明細.xlsx";
pub const NEWLINE: &str = "/srv/share/memo\nnext line.txt";
pub const MARKUP: &str = "/srv/share/<script>alert(1)</script>|pipe|.docx";
pub const NOTE: &str = "/srv/share/README_DECRYPT.txt";

pub const SMBD: &str = "/usr/sbin/smbd";
pub const MACHINE: &str = "ACCT-PC07";
pub const ADDRESS: &str = "192.0.2.57";
pub const PORT: u16 = 50_123;
pub const USER: &str = "tanaka";
/// What the agent records when the account could not be disabled.
pub const ACCOUNT_FAILED: &str = "smbpasswd -d tanaka: exit status 1";

fn facts(kind: FileKind, entropy: f32, size: u64) -> ContentFacts {
    ContentFacts {
        size,
        kind,
        entropy,
        encoded_random: false,
        sampled: false,
        digest: Digest(vec![1, 2, 3]),
        blocks: vec![BlockSample { offset: 0, hash: 7, entropy }],
        small_hash: None,
    }
}

fn proc_info(key: ProcKey, parent: Option<ProcKey>, cmdline: &[&str]) -> ProcInfo {
    ProcInfo {
        key,
        parent,
        uid: 1001,
        pgid: 4242,
        sid: 4000,
        exe: EXE.into(),
        cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
        client: None,
    }
}

pub fn case() -> Case {
    let office = facts(FileKind::Known { format: Format::Office, intact: true }, 5.125, 18_000);
    let cipher = facts(FileKind::Unknown, 7.998, 18_016);
    let mut timeline = vec![
        Event {
            time_ns: T0,
            proc: Some(ACTOR),
            kind: EventKind::Proc(proc_info(
                ACTOR,
                Some(ProcKey { pid: 1, start: 1 }),
                &[EXE, "--path", "/srv/share", "a b"],
            )),
        },
        Event {
            time_ns: T0 + 1_000_000,
            proc: Some(CHILD),
            kind: EventKind::Proc(proc_info(CHILD, Some(ACTOR), &[EXE, "--worker"])),
        },
    ];
    let mut t = T0 + 2_000_000;
    let mut files = Vec::new();
    for (i, path) in [CUSTOMERS, PAYROLL, NEWLINE, MARKUP].into_iter().enumerate() {
        let key = if i.is_multiple_of(2) { ACTOR } else { CHILD };
        let locked = format!("{path}.locked");
        timeline.push(Event {
            time_ns: t,
            proc: Some(key),
            kind: EventKind::Open { path: path.into(), mode: OpenMode::Write, before: Some(office.clone()) },
        });
        timeline.push(Event {
            time_ns: t + 400_000,
            proc: Some(key),
            kind: EventKind::CloseWrite { path: path.into(), after: cipher.clone() },
        });
        timeline.push(Event {
            time_ns: t + 500_000,
            proc: Some(key),
            kind: EventKind::Rename { from: path.into(), to: locked.clone(), dir: false, replaced: None },
        });
        t += 3_000_000;
        files.push(FileOutcome {
            path: path.into(),
            op: FileOp::Rename,
            to: Some(locked),
            restored: Some(if i == 2 { Restored::Failed("no copy in the vault".into()) } else { Restored::Restored }),
        });
    }
    timeline.push(Event { time_ns: t, proc: Some(ACTOR), kind: EventKind::Create { path: NOTE.into(), dir: false } });
    timeline.push(Event { time_ns: t + 10, proc: None, kind: EventKind::Overflow { lost: 3 } });
    files.push(FileOutcome { path: NOTE.into(), op: FileOp::Create, to: None, restored: Some(Restored::NotYet) });
    let detected = t + 1_000_000;
    let incident = Incident {
        id: "INC-0007".into(),
        detected_at: jiff::Timestamp::from_nanosecond(i128::from(detected)).unwrap().to_string(),
        actor: ActorInfo {
            pid: ACTOR.pid,
            start: ACTOR.start,
            exe: EXE.into(),
            cmdline: vec![EXE.into(), "--path".into(), "/srv/share".into()],
            uid: 1001,
            started_ns: Some(T0 - 5_000_000_000),
        },
        pids: vec![ACTOR.pid, CHILD.pid],
        procs: vec![ACTOR, CHILD],
        action: Action::Suspended,
        score: 12.5,
        reasons: vec![
            Reason::Found(Finding {
                indicator: Indicator::FormatLost,
                files: 4,
                examples: vec![CUSTOMERS.into(), PAYROLL.into()],
            }),
            Reason::Found(Finding {
                indicator: Indicator::ExtensionRename,
                files: 1,
                examples: vec![format!("{CUSTOMERS}.locked")],
            }),
            Reason::Unlisted { unlisted: 2 },
        ],
        files: vec![],
        protected: vec!["/srv/share".into()],
        stop_latency_us: Some(830),
        notes: vec!["the kernel event queue overflowed 1 time(s) since the agent started".into()],
        client: None,
    };
    Case {
        incident,
        timeline,
        host: Host { hostname: "fileserver-01".into(), kernel: "6.18.0".into(), os: "Debian GNU/Linux 12".into() },
        files,
        family: None,
        candidates: vec![mamori_report::Candidate { family: "LockBit".into(), weight: 2 }],
        notes: vec![NoteFound {
            path: NOTE.into(),
            excerpt: "YOUR FILES ARE ENCRYPTED.\nWe downloaded your data and will publish it on our blog.\n\
                      Write to recover@example.org or visit http://abcdefghijklmnop.onion/chat\n```\n<b>not bold</b>"
                .into(),
        }],
        exe_sha256: Some(SHA.into()),
        remote_addrs: vec!["203.0.113.9:443".into(), "[2001:db8::5]:8443".into()],
        isolation: None,
        evidence: Some(EvidenceRef {
            dir: "/var/lib/mamori/evidence/INC-0007".into(),
            chain_head: "c0ffee".into(),
            key_fingerprint: "SHA256:abc".into(),
        }),
        timezone: Some("Asia/Tokyo".into()),
    }
}

/// The same attack, but over the file share: a Windows PC encrypted the
/// share through Samba, so the actor is the `smbd` that served it, and the
/// incident names the client and each step that cut it off (one failed).
pub fn client_case() -> Case {
    let mut case = case();
    let client = Client {
        server: "samba".into(),
        address: ADDRESS.into(),
        port: PORT,
        user: USER.into(),
        machine: MACHINE.into(),
        shares: vec!["経理".into(), "public".into()],
        dialect: "SMB3_11".into(),
        session: "3954".into(),
    };
    for event in &mut case.timeline {
        if let EventKind::Proc(info) = &mut event.kind {
            info.exe = SMBD.into();
            info.cmdline = vec![SMBD.into(), "-D".into()];
            // The sensor sees only what the process shows: not the machine.
            info.client = Some(Client { machine: String::new(), shares: vec![], ..client.clone() });
        }
    }
    let inc = &mut case.incident;
    inc.actor.exe = SMBD.into();
    inc.actor.cmdline = vec![SMBD.into(), "-D".into()];
    let at = |s: u64| jiff::Timestamp::from_nanosecond(i128::from(T0 + s * 1_000_000_000)).unwrap().to_string();
    let step = |s, kind, ok, detail: &str| CutStep { at: at(s), kind, ok, detail: detail.into() };
    inc.client = Some(ClientCut {
        client,
        server: Some(ProcKey { pid: 900, start: 10 }),
        steps: vec![
            step(1, CutKind::Stopped, true, "server process(es) 4242, 4243 stopped"),
            step(
                1,
                CutKind::Blocked,
                true,
                "192.0.2.57 blocked both ways for 30 min (undo: mamori unblock 192.0.2.57)",
            ),
            step(3, CutKind::AccountDisabled, false, ACCOUNT_FAILED),
            step(4, CutKind::Ended, true, "server process(es) 4242, 4243 ended: its open files are closed"),
            step(9, CutKind::Reconnected, true, "connection from port 50200 ended"),
        ],
    });
    case.exe_sha256 = Some("0".repeat(64));
    case
}
