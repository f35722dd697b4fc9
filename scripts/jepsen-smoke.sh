#!/usr/bin/env bash
# The chaos smoke of CI: one short tally-jepsen run on 3 real nodes with every fault kind
# injected at least once (about two minutes), then the checkers' self-test. Needs root and
# the packages iptables, faketime and strace (`.ci/run` installs them). See jepsen/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p tally-server -p tally-jepsen --quiet
./target/debug/tally-jepsen check --self-test --seeds 20
out=$(mktemp -d /tmp/tally-jepsen-smoke.XXXXXX)
# 110 s is enough for the nemesis to go through all eleven kinds once (each takes at most
# 3 s of quiet and 6.5 s of fault).
./target/debug/tally-jepsen test --nodes 3 --workload bank --nemesis all --time-limit 110 \
    --seed "${SMOKE_SEED:-20261201}" --out "$out/run"
missing=()
for kind in partition loss kill pause clock wipe corrupt truncate disk-full eio power; do
    grep -q "\"$kind\": [1-9]" "$out/run/results.json" || missing+=("$kind")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "jepsen smoke: these faults were never injected: ${missing[*]} (see $out/run)" >&2
    exit 1
fi
echo "jepsen smoke: every fault kind injected, every check passed"
rm -rf "$out"
