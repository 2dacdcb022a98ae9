#!/usr/bin/env bash
# Whole-system overhead of the agent (with its vault) on ordinary file work,
# as a ratio against the same work without mamori, in the same session:
#   (a) writing 20,000 small files of 4-64 KiB,
#   (b) compiling a generated C project of 400 files (make -j2),
#   (c) 4 KiB random writes into a 1 GiB file (fio, 64 MiB of writes),
#   (d) reading 20,000 files of 4-64 KiB that were there before (tar), the
#       first time since the agent started, and (e) again,
#   (f) writing 20,000 new files as (a), then rewriting 2,000 files of 4-64
#       KiB that were there before the agent started (each kept once).
# Each round has a middle arm: the same work under a listener that takes the
# events mamori takes and only answers them (crates/sensor/examples/
# answer_only.rs). Its ratio is the floor any agent built on fanotify pays on
# this machine; mamori's ratio over it is what mamori's own work costs.
# With BEFORE=/path/to/an/older/mamori, each round also runs that build (a
# fourth arm, in the same order), and its ratios are printed beside this
# build's: on a machine whose baselines swing by a third between runs, a
# change is measured side by side or not at all.
# Usage: sudo [PAIRS=N] [WORKLOADS="small_files c_project random_writes reading rereading rewriting"] [BEFORE=BIN] scripts/bench-overhead.sh [--ext4|--xfs]
#   --ext4, --xfs: run everything on a new loop-mounted filesystem of that
#   kind (ext4 with its journal; XFS with reflinks, so large files are kept
#   as reflinks instead of by range). Without either, in /var/tmp, on
#   whatever filesystem that is (this machine's root: ext4 without a journal).
set -euo pipefail
source "$(dirname "$0")/common.sh" overhead
comparisons

case "${1:-}" in
  "") fs= ;;
  --ext4) fs=ext4 ;;
  --xfs) fs=xfs ;;
  *) echo "usage: $0 [--ext4|--xfs]" >&2; exit 2 ;;
esac
if [ -n "$fs" ]; then
  # Every run keeps its files to the end (below): room for all five workloads.
  truncate -s 40G "$work/fs.img"
  if [ "$fs" = xfs ]; then mkfs.xfs -q -f -m reflink=1 "$work/fs.img"; else mkfs.ext4 -q -F "$work/fs.img"; fi
  mkdir "$work/fs"
  mount -o loop "$work/fs.img" "$work/fs"
  # The trap runs after $work has moved into the mount: keep the scratch folder's own name.
  scratch=$work
  trap 'kill $(jobs -p) 2>/dev/null || true; wait; umount "$scratch/fs" || umount -l "$scratch/fs"; rm -rf "$scratch"' EXIT
  work=$work/fs
fi

small_files() {
  python3 - "$1" <<'PY'
import os, random, sys
random.seed(7)
root = sys.argv[1]
for i in range(20000):
    d = os.path.join(root, f"d{i % 200:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.dat"), "wb") as f:
        f.write(os.urandom(random.randint(4, 64) * 1024))
PY
}
c_project() {
  mkdir -p "$1/src"
  for i in $(seq 1 400); do
    printf '#include <stdio.h>\n#include <string.h>\nint f%d(const char *s){int h=0; for(;*s;s++) h=h*31+*s; return h ^ %d;}\n' "$i" "$i" > "$1/src/f$i.c"
  done
  printf 'SRCS := $(wildcard src/*.c)\nOBJS := $(SRCS:.c=.o)\nlib.a: $(OBJS)\n\tar rcs $@ $^\n%%.o: %%.c\n\tcc -O2 -c $< -o $@\n' > "$1/Makefile"
  make -s -C "$1" -j2
}
# A workload W may have W_setup (run before the agent starts) and W_warm
# (run after it started), both untimed.
read_all() { tar cf - -C "$1" . | cat >/dev/null; }
reading_setup() { small_files "$1"; }
reading() { read_all "$1"; }
rereading_setup() { small_files "$1"; }
rereading_warm() { read_all "$1"; }
rereading() { read_all "$1"; }
rewriting_setup() { old_files "$1/old"; }
rewriting() {
  small_files "$1"
  python3 - "$1/old" <<'PY'
import os, random, sys
random.seed(13)
for i in range(2000):
    with open(os.path.join(sys.argv[1], f"o{i}.dat"), "wb") as f:
        f.write(os.urandom(random.randint(4, 64) * 1024))
PY
}
random_writes() {
  fio --name=rw --filename="$1/disk.img" --size=1G --rw=randwrite --bs=4k --io_size=64M --ioengine=psync \
      --refill_buffers --end_fsync=1 --output=/dev/null
}

timed() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); python3 -c "print($e - $s)"; }

# One timed run of workload $2 in a folder of its own, under arm $1:
# "without" (nothing), "floor" (the listener that only answers), "with"
# (mamori) or "before" (the build BEFORE names); its seconds go to $work/$1. Not run in $(...): the listener
# must stay a job of this shell, for the exit trap to stop it.
# Every run writes into a folder of its own and nothing is deleted until the
# end: on an ext4 without a journal (this machine's root) the inode allocator
# skips inodes deleted in the last minute or more, so a run right after
# deleting 20,000 files took twice as long as one that was not.
run=0
hook() { if declare -F "$1_$2" >/dev/null; then "$1_$2" "$3"; fi; }
arm() {
  local kind=$1 w=$2 pid= ticks=
  run=$((run + 1))
  local dir="$work/$kind$run" state="$work/state$run"
  mkdir -p "$dir"; hook "$w" setup "$dir"; sync
  case $kind in
    floor)
      "$floor_bin" "$dir" >"$dir.ready" &
      pid=$!
      until [ -s "$dir.ready" ]; do sleep 0.05; done
      ;;
    with | before)
      local agent=$bin
      if [ "$kind" = before ]; then agent=$before_bin; fi
      "$agent" run --protect "$dir" --state "$state" >/dev/null 2>"$work/agent$run.log" &
      pid=$!
      until "$agent" status --state "$state" >/dev/null 2>&1; do sleep 0.1; done
      ;;
  esac
  hook "$w" warm "$dir"
  # The listener's own CPU while timed (user + system, in clock ticks):
  # steadier than the ratio on a machine whose baselines swing, and the
  # answer-only listener's is what any listener pays here.
  if [ -n "$pid" ]; then
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  fi
  timed "$w" "$dir" 2>/dev/null | tail -1 >>"$work/$kind"
  if [ -n "$ticks" ]; then
    awk -v t="$ticks" '{print $14 + $15 - t}' "/proc/$pid/stat" >>"$work/ticks_$kind"
  fi
  if [ "$kind" = with ] || [ "$kind" = before ]; then
    "$bin" incidents --json --state "$state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' >>"$work/incidents"
  fi
  if [ -n "$pid" ]; then kill "$pid"; wait "$pid" || true; fi
}

# This machine's baselines alone vary by half from one run to the next, so
# each workload runs in PAIRS rounds of three (without, answering, mamori),
# the order reversed every other round, and the median ratio is the figure.
pairs=${PAIRS:-3}
for w in ${WORKLOADS:-small_files c_project random_writes reading rereading rewriting}; do
  for f in incidents without floor with before ticks_floor ticks_with ticks_before; do : >"$work/$f"; done
  arms="without floor with${before_bin:+ before}"
  for i in $(seq "$pairs"); do
    if [ $((i % 2)) -eq 1 ]; then order=$arms; else order=$(echo $arms | tr ' ' '\n' | tac | tr '\n' ' '); fi
    for a in $order; do arm $a $w; done
  done
  python3 - "$w" "$work" <<'PY'
import statistics, sys
w, work = sys.argv[1], sys.argv[2]
def numbers(name):
    return [float(n) for n in open(f"{work}/{name}").read().split()]
incidents = sum(int(n) for n in numbers("incidents"))
bases, floors, withs, befores = (numbers(name) for name in ("without", "floor", "with", "before"))
def ratio(tops, bottoms):
    r = [t / b for t, b in zip(tops, bottoms)]
    return f"{statistics.median(r):.2f}x (range {min(r):.2f}-{max(r):.2f}x)"
def cpu(name):
    return f"{statistics.median(numbers(name)) / 100:.2f} s"
runs = ", ".join(f"{b:.2f}/{f:.2f}/{m:.2f}" for b, f, m in zip(bases, floors, withs))
print(f"{w}: mamori {ratio(withs, bases)}; listener that only answers {ratio(floors, bases)}; "
      f"mamori over it {ratio(withs, floors)}; seconds without/answering/mamori: {runs}; "
      f"agent CPU {cpu('ticks_with')} (the listener's {cpu('ticks_floor')}), incidents {incidents}")
if befores:
    print(f"{w}: the build before over the listener {ratio(befores, floors)}; this build over the build before "
          f"{ratio(withs, befores)}; seconds of the build before: {', '.join(f'{b:.2f}' for b in befores)}; "
          f"its agent CPU {cpu('ticks_before')}")
PY
done
