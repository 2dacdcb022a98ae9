//! Against a real smbd in the lab: the process serving a client names it,
//! and Samba's own sessions agree. Needs root and samba (CI installs it).

use std::time::{Duration, Instant};

use mamori_event::Client;
use mamori_served::{client_of, samba_config, samba_sessions};
use mamori_smblab::{Lab, Running, SHARE, USER};

/// The smbd children that serve a client, once `n` of them do.
fn serving(lab: &Lab, n: usize) -> Vec<(u32, Client)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: Vec<(u32, Client)> =
            lab.smbd_children().into_iter().filter_map(|pid| Some((pid, client_of(pid)?))).collect();
        // Before the session is set up the child still runs as root.
        if found.len() >= n && found.iter().all(|(_, c)| c.user == USER) {
            return found;
        }
        assert!(Instant::now() < deadline, "{n} clients never showed: {found:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn working(client: &mamori_smblab::Client, dir: &str) -> Running {
    client.spawn(&["honest", "--dir", dir, "--interval", "0.05"])
}

#[test]
fn the_process_serving_a_client_names_it() {
    let lab = Lab::start();
    let one = lab.client(1);
    let two = lab.client(2).over_ipv6(lab.address6());
    let (a, b) = (working(&one, "one"), working(&two, "two"));

    let mut found = serving(&lab, 2);
    found.sort_by(|x, y| x.1.address.cmp(&y.1.address));
    let addresses: Vec<&str> = found.iter().map(|(_, c)| c.address.as_str()).collect();
    let (v4, v6) = (one.address().to_string(), two.address6().to_string());
    assert_eq!(addresses, [v4.as_str(), v6.as_str()], "{found:?}");
    for (pid, client) in &found {
        assert_eq!(client.server, "samba");
        assert_eq!(client.user, USER);
        assert!(client.port >= 1024, "the client's own port: {client:?}");
        assert!(client.machine.is_empty() && client.shares.is_empty(), "the sensor's part only");
        assert_eq!(samba_config(*pid).as_deref(), Some(lab.config()));
    }

    // The master, smbd's helpers and unrelated processes serve no one.
    assert_eq!(client_of(lab.smbd_pid()), None);
    assert_eq!(samba_config(lab.smbd_pid()).as_deref(), Some(lab.config()));
    let helpers: Vec<u32> = lab.smbd_children().into_iter().filter(|p| !found.iter().any(|(f, _)| f == p)).collect();
    assert!(!helpers.is_empty(), "smbd runs helpers (notifyd, cleanupd)");
    for pid in helpers {
        assert_eq!(client_of(pid), None, "helper {pid}");
    }
    assert_eq!(client_of(a.pid()), None, "the python client itself");
    assert_eq!(client_of(std::process::id()), None);

    let sessions = samba_sessions(Some(lab.config()), Duration::from_secs(3)).unwrap();
    for (pid, client) in &found {
        let (_, session) =
            sessions.iter().find(|(p, _)| p == pid).unwrap_or_else(|| panic!("smbstatus knows {pid}: {sessions:?}"));
        assert!(session.same_client(client), "{session:?} vs {client:?}");
        assert_eq!(session.port, client.port);
        assert_eq!(session.user, USER);
        assert_eq!(session.shares, [SHARE]);
        assert!(session.dialect.starts_with("SMB"), "{session:?}");
        assert!(!session.session.is_empty());
    }
    assert_eq!(sessions.len(), 2, "{sessions:?}");

    let (a, b) = (a.stop(), b.stop());
    assert_eq!((a.summary["failures"].as_u64(), b.summary["failures"].as_u64()), (Some(0), Some(0)));
}
