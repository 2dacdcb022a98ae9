#!/usr/bin/env bash
# mamori in front of a Samba share with many SMB clients at once: 50 client
# machines (network namespaces on a bridge) run the same mixed work against
# one real smbd (in a namespace of its own, configured as crates/smblab
# does), each client `client.py honest --limit N --interval 0` (write a
# note, read it back, 20 notes rewritten in turn, in a folder of its own)
# and then `client.py backup-read --limit M` (list its share, read the first
# M files). Three arms, the order reversed every other round:
#   none    nothing listening;
#   floor   crates/sensor/examples/answer_only.rs on the share: the marks
#           mamori takes, every event answered at once (the kernel's floor,
#           as in scripts/bench-overhead.sh);
#   mamori  `mamori run --protect SHARE --state S --record TRACE` (defaults:
#           vault and decoys on).
# Each run has a share of its own (so every run meets the same files, none
# read since the agent started), seeded and marked with `mamori sim corpus`.
# LAYOUT=own (the default): the share's path is SHARE/%I, a folder per
#   client address, each seeded with DOCS documents (like home shares);
#   mamori protects SHARE, so one agent judges all 50 clients.
# LAYOUT=shared: every client works in the one folder SHARE, seeded with
#   DOCS documents, and every backup-read reads the same files (and the
#   agent's decoys at its root). client.py opens files without sharing
#   (smbclient's default share_access), so concurrent readers of one file
#   meet sharing violations: failures are expected there.
# Printed: the workload's wall time per arm and its ratio to none, SMB
# operations per second from the clients' JSON summaries and their failed
# requests; with mamori, its CPU time while the clients ran, its peak RSS
# (VmHWM), its incidents (0 expected), and from its trace which file events
# of smbd's per-client processes named their client (and how many distinct
# clients were seen: all of them expected).
# Usage: sudo [ROUNDS=2] [CLIENTS=50] [HONEST=N] [BACKUP=M] [DOCS=D] [LAYOUT=own|shared] [KEEP=1] scripts/bench-smb.sh
#   KEEP=1 leaves the scratch folder (traces, clients' summaries, logs) in /var/tmp.
# Needs root, samba, iproute2 and python3 with smbprotocol (see crates/smblab).
# The binaries come from $CARGO_TARGET_DIR (default target/) and are built first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rounds=${ROUNDS:-2}
clients=${CLIENTS:-50}
honest=${HONEST:-100}
backup=${BACKUP:-20}
layout=${LAYOUT:-own}
case $layout in
  own) docs=${DOCS:-20} ;;
  shared) docs=${DOCS:-150} ;;
  *) echo "LAYOUT is own or shared" >&2; exit 2 ;;
esac
if [ "$clients" -lt 1 ] || [ "$clients" -gt 200 ]; then echo "CLIENTS runs from 1 to 200" >&2; exit 2; fi

target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p mamori
cargo build --release -q -p mamori-sensor --example answer_only
bin=$target/release/mamori
floor_bin=$target/release/examples/answer_only
client_py=$PWD/crates/smblab/client.py

# The Samba user's unix account, the one crates/smblab uses (made if missing).
user=mamori-smb
password=mamori-bench-1
for tool in smbd smbpasswd ip python3; do
  PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null || { echo "$tool is missing (see crates/smblab)" >&2; exit 1; }
done
export PATH=$PATH:/usr/sbin:/sbin
python3 -c 'import smbclient, smbprotocol' || { echo "python3 lacks smbprotocol (pip install smbprotocol)" >&2; exit 1; }
id -u "$user" >/dev/null 2>&1 ||
  useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$user"

work=$(mktemp -d /var/tmp/mamori-smb-XXXXXX)
# smbd's per-client processes run as the Samba user and must reach the shares.
chmod 755 "$work"
conf=$work/smb/smb.conf
# Names and a subnet of this run's own: 10.78.S.1 is the server, 10.78.S.(10+n) client n.
subnet=$(($$ % 250 + 1))
prefix=mbsmb-$$
server_ns=$prefix-srv
server=10.78.$subnet.1
namespaces=()

# The children of pid $1 (the fields after the last ')' of /proc/PID/stat:
# the command name may hold spaces).
children() {
  awk -v p="$1" '{sub(/.*\) /, "")} $2 == p {split(FILENAME, f, "/"); print f[3]}' /proc/[0-9]*/stat 2>/dev/null || true
}
# The descendants of the given pids.
descendants() {
  local p c
  for p in "$@"; do
    while read -r c; do
      descendants "$c"
      echo "$c"
    done < <(children "$p")
  done
}
# Whether pid $1 is a smbd running this script's config.
ours() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qxF "$conf"; }
stop_smbd() {
  local master kids p i
  master=$(cat "$work/smb/pid/smbd.pid" 2>/dev/null) || return 0
  ours "$master" || return 0
  kids=$(children "$master")
  kill -TERM "$master"
  for i in $(seq 100); do ours "$master" || break; sleep 0.05; done
  for p in $master $kids; do if ours "$p"; then kill -KILL "$p"; fi; done
}
cleanup() {
  set +e
  local jobs pids
  # This shell's jobs not yet waited for (agents, listeners, clients; their
  # pids cannot have been reused) and what they started.
  mapfile -t jobs < <(jobs -p)
  mapfile -t pids < <(descendants "${jobs[@]}")
  kill "${jobs[@]}" "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
  stop_smbd
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- the server: one smbd, one share per run (so each run meets the same files)
runs=$((3 * rounds))
mkdir -p "$work/smb" "$work/out"
for sub in private lock state cache pid ncalrpc; do mkdir "$work/smb/$sub"; done
{
  d=$work/smb
  sed "s|@DIR@|$d|g" crates/smblab/smb.conf.in
  # %I: the client's address.
  sub=; if [ "$layout" = own ]; then sub=/%I; fi
  for r in $(seq "$runs"); do printf '\n[run%d]\npath = %s/share%d%s\nread only = no\n' "$r" "$d" "$r" "$sub"; done
} >"$conf"
for r in $(seq "$runs"); do
  if [ "$layout" = own ]; then
    mkdir "$work/smb/share$r"
    folders=$(for n in $(seq "$clients"); do echo "$work/smb/share$r/10.78.$subnet.$((10 + n))"; done)
  else
    folders=$work/smb/share$r
  fi
  for f in $folders; do
    # Seeds the folder and marks it as the simulator's test target.
    "$bin" sim corpus "$f" --docs "$docs" --large 0 >/dev/null
    chown -R "$user:" "$f"
  done
done
printf '%s\n%s\n' "$password" "$password" | smbpasswd -c "$conf" -s -a "$user" >/dev/null

namespaces+=("$server_ns")
ip netns add "$server_ns"
ip -n "$server_ns" link set lo up
ip -n "$server_ns" link add br0 type bridge
ip -n "$server_ns" addr add "$server/24" dev br0
ip -n "$server_ns" link set br0 up
for n in $(seq "$clients"); do
  ns=$prefix-c$n
  namespaces+=("$ns")
  ip netns add "$ns"
  # Made inside the server's namespace: the names never meet the host's.
  ip -n "$server_ns" link add "c$n" type veth peer name eth0 netns "$ns"
  ip -n "$server_ns" link set "c$n" master br0
  ip -n "$server_ns" link set "c$n" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "10.78.$subnet.$((10 + n))/24" dev eth0
  ip -n "$ns" link set eth0 up
done
ip netns exec "$server_ns" smbd -s "$conf" -D
for i in $(seq 400); do
  smbd_pid=$(cat "$work/smb/pid/smbd.pid" 2>/dev/null || true)
  # Local port 445 (01BD) in state LISTEN (0A), in smbd's namespace.
  if [ -n "$smbd_pid" ] && awk 'NR > 1 && $2 ~ /:01BD$/ && $4 == "0A" {found = 1} END {exit !found}' \
      "/proc/$smbd_pid/net/tcp" 2>/dev/null; then break; fi
  [ "$i" -lt 400 ] || { echo "smbd did not listen on $server:445; see $work/smb/log.*" >&2; exit 1; }
  sleep 0.05
done

# --- the workload: every client at once; its files go to $work/out/RUN/
smb() {
  local n=$1 share=$2
  shift 2
  ip netns exec "$prefix-c$n" python3 "$client_py" --server "$server" --share "$share" \
    --user "$user" --password "$password" "$@"
}
client_work() {
  local r=$1 n=$2 out=$work/out/$1/c$2
  smb "$n" "run$r" honest --limit "$honest" --interval 0 --dir "c$n" >"$out-honest.json" 2>"$out-honest.err" ||
    echo "honest exit $?" >>"$out.failed"
  smb "$n" "run$r" backup-read --limit "$backup" >"$out-backup.json" 2>"$out-backup.err" ||
    echo "backup-read exit $?" >>"$out.failed"
}
workload() {
  local r=$1 n pids=()
  mkdir -p "$work/out/$r"
  for n in $(seq "$clients"); do
    client_work "$r" "$n" &
    pids+=("$!")
  done
  for n in "${pids[@]}"; do wait "$n"; done
}

hz=$(getconf CLK_TCK)
# One run $1 under arm $2; a line "run arm seconds cpu hwm incidents" goes to $work/runs.
# Not run in $(...): the listener must stay a job of this shell.
arm() {
  local r=$1 kind=$2 pid='' ticks=0 s e cpu=- hwm=- incidents=-
  local share=$work/smb/share$r state=$work/state$r
  case $kind in
    floor)
      "$floor_bin" "$share" >"$work/floor$r.ready" 2>"$work/floor$r.log" &
      pid=$!
      until [ -s "$work/floor$r.ready" ]; do sleep 0.05; done
      ;;
    mamori)
      "$bin" run --protect "$share" --state "$state" --record "$work/trace$r.jsonl" >/dev/null 2>"$work/agent$r.log" &
      pid=$!
      until "$bin" status --state "$state" >/dev/null 2>&1; do sleep 0.1; done
      ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
      ;;
  esac
  s=$(date +%s.%N)
  workload "$r"
  e=$(date +%s.%N)
  if [ "$kind" = mamori ]; then
    cpu=$(awk -v t="$ticks" -v hz="$hz" '{printf "%.2f", ($14 + $15 - t) / hz}' "/proc/$pid/stat")
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    sleep 1
    incidents=$("$bin" incidents --json --state "$state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  fi
  if [ -n "$pid" ]; then kill "$pid"; wait "$pid" || true; fi
  echo "$r $kind $(python3 -c "print(f'{$e - $s:.2f}')") $cpu $hwm $incidents" | tee -a "$work/runs" >&2
}

r=0
for i in $(seq "$rounds"); do
  if [ $((i % 2)) -eq 1 ]; then order="none floor mamori"; else order="mamori floor none"; fi
  for kind in $order; do r=$((r + 1)); arm "$r" "$kind"; done
done

# --- the figures
python3 - "$work" "$clients" "$honest" "$backup" "$docs" "$layout" "$(nproc)" "$(uname -r)" "$(smbd --version)" <<'PY'
import glob, json, os, statistics, sys
work, clients, honest, backup, docs, layout, nproc, kernel, samba = sys.argv[1:]
clients = int(clients)
runs = [line.split() for line in open(f"{work}/runs")]
arms = ("none", "floor", "mamori")

def summaries(r):
    out = []
    for path in sorted(glob.glob(f"{work}/out/{r}/c*.json")):
        text = open(path).read().strip().splitlines()
        out.append(json.loads(text[-1]) if text else {"missing": path})
    return out

per = {a: [] for a in arms}
for r, kind, secs, cpu, hwm, inc in runs:
    ss = summaries(r)
    ops = sum(len(s.get("ops", [])) for s in ss)
    span = max(s.get("ended", 0) for s in ss) - min(s.get("started", 1e18) for s in ss)
    # honest counts its failed write-reads and goes on; backup-read stops at its first.
    failed = sum(s.get("failures", 0) if s.get("workload") == "honest" else int(bool(s.get("first_failure"))) for s in ss)
    failed_runs = len(glob.glob(f"{work}/out/{r}/*.failed")) + sum(1 for s in ss if "missing" in s)
    per[kind].append({"run": int(r), "secs": float(secs), "ops": ops, "rate": ops / span if span > 0 else 0,
                      "failed": failed, "exits": failed_runs,
                      "cpu": cpu, "hwm": hwm, "inc": inc})

# Attribution from each mamori trace: file events of smbd's per-client
# processes (exe .../smbd whose parent is smbd too), with a client or without.
FILE = {"Open", "CloseWrite", "Create", "Delete", "Rename"}
def attribution(path):
    procs = {}
    a = {"with": 0, "without": 0, "null": {}, "other": 0, "lost": 0, "clients": set(), "children": set(), "bare": set()}
    for line in open(path):
        ev = json.loads(line)
        kind = ev["kind"]
        name = next(iter(kind)) if isinstance(kind, dict) else kind
        if name == "Proc":
            info = kind["Proc"]
            procs[(info["key"]["pid"], info["key"]["start"])] = info
            continue
        if name == "Overflow":
            a["lost"] += kind["Overflow"]["lost"]
        if ev["proc"] is None:
            a["null"][name] = a["null"].get(name, 0) + 1
            continue
        if name not in FILE:
            continue
        key = (ev["proc"]["pid"], ev["proc"]["start"])
        info = procs.get(key)
        parent = info and info["parent"] and procs.get((info["parent"]["pid"], info["parent"]["start"]))
        if info and info["exe"].endswith("/smbd") and parent and parent["exe"].endswith("/smbd"):
            a["children"].add(key)
            if info.get("client"):
                a["with"] += 1
                a["clients"].add(info["client"]["address"])
            else:
                a["without"] += 1
                a["bare"].add(key)
        else:
            a["other"] += 1
    return a

attr = []
for m in per["mamori"]:
    a = attribution(f"{work}/trace{m['run']}.jsonl")
    m["attr"] = a
    print(f"run {m['run']} trace: smbd children with file events {len(a['children'])} "
          f"(without a client: {len(a['bare'])}); file events with a client {a['with']}, without {a['without']}, "
          f"of other processes {a['other']}; events with proc null {a['null']} (lost to overflow {a['lost']}); "
          f"distinct clients {len(a['clients'])}", file=sys.stderr)

def med(xs):
    return statistics.median(xs) if xs else float("nan")
base = {m["run"]: m for m in per["none"]}
def ratio(kind):
    # Each run against the none run of its own round.
    rs = []
    for i, m in enumerate(per[kind]):
        rs.append(m["secs"] / per["none"][i]["secs"])
    return f"{med(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"

rounds = len(per["none"])
print()
where = f"a folder of its own seeded with {docs} documents" if layout == "own" else f"one folder for all, seeded with {docs} documents"
print(f"{clients} SMB clients at once, each `honest --limit {honest} --interval 0` then `backup-read --limit {backup}`, "
      f"in {where}; {rounds} rounds, order reversed every other round")
print()
print("| | no listener | answer-only floor | mamori (`--record`) |")
print("|---|---|---|---|")
print("| workload wall time, s (per round) | " + " | ".join(", ".join(f"{m['secs']:.1f}" for m in per[k]) for k in arms) + " |")
print(f"| ratio to no listener, median (range) | 1.00x | {ratio('floor')} | {ratio('mamori')} |")
print("| SMB ops/s, all clients (median) | " + " | ".join(f"{med([m['rate'] for m in per[k]]):.0f}" for k in arms) + " |")
print("| SMB ops per run | " + " | ".join(f"{med([m['ops'] for m in per[k]]):.0f}" for k in arms) + " |")
print("| failed requests / clients that exited non-zero (all rounds) | " + " | ".join(
    f"{sum(m['failed'] for m in per[k])} / {sum(m['exits'] for m in per[k])}" for k in arms) + " |")
ms = per["mamori"]
def each(f):
    return ", ".join(f(m) for m in ms)
print(f"| agent CPU while the clients ran, s | | | {each(lambda m: m['cpu'])} |")
print(f"| agent peak RSS (VmHWM), MiB | | | {each(lambda m: str(round(int(m['hwm']) / 1024)))} |")
print(f"| incidents | | | {each(lambda m: m['inc'])} |")
print(f"| file events of smbd client processes: with a client / without | | | "
      f"{each(lambda m: str(m['attr']['with']) + ' / ' + str(m['attr']['without']))} |")
print(f"| smbd client processes without a client (of all with file events) | | | "
      f"{each(lambda m: str(len(m['attr']['bare'])) + ' of ' + str(len(m['attr']['children'])))} |")
print(f"| file events of other processes | | | {each(lambda m: str(m['attr']['other']))} |")
def nulls(a):
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(a["null"].items()))
    return f"{sum(a['null'].values())} ({kinds or 'none'}; events lost {a['lost']})"
print(f"| events with `proc: null` (by kind) | | | {each(lambda m: nulls(m['attr']))} |")
print(f"| distinct clients seen (of {clients}) | | | {each(lambda m: str(len(m['attr']['clients'])))} |")
print()
print(f"Machine: {nproc} cores, kernel {kernel}, {samba}; every ratio is a run over the no-listener run of its own round.")
bad = [m for m in ms if m["inc"] != "0" or len(m["attr"]["clients"]) != clients]
if bad or any(m["failed"] or m["exits"] for k in arms for m in per[k]):
    print("\nWARNING: incidents, failures or unseen clients above", file=sys.stderr)
    sys.exit(1)
PY
