#!/usr/bin/env bash
# The test command of the README: formatting, lints, docs, every test of the workspace, then
# the chaos smoke (scripts/jepsen-smoke.sh: real nodes, every fault once, about two minutes),
# which needs root and the packages iptables, faketime and strace. Without them the smoke is
# skipped, loudly; TALLY_JEPSEN_SMOKE=1 (set by .ci/run) makes it mandatory. Slow soak runs
# are opt-in (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
# cargo prints one summary per test binary, the last often an empty doc-test run: add them
# up so the closing line tells how many tests ran in all.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"

smoke_missing=""
[ "$(id -u)" = 0 ] || smoke_missing="root"
for tool in iptables strace unshare ip; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || smoke_missing="$smoke_missing $tool"
done
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || smoke_missing="$smoke_missing faketime"
if [ -z "$smoke_missing" ] || [ "${TALLY_JEPSEN_SMOKE:-0}" = 1 ]; then
    bash scripts/jepsen-smoke.sh
else
    echo "SKIPPED: the jepsen smoke needs$smoke_missing (run as root with iptables, faketime" \
        "and strace installed, or bash .ci/run, which installs them)"
fi
