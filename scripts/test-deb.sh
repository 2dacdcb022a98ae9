#!/usr/bin/env bash
# The Debian package, end to end: build it, install it with apt, check what
# it put where, run the service as its unit says (first with the packaged
# config, which names no folder, then with one folder named), attack the
# folder with the simulator and see the attack stopped and undone, stop the
# agent, purge the package and check that nothing is left.
#
#   sudo scripts/test-deb.sh            the package of a dev-profile binary (see below)
#   sudo scripts/test-deb.sh --release  the package as released (cargo deb -p mamori)
#
# Where systemd is PID 1, the service is driven with systemctl; elsewhere
# (containers, CI, this repository's development machine) the unit's own
# ExecCondition, ExecStart and ExecStartPost lines are read from the
# installed unit and run as systemd would run them, ExecStart under the
# unit's capability bounding set and NoNewPrivileges (setpriv). The rest of
# the unit's sandbox needs systemd and is checked by `systemd-analyze verify`
# only; `systemd-analyze security` needs systemd running too.
#
# Without --release the package holds the dev-profile binary (what `cargo
# test` runs): a release build of mamori takes far longer than the rest of
# the tests together on a two-core machine. MAMORI_DEB_PREBUILT=1 (set by
# scripts/test.sh right after `cargo test --workspace`) packages the binary
# that build left instead of building again.
#
# Refuses to run where mamori is installed, or where /etc/mamori,
# /var/lib/mamori or /var/log/mamori exist: purging removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

say() { echo "test-deb: $*"; }
fail() {
	echo "test-deb: FAIL: $*" >&2
	exit 1
}

release=0
case "${1:-}" in
--release) release=1 ;;
"") ;;
*) fail "unknown argument $1 (usage: $0 [--release])" ;;
esac

[ "$(id -u)" = 0 ] || fail "run as root: it installs and purges a package"
if ! command -v cargo >/dev/null; then
	# Under sudo, PATH is root's: take the invoking user's toolchain.
	home=$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)
	[ -x "$home/.cargo/bin/cargo" ] || fail "cargo not found on PATH nor in ~${SUDO_USER:-root}/.cargo/bin"
	export PATH="$home/.cargo/bin:$PATH"
	[ -n "${RUSTUP_HOME:-}" ] || [ ! -d "$home/.rustup" ] || export RUSTUP_HOME="$home/.rustup"
fi
if ! cargo deb --version >/dev/null 2>&1; then
	# Pinned: the dev-profile package relies on --profile dev, which
	# cargo-deb warns it may refuse in a later version.
	say "installing cargo-deb"
	cargo install cargo-deb --version 3.8.0 --locked --quiet
fi
if dpkg-query -W -f='${Status}' mamori 2>/dev/null | grep -q "ok installed"; then
	fail "mamori is installed on this machine; this test installs and purges it: remove it first"
fi
for d in /etc/mamori /var/lib/mamori /var/log/mamori; do
	[ ! -e "$d" ] || fail "$d exists; purging the package would remove it: move it away first"
done

# Everything named mamori in system places before: what is there after the
# purge must be no more (other tests' temporary folders live in /tmp).
leftovers() {
	find /etc /usr /var /opt /srv /run -xdev \( -path /var/tmp -o -path /var/cache/apt/archives \) -prune \
		-o -name '*mamori*' -print 2>/dev/null | sort
}
before=$(leftovers)

work=$(mktemp -d)
chmod 755 "$work" # apt reads the .deb as its _apt user
folder=""
agent=""
attacker=""
installed=0
cleanup() {
	local rc=$?
	[ -z "$attacker" ] || kill -KILL "$attacker" 2>/dev/null || true
	if [ -n "$agent" ] && kill -0 "$agent" 2>/dev/null; then
		kill -TERM "$agent" 2>/dev/null || true
		wait "$agent" 2>/dev/null || true
	fi
	if [ "$installed" = 1 ] && [ -d /run/systemd/system ]; then
		systemctl stop mamori.path mamori.service mamori-reload.service 2>/dev/null || true
	fi
	[ -z "$folder" ] || rm -rf "$folder"
	if [ "$installed" = 1 ]; then
		apt-get purge -y -qq mamori >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	if [ "$rc" != 0 ]; then
		echo "test-deb: failed after $((SECONDS - started)) s" >&2
		[ ! -s "$work.agent.log" ] || { echo "--- agent log:" >&2; tail -40 "$work.agent.log" >&2; }
	fi
	rm -f "$work.agent.log"
	exit "$rc"
}
trap cleanup EXIT

# --- Build ---------------------------------------------------------------
t0=$SECONDS
if [ "$release" = 1 ]; then
	say "building the release package (cargo deb -p mamori)"
	cargo deb -p mamori -o "$work/" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "cargo deb"; }
else
	if [ "${MAMORI_DEB_PREBUILT:-0}" != 1 ]; then
		say "building mamori (dev profile)"
		cargo build -p mamori --quiet || fail "cargo build -p mamori"
	fi
	say "packaging the dev-profile binary (cargo deb --profile dev --no-build)"
	cargo deb -p mamori --profile dev --no-build --no-dbgsym --fast -o "$work/" >"$work/build.log" 2>&1 \
		|| { cat "$work/build.log" >&2; fail "cargo deb"; }
fi
deb=$(find "$work" -maxdepth 1 -name 'mamori_*.deb' | head -1)
[ -n "$deb" ] || fail "cargo deb made no mamori_*.deb in $work"
say "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $((SECONDS - t0)) s"

# --- Install -------------------------------------------------------------
say "apt-get install $(basename "$deb")"
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >"$work/apt.log" 2>&1 \
	|| { cat "$work/apt.log" >&2; fail "apt-get install"; }
dpkg-query -W -f='${Status}' mamori | grep -q "ok installed" || fail "dpkg does not list mamori as installed"

unit=/usr/lib/systemd/system/mamori.service
for f in /usr/bin/mamori "$unit" /usr/lib/systemd/system/mamori.path /usr/lib/systemd/system/mamori-reload.service \
	/usr/lib/systemd/system/mamori-audit.service /usr/lib/systemd/system/mamori-audit.timer \
	/etc/mamori/mamori.toml /usr/share/doc/mamori/mamori.example.toml /usr/share/doc/mamori/copyright; do
	dpkg -L mamori | grep -qx "$f" || fail "the package does not list $f"
	[ -f "$f" ] || fail "$f was not installed"
done
/usr/bin/mamori --version >/dev/null || fail "/usr/bin/mamori --version"
dpkg-query -W -f='${Conffiles}' mamori | grep -q ' /etc/mamori/mamori.toml ' \
	|| fail "/etc/mamori/mamori.toml is not a conffile"
[ "$(stat -c '%a %U' /etc/mamori/mamori.toml)" = "600 root" ] || fail "/etc/mamori/mamori.toml is not 0600 root"
[ "$(stat -c '%a %U %G' /var/lib/mamori)" = "700 root root" ] \
	|| fail "/var/lib/mamori is $(stat -c '%a %U %G' /var/lib/mamori), not 700 root root"
for u in mamori.service mamori.path; do
	[ -L "/etc/systemd/system/multi-user.target.wants/$u" ] || fail "$u is not enabled (no symlink in multi-user.target.wants)"
done
[ -L /etc/systemd/system/timers.target.wants/mamori-audit.timer ] \
	|| fail "mamori-audit.timer is not enabled (no symlink in timers.target.wants)"
# No [Install]: started by mamori.path only.
[ ! -e /etc/systemd/system/multi-user.target.wants/mamori-reload.service ] || fail "mamori-reload.service is enabled"
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify "$unit" /usr/lib/systemd/system/mamori.path /usr/lib/systemd/system/mamori-reload.service \
		/usr/lib/systemd/system/mamori-audit.service /usr/lib/systemd/system/mamori-audit.timer \
		>"$work/verify.log" 2>&1 || { cat "$work/verify.log" >&2; fail "systemd-analyze verify"; }
	# verify exits 0 on some complaints (an unknown key is only logged).
	! grep -q . "$work/verify.log" || { cat "$work/verify.log" >&2; fail "systemd-analyze verify complained"; }
fi
say "installed: files, conffile, /var/lib/mamori 0700, units enabled, units verified"

# The unit's own command lines, as installed.
line() { sed -n "s/^$1=//p" "$unit"; }
condition=$(line ExecCondition)
start=$(line ExecStart)
post=$(line ExecStartPost)
bounding=$(line CapabilityBoundingSet)
for v in "$condition" "$start" "$post" "$bounding"; do
	[ -n "$v" ] || fail "the unit lacks ExecCondition, ExecStart, ExecStartPost or CapabilityBoundingSet"
done
state=/var/lib/mamori

condition_rc() {
	local rc=0
	eval "$condition" >"$work/condition.out" 2>"$work/condition.err" || rc=$?
	[ ! -s "$work/condition.out" ] || fail "ExecCondition printed on stdout: $(cat "$work/condition.out")"
	echo "$rc"
}

# --- The packaged config names no folder: the service would not start --------
[ "$(condition_rc)" = 1 ] || fail "ExecCondition with the packaged config exited $(condition_rc), not 1 (skip)"
cp /etc/mamori/mamori.toml "$work/mamori.toml.orig"
printf '[agent]\nprotect = "not a list"\n' >/etc/mamori/mamori.toml
[ "$(condition_rc)" = 255 ] || fail "ExecCondition with an invalid config exited $(condition_rc), not 255 (fail)"
grep -q "protect" "$work/condition.err" || fail "ExecCondition did not name the bad key: $(cat "$work/condition.err")"
cp "$work/mamori.toml.orig" /etc/mamori/mamori.toml
say "ExecCondition: 1 with the packaged config (skipped), 255 with an invalid one (failed)"

# --- One line names a folder ----------------------------------------------
folder=$(mktemp -d /srv/mamori-deb-test.XXXXXX)
chmod 755 "$folder"
# A marked test folder of documents, for the simulator's attack below.
/usr/bin/mamori sim corpus "$folder" --docs 40 --large 0 >/dev/null || fail "mamori sim corpus"
# Owned by an ordinary account, which attacks it below: stopping another
# user's processes is what needs the unit's capabilities.
chown -R 65534:65534 "$folder"
sed -i "s|^protect = \[\]\$|protect = [\"$folder\"]|" /etc/mamori/mamori.toml
grep -qx "protect = \[\"$folder\"\]" /etc/mamori/mamori.toml || fail "the packaged config has no 'protect = []' line to edit"
[ "$(condition_rc)" = 0 ] || fail "ExecCondition with a folder named exited $(condition_rc), not 0: $(cat "$work/condition.err")"
# Killing an attacker of another account is what needs CAP_KILL in the unit
# (the suspension alone is a cgroup freeze).
printf '\n[response]\npolicy = "kill"\n' >>/etc/mamori/mamori.toml
[ "$(condition_rc)" = 0 ] || fail "ExecCondition with policy = kill exited $(condition_rc): $(cat "$work/condition.err")"

# --- The daily audit's command, as its unit runs it ---------------------------
audit=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/mamori-audit.service)
rc=0
eval "$audit" >"$work/audit.out" 2>"$work/audit.err" || rc=$?
case $rc in 0 | 3 | 4 | 5) ;; *) fail "the audit unit's command exited $rc: $(cat "$work/audit.err")" ;; esac
grep -q '<html lang="ja">' /var/lib/mamori/audit-report.html || fail "the audit unit wrote no Japanese HTML report"
grep -q '"findings"' /var/lib/mamori/audit/last.json || fail "the audit did not remember its findings"
say "the audit unit's command: exit $rc (worst finding), report and last.json written"

if [ -d /run/systemd/system ]; then
	# Saving the config started it through mamori.path and mamori-reload.service.
	say "systemd runs here: waiting for mamori.path to start mamori.service"
	for _ in $(seq 1 300); do
		systemctl is-active --quiet mamori.service && break
		sleep 0.2
	done
	systemctl is-active --quiet mamori.service || {
		systemctl status mamori.service mamori-reload.service --no-pager >&2 || true
		fail "mamori.service did not start within 60 s of the config being saved"
	}
else
	# What systemd would run: ExecStart in a mount namespace of its own with
	# /usr, /etc and /boot read-only and its own /tmp and /var/tmp (the unit's
	# ProtectSystem=full and PrivateTmp=yes), in the unit's capability bounding
	# set, without new privileges; then ExecStartPost until protection is
	# reported. (The unit's seccomp-based settings are not reproduced.)
	if [ "$(line ProtectSystem)" != full ] || [ "$(line PrivateTmp)" != yes ]; then
		fail "the unit's sandbox changed: update this test"
	fi
	caps=$(echo "$bounding" | tr '[:upper:]' '[:lower:]' | sed 's/cap_//g; s/ \+/,+/g; s/^/-all,+/')
	read -r -a argv <<<"$start"
	say "systemd is not PID 1 here: running ExecStart with /usr /etc /boot read-only, a private /tmp, under setpriv --bounding-set=$caps --no-new-privs"
	# shellcheck disable=SC2016 # expanded by the inner sh
	sandbox='set -e
		mount --make-rslave /
		for d in /usr /etc /boot /efi; do
			if [ -d "$d" ]; then mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; fi
		done
		for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
		exec "$@"'
	# unshare and sh exec in turn: $! is the agent's pid.
	unshare --mount -- sh -c "$sandbox" sh \
		setpriv --bounding-set="$caps" --inh-caps=-all --no-new-privs -- "${argv[@]}" >"$work.agent.log" 2>&1 &
	agent=$!
	# systemd ends ExecStartPost when the agent exits; so does this.
	eval "timeout 120 $post" &
	post_pid=$!
	while kill -0 "$post_pid" 2>/dev/null; do
		kill -0 "$agent" 2>/dev/null || { kill "$post_pid" 2>/dev/null; fail "the agent exited while starting"; }
		sleep 0.2
	done
	wait "$post_pid" || fail "ExecStartPost did not see protection within 120 s"
fi
/usr/bin/mamori status --state "$state" >"$work/status" || fail "mamori status exited non-zero: $(cat "$work/status")"
grep -q "protection active" "$work/status" || fail "mamori status does not report protection: $(cat "$work/status")"
grep -qF "$folder" "$work/status" || fail "mamori status does not list $folder: $(cat "$work/status")"
pid=$(sed -n 's/.*protection active (agent pid \([0-9]*\).*/\1/p' "$work/status")
if [ -z "${agent:-}" ]; then agent_pid=$pid; else agent_pid=$agent; fi
# The bounding set is in force: CAP_SYS_MODULE (16) is not among the agent's.
capeff=$(awk '/^CapEff:/ {print $2}' "/proc/$agent_pid/status")
[ -n "$capeff" ] || fail "cannot read the agent's capabilities"
(((16#$capeff >> 16) & 1)) && fail "the agent holds CAP_SYS_MODULE (CapEff $capeff): the bounding set was not applied"
if [ -n "$agent" ]; then
	[ "$pid" = "$agent" ] || fail "mamori status names pid $pid, not the agent started ($agent)"
	[ "$(readlink "/proc/$agent/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] || fail "the agent runs in this mount namespace"
	grep -q ' /usr [^ ]* ro[, ]' "/proc/$agent/mountinfo" || fail "/usr is writable for the agent"
fi
say "protecting $folder (agent pid $pid)"

# An ordinary file dropped in the folder is let through.
echo "an ordinary note" >"$folder/note.txt"
[ "$(cat "$folder/note.txt")" = "an ordinary note" ] || fail "an ordinary write in the protected folder failed"
[ -f "$folder/.0-contracts.pdf" ] || fail "no decoy was placed in $folder"

# An attack is stopped, recorded, and undone.
cp "$folder/note.txt" "$work/note.txt"
sum_before=$(cd "$folder" && find . -type f ! -name '.0-*' -print0 | sort -z | xargs -0 sha256sum | sha256sum)
say "attacking it as uid 65534 (overwrite); bash reports the attacker killed"
(cd / && exec setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/mamori sim run overwrite "$folder" >/dev/null 2>&1) &
attacker=$!
id=""
for _ in $(seq 1 300); do
	id=$(/usr/bin/mamori incidents --state "$state" --json 2>/dev/null | sed -n 's/.*"id": *"\(INC-[0-9]*\)".*/\1/p' | head -1)
	[ -n "$id" ] && break
	sleep 0.2
done
[ -n "$id" ] || fail "no incident within 60 s of the attack"
# Killed by the agent once its evidence is written (gone, or a zombie until
# bash reaps it; wait then gives its status either way).
killed=0
for _ in $(seq 1 300); do
	if ! kill -0 "$attacker" 2>/dev/null \
		|| [ "$(awk '/^State:/ {print $2}' "/proc/$attacker/status" 2>/dev/null)" = Z ]; then
		killed=1
		break
	fi
	sleep 0.2
done
[ "$killed" = 1 ] || fail "the agent did not end the attacker within 60 s of the incident"
attack_rc=0
wait "$attacker" || attack_rc=$?
attacker=""
[ "$attack_rc" = 137 ] || fail "the attacker was not killed by the agent (exit $attack_rc; 137 is SIGKILL)"
/usr/bin/mamori restore "$id" --state "$state" >"$work/restore.log" 2>&1 \
	|| { cat "$work/restore.log" >&2; fail "mamori restore $id"; }
sum_after=$(cd "$folder" && find . -type f ! -name '.0-*' -print0 | sort -z | xargs -0 sha256sum | sha256sum)
[ "$sum_before" = "$sum_after" ] || fail "after mamori restore $id the folder differs from before the attack"
say "attack stopped ($id), killed by the agent, and every file restored"

# Stopped as systemd stops it: SIGTERM, and a clean exit.
if [ -d /run/systemd/system ]; then
	systemctl stop mamori.service || fail "systemctl stop mamori"
else
	kill -TERM "$agent"
	rc=0
	for _ in $(seq 1 150); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$agent" 2>/dev/null && fail "the agent did not exit within 15 s of SIGTERM (TimeoutStopSec)"
	wait "$agent" || rc=$?
	agent=""
	[ "$rc" = 0 ] || fail "the agent exited $rc on SIGTERM"
fi
! /usr/bin/mamori status --state "$state" >/dev/null 2>&1 || fail "mamori status still reports protection after the stop"
rm -rf "$folder"
folder=""
say "stopped by SIGTERM, exit 0"

# --- Purge ---------------------------------------------------------------
apt-get purge -y -qq mamori >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get purge"; }
installed=0
! dpkg-query -W -f='${Status}' mamori 2>/dev/null | grep -q "installed" || fail "dpkg still lists mamori after the purge"
! dpkg -L mamori >/dev/null 2>&1 || fail "dpkg -L mamori still lists files after the purge"
for d in /etc/mamori /var/lib/mamori /var/log/mamori /usr/bin/mamori; do
	[ ! -e "$d" ] || fail "$d is left after the purge"
done
! ls /etc/systemd/system/*/mamori* /var/lib/systemd/deb-systemd-helper-enabled/*mamori* \
	/var/lib/systemd/deb-systemd-helper-masked/*mamori* >/dev/null 2>&1 || fail "unit symlinks or state left after the purge"
after=$(leftovers)
new=$(comm -13 <(echo "$before") <(echo "$after"))
[ -z "$new" ] || fail "left after the purge: $new"
say "purged: nothing named mamori left in /etc /usr /var /opt /srv /run"
say "ok in $((SECONDS - started)) s"
