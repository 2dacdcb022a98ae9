# Shared set-up of the benchmark scripts: a release build and a scratch
# folder under /var/tmp that is removed (with any agent left running) on exit.
# Usage: source scripts/common.sh NAME   → sets $bin and $work
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q
bin=$PWD/target/release/mamori
work=$(mktemp -d "/var/tmp/mamori-$1-XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# 2,000 files of 4-64 KiB of random bytes in the new folder $1, the same
# sizes every time: what workload (f) of bench-overhead.sh rewrites.
old_files() {
  python3 - "$1" <<'PY'
import os, random, sys
random.seed(11)
os.makedirs(sys.argv[1])
for i in range(2000):
    with open(os.path.join(sys.argv[1], f"o{i}.dat"), "wb") as f:
        f.write(os.urandom(random.randint(4, 64) * 1024))
PY
}

# Builds the listener that only answers (its path in $floor_bin) and checks
# BEFORE, an older mamori to run beside this build ($before_bin, or empty).
comparisons() {
  cargo build --release -q -p mamori-sensor --example answer_only
  floor_bin=$PWD/target/release/examples/answer_only
  before_bin=${BEFORE:-}
  if [ -n "$before_bin" ] && ! [ -x "$before_bin" ]; then echo "BEFORE=$before_bin is not a program" >&2; exit 2; fi
}
