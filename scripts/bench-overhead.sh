#!/usr/bin/env bash
# Whole-system overhead of the agent (with its vault) on ordinary file work,
# as a ratio against the same work without mamori, in the same session:
#   (a) writing 20,000 small files of 4-64 KiB,
#   (b) compiling a generated C project of 400 files (make -j2),
#   (c) 4 KiB random writes into a 1 GiB file (fio, 64 MiB of writes).
# Usage: sudo scripts/bench-overhead.sh [--xfs]
#   --xfs: run everything on a loop-mounted XFS with reflinks (large files are
#   then kept as reflinks instead of by range; this machine's root is ext4).
set -euo pipefail
source "$(dirname "$0")/common.sh" overhead

if [ "${1:-}" = "--xfs" ]; then
  truncate -s 8G "$work/xfs.img"
  mkfs.xfs -q -f -m reflink=1 "$work/xfs.img"
  mkdir "$work/xfs"
  mount -o loop "$work/xfs.img" "$work/xfs"
  # The trap runs after $work has moved into the mount: keep the scratch folder's own name.
  scratch=$work
  trap 'kill $(jobs -p) 2>/dev/null || true; wait; umount "$scratch/xfs" || umount -l "$scratch/xfs"; rm -rf "$scratch"' EXIT
  work=$work/xfs
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
random_writes() {
  fio --name=rw --filename="$1/disk.img" --size=1G --rw=randwrite --bs=4k --io_size=64M --ioengine=psync \
      --refill_buffers --end_fsync=1 --output=/dev/null
}

timed() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); python3 -c "print($e - $s)"; }

declare -A base with
for w in small_files c_project random_writes; do
  rm -rf "$work/plain"; mkdir -p "$work/plain"; sync
  base[$w]=$(timed $w "$work/plain" 2>/dev/null | tail -1)
  rm -rf "$work/prot" "$work/state"; mkdir -p "$work/prot"; sync
  "$bin" run --protect "$work/prot" --state "$work/state" 2>"$work/agent.log" &
  agent=$!
  until "$bin" status --state "$work/state" >/dev/null 2>&1; do sleep 0.1; done
  with[$w]=$(timed $w "$work/prot" 2>/dev/null | tail -1)
  n=$("$bin" incidents --json --state "$work/state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  kill "$agent"; wait "$agent" || true
  python3 -c "print(f'$w: without {${base[$w]}:.2f} s, with mamori {${with[$w]}:.2f} s, ratio {${with[$w]}/${base[$w]}:.2f}x, incidents $n')"
done
