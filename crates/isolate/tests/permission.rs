//! The errors an operator meets first, with the advice they carry. A test
//! binary of its own: it runs a script it has just written, which must not
//! race with other tests' process spawns (ETXTBSY).

// The lab is shared with tests/isolation.rs and tests/blocking.rs, which use all of it.
#[allow(dead_code)]
mod lab;

use std::os::unix::fs::PermissionsExt;

use lab::Netns;
use mamori_isolate::{Allow, IsolateError, Nft};

#[test]
fn a_missing_nft_says_to_install_nftables() {
    let nft = Nft::at("/nonexistent/nft");
    let err = nft.status().unwrap_err();
    assert!(matches!(err, IsolateError::NftMissing { .. }), "{err}");
    assert!(err.to_string().contains("apt install nftables"), "{err}");
    assert!(matches!(nft.isolate(&Allow::default()), Err(IsolateError::NftMissing { .. })));
    assert!(matches!(nft.undo(), Err(IsolateError::NftMissing { .. })));
    assert!(matches!(nft.block("10.77.1.2".parse().unwrap(), None), Err(IsolateError::NftMissing { .. })));
    assert!(matches!(nft.blocks(), Err(IsolateError::NftMissing { .. })));
}

#[test]
fn an_unprivileged_user_is_told_to_run_as_root() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("nft-as-nobody");
    // `cat |` hands nft a pipe that nobody owns: nft opens /dev/stdin by name.
    std::fs::write(
        &script,
        "#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups -- sh -c 'cat | nft \"$@\"' nft \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let nft = Nft::at(&script);
    // In a namespace of its own, so a failure to drop privileges cannot
    // isolate the machine.
    let h = Netns::new("h");
    for result in [
        h.run(|| nft.isolate(&Allow::default()).map(drop)),
        h.run(|| nft.status().map(drop)),
        h.run(|| nft.undo().map(drop)),
        h.run(|| nft.block("10.77.1.2".parse().unwrap(), None).map(drop)),
        h.run(|| nft.unblock_all().map(drop)),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, IsolateError::NotPermitted { .. }), "{err}");
        assert!(err.to_string().contains("run mamori as root"), "{err}");
    }
    assert_eq!(h.run(|| Nft::default().status()).unwrap(), None);
    assert_eq!(h.run(|| Nft::default().blocks()).unwrap(), []);
}
