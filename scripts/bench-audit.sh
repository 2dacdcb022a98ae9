#!/usr/bin/env bash
# How long `mamori audit` takes on a host with a large restic repository:
# GIB GiB of incompressible files (default 10) in files of 8 MiB, backed up
# into a local repository, then one full audit of that repository with the
# config's defaults (1/20 of the data read by `restic check`, a drill of 20
# files). Prints the audit's wall time, restic's own time for the same
# check, and the drill's measured restore throughput and estimate.
# Usage: sudo [GIB=N] scripts/bench-audit.sh
set -euo pipefail
gib=${GIB:-10}
source "$(dirname "$0")/common.sh" audit
command -v restic >/dev/null || { echo "bench-audit: needs restic (apt-get install restic)" >&2; exit 1; }
mkdir "$work/data"
files=$((gib * 128))
echo "making $gib GiB of incompressible files ($files of 8 MiB)"
for i in $(seq 1 "$files"); do
  head -c 8M /dev/urandom > "$work/data/f$i.bin"
done
printf 'bench-audit-password\n' > "$work/password"
chmod 600 "$work/password"
export RESTIC_PASSWORD_FILE=$work/password
restic -q init -r "$work/repo"
start=$(date +%s.%N)
restic -q -r "$work/repo" backup "$work/data" >/dev/null
echo "backup: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s"
cat > "$work/mamori.toml" <<TOML
[agent]
protect = ["$work/data"]
[[audit.restic]]
repository = "$work/repo"
password_file = "$work/password"
rpo_hours = 24
TOML
sync
echo 3 > /proc/sys/vm/drop_caches
start=$(date +%s.%N)
rc=0
"$bin" audit --only backups --json --config "$work/mamori.toml" --state "$work/state" > "$work/audit.json" || rc=$?
audit_s=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
echo 3 > /proc/sys/vm/drop_caches
start=$(date +%s.%N)
restic -q -r "$work/repo" check --read-data-subset=1/20 >/dev/null 2>&1 || true
check_s=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
echo "audit of a $gib GiB repository: $audit_s s (exit $rc); restic check --read-data-subset=1/20 alone: $check_s s"
python3 - "$work/audit.json" <<'PY'
import json, sys
for f in json.load(open(sys.argv[1]))["findings"]:
    print(f"  {f['severity']:<6} {f['check']:<22} {f['detail']}")
PY
