//! Real process trees: stopped, resumed and killed through pidfds.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::thread::sleep;
use std::time::Duration;

use mamori_response::{is_stopped, kill, proc_key, resume, start_time, suspend_tree, Guard, ProcKey, ResponseError};

/// A shell and its descendants, all SIGKILLed when the test ends however it ends.
struct Tree {
    child: Child,
    root: ProcKey,
}

impl Tree {
    fn spawn(script: &str) -> Tree {
        let child = Command::new("sh").arg("-c").arg(script).spawn().expect("spawn sh");
        let root = proc_key(child.id()).expect("root key");
        Tree { child, root }
    }

    /// Live (non-zombie) descendants of the root, found independently of the crate.
    fn descendants(&self) -> BTreeSet<ProcKey> {
        let mut out = BTreeSet::new();
        let mut frontier = vec![self.root.pid];
        while let Some(parent) = frontier.pop() {
            for (pid, ppid, state) in all_procs() {
                if ppid == parent && state != 'Z' {
                    if let Some(key) = proc_key(pid) {
                        if out.insert(key) {
                            frontier.push(pid);
                        }
                    }
                }
            }
        }
        out
    }

    /// Polls until the tree has at least `n` live descendants.
    fn wait_for(&self, n: usize) {
        for _ in 0..1000 {
            if self.descendants().len() >= n {
                return;
            }
            sleep(Duration::from_millis(5));
        }
        panic!("tree never reached {n} descendants");
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let mut all: Vec<ProcKey> = vec![self.root];
        all.extend(self.descendants());
        kill(&all);
        let _ = self.child.wait();
    }
}

fn all_procs() -> Vec<(u32, u32, char)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = text.rsplit_once(')')?.1;
            let mut f = rest.split_whitespace();
            let state = f.next()?.chars().next()?;
            Some((pid, f.next()?.parse().ok()?, state))
        })
        .collect()
}

fn state(key: ProcKey) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{}/stat", key.pid)).ok()?;
    text.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// Polls until `f` holds for every key (signals are delivered asynchronously).
fn eventually(keys: &[ProcKey], f: impl Fn(ProcKey) -> bool) -> bool {
    for _ in 0..1000 {
        if keys.iter().all(|&k| f(k)) {
            return true;
        }
        sleep(Duration::from_millis(5));
    }
    false
}

const NESTED: &str = "sleep 100 & sleep 100 & (sleep 100 & wait) & wait";

#[test]
fn suspend_resume_kill_a_nested_tree() {
    let tree = Tree::spawn(NESTED);
    // Three sleeps, plus the subshell.
    tree.wait_for(4);
    let before = tree.descendants();

    let stopped = suspend_tree(tree.root, &Guard::new()).unwrap().procs;
    assert_eq!(stopped[0], tree.root);
    let got: BTreeSet<ProcKey> = stopped[1..].iter().copied().collect();
    assert_eq!(got, before);
    for &key in &stopped {
        assert!(is_stopped(key), "{key:?} is in state {:?}", state(key));
    }

    assert_eq!(resume(&stopped).unwrap().procs, stopped);
    assert!(eventually(&stopped, |k| matches!(state(k), Some('S' | 'R'))));
    assert!(stopped.iter().all(|&k| !is_stopped(k)));

    suspend_tree(tree.root, &Guard::new()).unwrap();
    assert_eq!(kill(&stopped).procs, stopped);
    // The root is our child and stays a zombie until reaped; the others are gone or zombies.
    assert!(eventually(&stopped, |k| matches!(state(k), None | Some('Z'))));
}

#[test]
fn forking_loop_is_fully_stopped() {
    let tree = Tree::spawn("while :; do sleep 5 & sleep 0.001; done");
    tree.wait_for(10);

    let stopped = suspend_tree(tree.root, &Guard::new()).unwrap().procs;
    let stopped_set: BTreeSet<ProcKey> = stopped.iter().copied().collect();
    assert!(stopped.len() > 10);

    // Were anything still running, the loop would have forked by now.
    sleep(Duration::from_millis(100));
    let after = tree.descendants();
    let escaped: Vec<_> = after.difference(&stopped_set).collect();
    assert!(escaped.is_empty(), "not stopped: {escaped:?}");
    for key in after {
        assert!(is_stopped(key), "{key:?} is in state {:?}", state(key));
    }
    assert!(is_stopped(tree.root));
}

#[test]
fn wrong_start_time_is_never_signalled() {
    let tree = Tree::spawn("exec sleep 100");
    let wrong = ProcKey { pid: tree.root.pid, start: tree.root.start + 1 };

    assert!(matches!(suspend_tree(wrong, &Guard::new()), Err(ResponseError::Gone(k)) if k == wrong));
    assert!(kill(&[wrong]).procs.is_empty());
    assert!(resume(&[wrong]).unwrap().procs.is_empty());
    assert!(!is_stopped(wrong));

    // Still alive and running: nothing reached it.
    sleep(Duration::from_millis(20));
    assert!(matches!(state(tree.root), Some('S' | 'R')));
    assert_eq!(start_time(tree.root.pid), Some(tree.root.start));
}

#[test]
fn guard_refuses_init_kernel_threads_self_and_ancestors() {
    let guard = Guard::new();
    let me = proc_key(std::process::id()).unwrap();
    let parent = proc_key(std::os::unix::process::parent_id()).unwrap();
    assert!(!guard.allows(proc_key(1).unwrap()));
    assert!(!guard.allows(me));
    assert!(!guard.allows(parent));
    assert!(matches!(suspend_tree(me, &guard), Err(ResponseError::Refused(_))));
    assert!(matches!(suspend_tree(parent, &guard), Err(ResponseError::Refused(k)) if k == parent));
    assert!(!is_stopped(parent));

    if let Some(kthread) = all_procs().into_iter().find(|&(_, ppid, _)| ppid == 2) {
        assert!(!guard.allows(proc_key(kthread.0).unwrap()));
    }

    let tree = Tree::spawn("exec sleep 100");
    assert!(guard.allows(tree.root));
}
