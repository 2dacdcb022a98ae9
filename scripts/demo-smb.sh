#!/usr/bin/env bash
# mamori defending a Samba share, on this machine alone: a real smbd in a
# network namespace of its own serving a folder of sample documents, two SMB
# clients in namespaces of their own (one attacks the share, one works
# honestly all along), the agent protecting the folder. Shows the attacking
# client judged on its own, cut off (its address blocked, its smbd ended,
# the other client unaffected), the incident and its report, and every file
# put back by `mamori restore`.
# Usage: sudo scripts/demo-smb.sh [--no-decoys]   (needs samba, smbclient,
#   iproute2, nftables and the Python package smbprotocol: see .ci/run)
#   --no-decoys: without decoy files, so the attack is caught by what it
#   does to the documents alone.
# Nothing leaves this machine: every address is in namespaces this script
# makes, and everything it made is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
decoys=true
case "${1:-}" in
  "") ;;
  --no-decoys) decoys=false ;;
  *) echo "usage: $0 [--no-decoys]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "run as root (fanotify, namespaces, nftables)" >&2; exit 1; }
for tool in smbd smbpasswd ip nft python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install samba smbclient iproute2 nftables" >&2; exit 1; }
done
python3 -c 'import smbclient' 2>/dev/null || { echo "python3 -m pip install smbprotocol" >&2; exit 1; }

cargo build --release -q -p mamori
mamori=${CARGO_TARGET_DIR:-$PWD/target}/release/mamori
client_py=$PWD/crates/smblab/client.py

work=$(mktemp -d /var/tmp/mamori-demo-smb-XXXXXX)
chmod 755 "$work"
ns=mdemo-$$
user=mamori-demo
password=demo-$$
agent_pid=
smbd_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  if [ -f "$work/pid/smbd.pid" ]; then smbd_pid=$(cat "$work/pid/smbd.pid"); fi
  # Only the smbd this script started, found by its own pid file.
  [ -n "$smbd_pid" ] && kill "$smbd_pid" 2>/dev/null
  for n in "$ns" "$ns-attacker" "$ns-honest"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "A share of sample documents, served by Samba in namespace $ns (10.79.0.1)"
mkdir -p "$work"/{private,lock,state,cache,pid,ncalrpc,log}
"$mamori" sim corpus "$work/share" --docs 60 --large 0 >/dev/null
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
chown -R "$user:" "$work/share"
{
  # The lab's server config (crates/smblab/smb.conf.in), with one share.
  sed "s|@DIR@|$work|g" crates/smblab/smb.conf.in
  printf '\n[share]\npath = %s/share\nread only = no\n' "$work"
} >"$work/smb.conf"
printf '%s\n%s\n' "$password" "$password" | smbpasswd -c "$work/smb.conf" -s -a "$user" >/dev/null
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" addr add 10.79.0.1/24 dev br0
ip -n "$ns" link set br0 up
for who in attacker honest; do
  n=$([ "$who" = attacker ] && echo 11 || echo 12)
  ip netns add "$ns-$who"
  ip -n "$ns" link add "$who" type veth peer name eth0 netns "$ns-$who"
  ip -n "$ns" link set "$who" master br0 up
  ip -n "$ns-$who" link set lo up
  ip -n "$ns-$who" addr add "10.79.0.$n/24" dev eth0
  ip -n "$ns-$who" link set eth0 up
done
ip netns exec "$ns" smbd -s "$work/smb.conf" -D
for _ in $(seq 100); do [ -s "$work/pid/smbd.pid" ] && break; sleep 0.1; done
smbd_pid=$(cat "$work/pid/smbd.pid")
sleep 1
# The agent's decoys (.0-*.pdf) are its own, put back by it, not compared.
snapshot() { find "$work/share" -type f -not -path '*/zz-honest/*' -not -name '.0-*.pdf' -exec sha256sum {} + | sort; }
snapshot >"$work/before.sha256"

step "mamori protects the folder (no Samba settings needed)"
printf '[canary]\nenabled = %s\n' "$decoys" >"$work/mamori.toml"
"$mamori" run --protect "$work/share" --state "$work/mamori" --config "$work/mamori.toml" >"$work/agent.log" 2>&1 &
agent_pid=$!
until "$mamori" status --state "$work/mamori" >/dev/null 2>&1; do sleep 0.2; done
"$mamori" status --state "$work/mamori"

smb() { local who=$1; shift; ip netns exec "$ns-$who" python3 "$client_py" --server 10.79.0.1 --share share \
  --user "$user" --password "$password" "$@"; }

step "Client 10.79.0.12 works honestly; client 10.79.0.11 starts encrypting the share over SMB"
smb honest honest --interval 0.1 --dir zz-honest --stop-file "$work/stop-honest" >"$work/honest.json" &
honest_pid=$!
sleep 1
smb attacker overwrite --op-timeout 10 >"$work/attack.json" || true
python3 - "$work/attack.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
f = s.get("first_failure") or {}
print("attacker: %d file(s) encrypted before its requests failed (%s)" % (s["touched"], f.get("error", "no failure")))
EOF
sleep 3
touch "$work/stop-honest"
wait "$honest_pid" || true
python3 - "$work/honest.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print("honest client: %d operations succeeded, %d failed" % (s["successes"], s["failures"]))
EOF

step "The incident: the client, not the server, and how it was cut off"
for _ in $(seq 100); do
  "$mamori" incidents --state "$work/mamori" --json | grep -q '"ended"' && break
  sleep 0.3
done
"$mamori" incidents --state "$work/mamori"
"$mamori" incidents --state "$work/mamori" --json | python3 -c '
import json, sys
inc = json.load(sys.stdin)[0]
c = inc["client"]["client"]
print("client %s (user %s, shares %s)" % (c["address"], c.get("user", "?"), ", ".join(c.get("shares", []))))
for s in inc["client"]["steps"]:
    print("  %s  %-9s %s  %s" % (s["at"], s["kind"], "ok" if s["ok"] else "FAILED", s["detail"]))'
"$mamori" status --state "$work/mamori" | grep "client blocked" || true
id=$("$mamori" incidents --state "$work/mamori" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

step "The report names the terminal to isolate (first lines)"
"$mamori" report "$id" --state "$work/mamori" --lang en | sed -n '1,14p'

step "Restore: every file put back as it was"
"$mamori" restore "$id" --state "$work/mamori"
snapshot >"$work/after.sha256"
if diff -q "$work/before.sha256" "$work/after.sha256" >/dev/null; then
  echo "all $(wc -l <"$work/before.sha256") files identical to before the attack"
else
  echo "DIFFERENCES:"; diff "$work/before.sha256" "$work/after.sha256" | head
fi
"$mamori" unblock 10.79.0.11 --state "$work/mamori"
