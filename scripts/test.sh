#!/usr/bin/env bash
# The README's test command: installs the programs the tests use (Debian 12,
# apt and pip), then runs every test: `cargo test --workspace`, then the
# Debian package's (scripts/test-deb.sh). As root: the agent needs it.
#
#   sudo scripts/test.sh             install what is missing, then test
#   sudo scripts/test.sh --install   only install what is missing
set -euo pipefail
cd "$(dirname "$0")/.."

install_only=0
case "${1:-}" in
--install) install_only=1 ;;
"") ;;
*)
	echo "usage: $0 [--install]" >&2
	exit 2
	;;
esac
if [ "$(id -u)" != 0 ]; then
	echo "test.sh: run as root (sudo scripts/test.sh): the tests run a real agent on fanotify" >&2
	exit 1
fi

# The benign workloads that the tests run under the agent are real programs;
# isolation is tested with nftables in network namespaces (iproute2, setpriv
# from util-linux); the report is looked at in a real headless Chromium, with
# Japanese fonts so the Japanese report renders. clang and libbpf's headers
# build the vault's BPF LSM lock (without them it is left out of the build).
# The SMB tests run a real smbd (samba) in network namespaces, and
# user-space clients (smbclient, and the Python package smbprotocol below).
# The alert outputs are tested against a real rsyslog (with TLS: its gnutls
# module; certificates made with openssl), a real systemd-journald in a
# mount namespace of its own, and a real postfix (SASL through sasl2-bin's
# sasldb). `mamori audit` is tested against what it audits: a real sshd
# (openssh-server), smbd with vfs_full_audit (samba-vfs-modules), restic and
# borg (borgbackup) repositories, one served append-only by rclone. The
# Debian package is checked with systemd-analyze (systemd) and installed with apt.
packages=(attr xfsprogs git rsync restic ccrypt fio sqlite3 zip unzip p7zip-full imagemagick qemu-utils python3
	nftables iproute2 util-linux chromium fonts-ipafont-gothic clang libbpf-dev samba smbclient python3-pip
	rsyslog rsyslog-gnutls postfix sasl2-bin libsasl2-modules openssl systemd
	openssh-server samba-vfs-modules rclone borgbackup)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	# postfix asks how to deliver mail; the tests start their own postfix
	# with a configuration of their own, so the system's stays unconfigured.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A system smbd, rsyslogd or postfix that a postinst may start listens on the
# usual ports only; the tests' servers use namespaces or free ports of their
# own, so those are left be.

# The lab's SMB clients run the `python3` on PATH (pyenv's, or Debian's,
# which refuses pip installs into it unless told to).
if ! python3 -c 'import smbclient, smbprotocol' 2>/dev/null; then
	python3 -m pip install --quiet smbprotocol 2>/dev/null \
		|| python3 -m pip install --quiet --break-system-packages smbprotocol
fi
[ "$install_only" = 0 ] || exit 0

if ! command -v cargo >/dev/null; then
	# sudo resets PATH: take the toolchain of the user who ran sudo.
	home=$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)
	if [ ! -x "$home/.cargo/bin/cargo" ]; then
		echo "test.sh: cargo is not on PATH nor in ~${SUDO_USER:-root}/.cargo/bin" >&2
		exit 1
	fi
	export PATH="$home/.cargo/bin:$PATH"
	# rustup's proxies find the toolchain there; crates are fetched into
	# root's own ~/.cargo, so none of the user's files become root's.
	[ -n "${RUSTUP_HOME:-}" ] || [ ! -d "$home/.rustup" ] || export RUSTUP_HOME="$home/.rustup"
fi

cargo test --workspace
# The binary that run just built is the one packaged.
MAMORI_DEB_PREBUILT=1 scripts/test-deb.sh
