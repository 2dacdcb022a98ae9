//! Replay throughput: how many recorded events the engine weighs per second
//! on one core. The trace mixes what a busy file server produces: mostly
//! read-only opens, some rewrites and renames, a few processes.

use mamori_content::facts_of_bytes;
use mamori_engine::{Config, Engine};
use mamori_event::{Event, EventKind, OpenMode, ProcInfo, ProcKey};

fn main() {
    divan::main();
}

fn trace(n: usize) -> Vec<Event> {
    let doc = facts_of_bytes(&b"quarterly report, total 1234 yen\n".repeat(300));
    let light = facts_of_bytes(&b"header of a document\n".repeat(40));
    let mut events = Vec::with_capacity(n + 64);
    for pid in 2..34u32 {
        events.push(proc_event(pid, Some(ProcKey { pid: 1, start: 1 }), pid));
    }
    for i in 0..n {
        let pid = 2 + (i % 32) as u32;
        let path = format!("/srv/share/dept{}/file{}.docx", i % 50, i % 5000);
        let kind = match i % 10 {
            0 => EventKind::Open { path, mode: OpenMode::Write, before: Some(doc.clone()) },
            1 => EventKind::CloseWrite { path, after: doc.clone() },
            2 => EventKind::Rename { from: path.clone(), to: format!("{path}.bak"), dir: false, replaced: None },
            _ => EventKind::Open { path, mode: OpenMode::Read, before: Some(light.clone()) },
        };
        events.push(Event { time_ns: 1_000 * i as u64, proc: Some(ProcKey { pid, start: pid as u64 }), kind });
    }
    events
}

/// A process (started at time `pid`) coming into view, in session `sid`.
fn proc_event(pid: u32, parent: Option<ProcKey>, sid: u32) -> Event {
    let info = ProcInfo {
        key: ProcKey { pid, start: pid as u64 },
        parent,
        uid: 1000,
        pgid: sid,
        sid,
        exe: format!("/usr/bin/worker{pid}"),
        cmdline: vec![],
        client: None,
    };
    Event { time_ns: 0, proc: None, kind: EventKind::Proc(info) }
}

#[divan::bench]
fn replay_100k_events(bencher: divan::Bencher) {
    let events = trace(100_000);
    bencher.counter(divan::counter::ItemsCount::new(events.len())).bench(|| {
        let mut engine = Engine::new(Config::default());
        for ev in &events {
            divan::black_box(engine.process(ev));
        }
    });
}

/// A build or a copy: one program, four processes below its session
/// leader, creating files. Each event is credited to every ancestor.
#[divan::bench]
fn new_files_four_deep(bencher: divan::Bencher) {
    let mut events = Vec::new();
    let mut parent = None;
    for pid in 100..104u32 {
        events.push(proc_event(pid, parent, 100));
        parent = Some(ProcKey { pid, start: pid as u64 });
    }
    let writer = parent;
    for i in 0..20_000u64 {
        let path = format!("/srv/share/build/d{:03}/f{i}.o", i % 200);
        let t = 1_000 * i;
        events.push(Event { time_ns: t, proc: writer, kind: EventKind::Create { path: path.clone(), dir: false } });
        events.push(Event {
            time_ns: t,
            proc: writer,
            kind: EventKind::Open { path, mode: OpenMode::Write, before: None },
        });
    }
    bencher.counter(divan::counter::ItemsCount::new(events.len())).bench(|| {
        let mut engine = Engine::new(Config::default());
        for ev in &events {
            divan::black_box(engine.process(ev));
        }
    });
}
