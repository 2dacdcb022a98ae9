//! Sending in the background. The caller hands an event over and goes on
//! (the agent does so right after a stop, never before it): one thread
//! writes it to the queue, and a thread per output delivers from the queue,
//! so a slow or dead output delays only itself. An output that fails is
//! tried again after a pause that doubles up to a limit; events that arrive
//! meanwhile wait their turn behind the one that failed.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::output::Output;
use crate::spool::Spool;
use crate::Alert;

/// How often an output with nothing to send looks at the queue anyway, for
/// events other processes queued (`mamori restore` when its own try failed).
const RESCAN: Duration = Duration::from_secs(60);
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// What each output's thread waits on: a count of events queued, and
/// whether to finish.
#[derive(Default)]
struct Signal {
    state: Mutex<(u64, bool)>,
    cond: Condvar,
}

impl Signal {
    fn bump(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
        self.cond.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cond.notify_all();
    }

    /// Waits until the count moves past `seen`, the signal closes, or
    /// `timeout`; returns the count and whether it closed.
    fn wait(&self, seen: u64, timeout: Duration) -> (u64, bool) {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |(n, closed)| *n == seen && !*closed)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }

    fn closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Waits `timeout` unless the signal closes first.
    fn pause(&self, timeout: Duration) -> (u64, bool) {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) =
            self.cond.wait_timeout_while(guard, timeout, |(_, closed)| !*closed).unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// Hands events to the background; cheap to clone, never blocks.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Alert>,
}

impl Sender {
    pub fn send(&self, alert: Alert) {
        // The writer only goes away when the dispatcher shuts down.
        let _ = self.tx.send(alert);
    }
}

pub struct Dispatcher {
    sender: Sender,
    /// Told when the writer has queued the last event handed over.
    queued: mpsc::Receiver<()>,
    signal: Arc<Signal>,
    done: mpsc::Receiver<&'static str>,
    outputs: usize,
}

impl Dispatcher {
    /// Starts the writer and one thread per output. Each output's cursor is
    /// set before anything is queued, so a newly configured output gets
    /// every event from now on.
    pub fn start(spool: Spool, outputs: Vec<Box<dyn Output>>, retry_max: Duration) -> Dispatcher {
        let names: Vec<&'static str> = outputs.iter().map(|o| o.name()).collect();
        for name in &names {
            if let Err(e) = spool.cursor(name) {
                tracing::warn!("{e}");
            }
        }
        let signal = Arc::new(Signal::default());
        let (tx, rx) = mpsc::channel::<Alert>();
        let (queued_tx, queued) = mpsc::channel();
        {
            let (spool, signal) = (spool.clone(), Arc::clone(&signal));
            std::thread::Builder::new()
                .name("alert-queue".into())
                .spawn(move || {
                    write_loop(&spool, &rx, &signal, retry_max.max(FIRST_RETRY));
                    let _ = queued_tx.send(());
                })
                .expect("spawn the alert queue thread");
        }
        let (done_tx, done) = mpsc::channel();
        let count = outputs.len();
        for output in outputs {
            let (spool, signal, done_tx) = (spool.clone(), Arc::clone(&signal), done_tx.clone());
            std::thread::Builder::new()
                .name(format!("alert-{}", output.name()))
                .spawn(move || {
                    let name = output.name();
                    deliver_loop(&spool, output, &signal, retry_max.max(FIRST_RETRY));
                    let _ = done_tx.send(name);
                })
                .expect("spawn an alert output thread");
        }
        Dispatcher { sender: Sender { tx }, queued, signal, done, outputs: count }
    }

    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Queues what was handed over, then gives the outputs until `within`
    /// to deliver it. What is left stays queued for the next start.
    pub fn shutdown(self, within: Duration) {
        let deadline = Instant::now() + within;
        let Dispatcher { sender, queued, signal, done, outputs } = self;
        // The writer ends once the last sender is gone; a clone kept
        // elsewhere must not hold the caller past its deadline.
        drop(sender);
        if queued.recv_timeout(within).is_err() {
            tracing::warn!("not every alert handed over reached the queue on disk in time");
        }
        signal.close();
        for _ in 0..outputs {
            let left = deadline.saturating_duration_since(Instant::now());
            if done.recv_timeout(left).is_err() {
                tracing::warn!("some alerts are still queued; they are sent when mamori runs again");
                return;
            }
        }
    }
}

/// The writer's life: each event handed over goes to the queue on disk, in
/// order. A disk that refuses (full, say: ransomware filling it is no
/// rarity) keeps the events in memory, tried again after a pause that
/// doubles, so they are sent once it takes them, unless the agent stops first.
fn write_loop(spool: &Spool, rx: &mpsc::Receiver<Alert>, signal: &Signal, retry_max: Duration) {
    let mut waiting: std::collections::VecDeque<Alert> = std::collections::VecDeque::new();
    let mut pause = FIRST_RETRY;
    loop {
        if waiting.is_empty() {
            match rx.recv() {
                Ok(alert) => waiting.push_back(alert),
                Err(_) => return,
            }
        }
        waiting.extend(rx.try_iter());
        while let Some(alert) = waiting.front() {
            match spool.append(alert) {
                Ok(_) => {
                    waiting.pop_front();
                    signal.bump();
                    pause = FIRST_RETRY;
                }
                Err(e) => {
                    if pause == FIRST_RETRY {
                        tracing::error!(waiting = waiting.len(), "alerts not queued, kept in memory to try again: {e}");
                    }
                    break;
                }
            }
        }
        if waiting.is_empty() {
            continue;
        }
        if signal.closed() {
            tracing::error!(lost = waiting.len(), "alerts never queued: the disk refused them until the end");
            return;
        }
        match rx.recv_timeout(pause) {
            Ok(alert) => waiting.push_back(alert),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Shutting down: one more pause for the disk, then one more try.
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(pause),
        }
        pause = (pause * 2).min(retry_max);
    }
}

/// One output's life: deliver what is queued; on failure pause (doubling);
/// otherwise wait for the next event. Once closed, one last try, then out.
fn deliver_loop(spool: &Spool, mut output: Box<dyn Output>, signal: &Signal, retry_max: Duration) {
    let mut seen = 0;
    let mut pause = FIRST_RETRY;
    let mut failing = false;
    loop {
        let closed = signal.wait(seen, Duration::ZERO).1;
        match spool.deliver(output.as_mut()) {
            Ok(_) => {
                if failing {
                    tracing::info!(output = output.name(), "alerts are getting through again");
                }
                failing = false;
                pause = FIRST_RETRY;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(output = output.name(), "alert not sent, kept to try again: {e}");
                }
                failing = true;
            }
        }
        if closed {
            return;
        }
        let (n, _) = if failing {
            // Retry after the pause, whatever arrives meanwhile: a storm of
            // events must not hammer a receiver that is down.
            let state = signal.pause(pause);
            pause = (pause * 2).min(retry_max);
            state
        } else {
            signal.wait(seen, RESCAN)
        };
        seen = n;
    }
}
