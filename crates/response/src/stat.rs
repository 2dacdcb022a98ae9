//! Reading `/proc/PID/stat`.
//!
//! The command name (field 2) is wrapped in parentheses and may itself hold
//! spaces and `)`, so the fields after it are found from the *last* `)`.

use std::fs;

use mamori_event::ProcKey;

/// The few fields of `/proc/PID/stat` that responding needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub pid: u32,
    pub state: char,
    pub ppid: u32,
    pub start: u64,
}

impl Stat {
    pub fn key(&self) -> ProcKey {
        ProcKey { pid: self.pid, start: self.start }
    }
}

pub(crate) fn read(pid: u32) -> Option<Stat> {
    parse(pid, &fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// State of one thread, from `/proc/PID/task/TID/stat`.
pub(crate) fn thread_state(pid: u32, tid: &str) -> Option<char> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    Some(parse(pid, &text)?.state)
}

fn parse(pid: u32, text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    // `rest` starts at field 3 (state); field N is at index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every process visible in `/proc` right now.
pub(crate) fn all() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).filter_map(read).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_with_parens_and_spaces() {
        let line = "4242 (evil) (x y) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let st = parse(4242, line).unwrap();
        assert_eq!(st, Stat { pid: 4242, state: 'S', ppid: 17, start: 987654 });
    }

    #[test]
    fn truncated_line_is_none() {
        assert_eq!(parse(1, "1 (init) S 0 1"), None);
    }

    #[test]
    fn own_stat_reads() {
        let me = read(std::process::id()).unwrap();
        assert!(me.start > 0);
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
    }
}
