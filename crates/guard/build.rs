//! Compiles the BPF program with clang when there is one, so that a machine
//! without clang still builds mamori (with the vault lock left out) while a
//! broken `.c` file fails the build where it can be compiled.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "src/bpf/guard.bpf.c";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mamori_guard_bpf)");
    println!("cargo::rerun-if-changed={SOURCE}");
    println!("cargo::rerun-if-env-changed=MAMORI_CLANG");

    let clang = env::var_os("MAMORI_CLANG").unwrap_or_else(|| "clang".into());
    if Command::new(&clang).arg("--version").output().is_err() {
        println!(
            "cargo::warning=clang not found ({}): the BPF vault lock is left out and Guard::start will \
             return NotBuilt; to build it: apt-get install clang libbpf-dev, then rebuild \
             (or point MAMORI_CLANG at a clang)",
            PathBuf::from(&clang).display()
        );
        return;
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps under the
    // multiarch directory that `-target bpf` does not search by default.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    for (object, defines) in [("guard.bpf.o", &[][..]), ("guard-verify.bpf.o", &["-DGUARD_VERIFY"][..])] {
        let status = Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror", &multiarch])
            .args(defines)
            .args(["-c", SOURCE, "-o"])
            .arg(out_dir.join(object))
            .status()
            .expect("clang ran for --version but could not be started again");
        if !status.success() {
            panic!(
                "clang failed to compile {SOURCE} (see its messages above); <bpf/bpf_helpers.h> comes from \
                 Debian's libbpf-dev"
            );
        }
    }
    println!("cargo::rustc-cfg=mamori_guard_bpf");
}
