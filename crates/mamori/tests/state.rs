//! The state directory holds what root acts on (incidents name the
//! processes it signals and the files it restores): one another user could
//! change is refused, with what to do.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

#[test]
fn a_state_directory_another_user_controls_is_refused() {
    let user = mamori_testuser::ordinary();
    let ws = Workspace::new();
    std::fs::set_permissions(ws.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A real state, made by root, then copied by the user into a folder of theirs.
    let agent = ws.start_agent(None);
    agent.stop();
    let theirs = ws.tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(user.uid), Some(user.gid)).unwrap();
    let copy = theirs.join("state");
    let cp = std::process::Command::new("cp").arg("-a").arg(&ws.state).arg(&copy).status().unwrap();
    assert!(cp.success());
    user.run("ln", &["-s", copy.to_str().unwrap(), theirs.join("link").to_str().unwrap()]);

    for dir in [copy.clone(), theirs.join("link")] {
        let out = mamori(&["incidents", "--state", dir.to_str().unwrap()]);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was accepted", dir.display());
        assert!(said.contains("unsafe state directory"), "{said}");
    }
    // The agent's own, root's and private, still is.
    assert!(mamori(&["incidents", "--state", ws.state.to_str().unwrap()]).status.success());
}
