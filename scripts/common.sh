# Shared set-up of the benchmark scripts: a release build and a scratch
# folder under /var/tmp that is removed (with any agent left running) on exit.
# Usage: source scripts/common.sh NAME   → sets $bin and $work
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q
bin=$PWD/target/release/mamori
work=$(mktemp -d "/var/tmp/mamori-$1-XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
