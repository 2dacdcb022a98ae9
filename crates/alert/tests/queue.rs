//! The queue and the dispatcher end to end, with real outputs (a webhook to
//! an HTTP server on a loopback port, the ECS file): a receiver that was
//! down gets everything it missed, in order, once; a receiver that hangs
//! delays no one else; two processes sharing the queue never send an event
//! twice.

mod http_support;

use std::path::Path;
use std::time::{Duration, Instant};

use mamori_alert::config::{EcsFileConfig, Template, WebhookConfig};
use mamori_alert::{outputs, Alert, AlertsConfig, Dispatcher, Output, Spool, What};

use http_support::{closed_port, Recorder, Reply};

/// The dispatcher's pause between tries of an output that is down, at its
/// shortest: tests wait a few of these, never more.
const RETRY_MAX: Duration = Duration::from_secs(1);

fn webhook(url: String, timeout_seconds: u64) -> Box<dyn Output> {
    let c = WebhookConfig { url, template: Template::Json, timeout_seconds, ..WebhookConfig::default() };
    outputs(&AlertsConfig { webhook: Some(c), ..AlertsConfig::default() }).unwrap().pop().unwrap()
}

fn ecs_file(path: &Path) -> Box<dyn Output> {
    let c = EcsFileConfig { path: path.to_owned(), max_mib: 100 };
    outputs(&AlertsConfig { ecs: Some(c), ..AlertsConfig::default() }).unwrap().pop().unwrap()
}

fn test_alerts(n: usize) -> Vec<Alert> {
    (0..n).map(|_| Alert::new(What::Test)).collect()
}

fn ids(requests: &[http_support::Request]) -> Vec<String> {
    requests.iter().map(|r| r.json()["id"].as_str().unwrap().to_owned()).collect()
}

/// The ids in the ECS file, polled until `n` are there or `within` passed.
fn wait_for_lines(path: &Path, n: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let ids: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["id"].as_str().unwrap().to_owned())
            .collect();
        if ids.len() >= n || Instant::now() >= deadline {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_receiver_that_was_down_gets_every_event_in_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("queue"), 1000).unwrap();
    let port = closed_port();
    let dispatcher =
        Dispatcher::start(spool.clone(), vec![webhook(format!("http://127.0.0.1:{port}/hook"), 3)], RETRY_MAX);
    let alerts = test_alerts(5);
    for alert in &alerts {
        dispatcher.sender().send(alert.clone());
    }
    // Long enough for tries to fail against the closed port.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(spool.pending("webhook").unwrap(), "nothing can have been delivered");

    let up = Instant::now();
    let server = Recorder::start_on(port, |_| Reply::status(200, "ok"));
    let arrived = server.wait_for(5, Duration::from_secs(10));
    let took = up.elapsed();
    let sent: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids(&arrived), sent, "all five, in order");
    eprintln!("delivered 5 queued events {took:?} after the receiver came back");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // Nothing comes twice, not even after more tries would have been due.
    std::thread::sleep(2 * RETRY_MAX);
    assert_eq!(server.requests().len(), 5);
    assert!(!spool.pending("webhook").unwrap());
    dispatcher.shutdown(Duration::from_secs(5));
    assert_eq!(server.requests().len(), 5);
}

#[test]
fn a_hanging_receiver_does_not_delay_another_output() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("queue"), 1000).unwrap();
    let file = dir.path().join("log/alerts.json");
    let server = Recorder::start(|_| Reply::Hang);
    let dispatcher = Dispatcher::start(spool, vec![webhook(server.url("/hook"), 20), ecs_file(&file)], RETRY_MAX);
    let alerts = test_alerts(2);

    let start = Instant::now();
    dispatcher.sender().send(alerts[0].clone());
    let lines = wait_for_lines(&file, 1, Duration::from_secs(5));
    let first = start.elapsed();
    assert_eq!(lines, [alerts[0].id.clone()]);
    // The webhook took the same event and is stuck on it.
    assert_eq!(server.wait_for(1, Duration::from_secs(5)).len(), 1);

    let start = Instant::now();
    dispatcher.sender().send(alerts[1].clone());
    let lines = wait_for_lines(&file, 2, Duration::from_secs(5));
    let second = start.elapsed();
    assert_eq!(lines, [alerts[0].id.clone(), alerts[1].id.clone()]);
    assert_eq!(server.requests().len(), 1, "the webhook is still stuck on the first");
    eprintln!("ECS file got its events {first:?} and {second:?} after they were handed over, the webhook hanging");
    assert!(first < Duration::from_secs(1) && second < Duration::from_secs(1), "{first:?} {second:?}");

    // The stuck output is left behind at shutdown (its event stays queued);
    // shutdown itself keeps to its bound.
    let start = Instant::now();
    dispatcher.shutdown(Duration::from_millis(500));
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

#[test]
fn two_processes_sharing_the_queue_never_send_an_event_twice() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue");
    // A slow receiver widens every window in which two senders could overlap.
    let server = Recorder::start(|_| {
        std::thread::sleep(Duration::from_millis(15));
        Reply::status(200, "ok")
    });
    // The agent and `mamori restore`: each its own Spool and Dispatcher,
    // started at the same moment.
    let (a, b) = std::thread::scope(|s| {
        let start = |_| {
            let spool = Spool::open(&queue, 1000).unwrap();
            Dispatcher::start(spool, vec![webhook(server.url("/hook"), 5)], RETRY_MAX)
        };
        let a = s.spawn(move || start(0));
        let b = s.spawn(move || start(1));
        (a.join().unwrap(), b.join().unwrap())
    });
    let alerts = test_alerts(30);
    std::thread::scope(|s| {
        let (sa, sb) = (a.sender(), b.sender());
        let (half_a, half_b) = alerts.split_at(15);
        s.spawn(move || half_a.iter().for_each(|x| sa.send(x.clone())));
        s.spawn(move || half_b.iter().for_each(|x| sb.send(x.clone())));
    });
    let arrived = ids(&server.wait_for(30, Duration::from_secs(15)));
    a.shutdown(Duration::from_secs(5));
    b.shutdown(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let all = ids(&server.requests());
    assert_eq!(all.len(), 30, "each event once: {all:?}");
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30, "no event twice");
    let mut expected: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
    expected.sort();
    assert_eq!(unique, expected, "every event handed over");
    // Each sender's events are queued in the order it handed them over,
    // and the queue is sent in its order.
    for half in [&alerts[..15], &alerts[15..]] {
        let sent: Vec<&String> = half.iter().map(|a| &a.id).collect();
        let got: Vec<&String> = arrived.iter().filter(|id| sent.contains(id)).collect();
        assert_eq!(got, sent, "out of order");
    }
    // Every event was taken by the one output there is: none stays queued.
    let left = std::fs::read_dir(queue.join("queue")).unwrap().count();
    assert_eq!(left, 0, "{left} events left in the queue after all were sent");
}

/// A small filesystem of the test's own, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mount a tmpfs (the tests run as root)");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn events_the_full_disk_refused_are_sent_in_order_once_it_takes_them() {
    let fs = Tmpfs::new("256k");
    let queue = fs.0.path().join("queue");
    let server = Recorder::start(|_| Reply::status(200, "ok"));
    let dispatcher =
        Dispatcher::start(Spool::open(&queue, 100).unwrap(), vec![webhook(server.url("/hook"), 5)], RETRY_MAX);
    // Fill the disk, then hand three events over.
    let filler = fs.0.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    let alerts = test_alerts(3);
    for a in &alerts {
        dispatcher.sender().send(a.clone());
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(server.requests().is_empty(), "sent without being queued first");
    // Space again: the events, kept in memory, reach the queue and the receiver.
    std::fs::remove_file(&filler).unwrap();
    let got = ids(&server.wait_for(3, Duration::from_secs(10)));
    let sent: Vec<String> = alerts.iter().map(|a| a.id.clone()).collect();
    assert_eq!(got, sent, "in order, each once");
    dispatcher.shutdown(Duration::from_secs(2));
}
