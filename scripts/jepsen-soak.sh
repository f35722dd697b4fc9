#!/usr/bin/env bash
# Many seeded tally-jepsen runs in a row, and a table of their verdicts.
#
#   sudo bash scripts/jepsen-soak.sh [RUNS] [SECONDS] [NEMESIS] [WORKLOADS]
#
# Defaults: 20 runs of 120 s on 3 nodes, every fault kind, the workloads in turn. Seeds are
# FIRST_SEED (default 1) onwards; run directories go to runs/soak-<date>/. Exit status 1 if
# any run was invalid, 2 if any could not be made. Binaries are built in CARGO_TARGET_DIR
# (default target/): point it elsewhere to keep building in target/ during a long soak. See
# jepsen/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
seconds=${2:-120}
nemesis=${3:-all}
workloads=${4:-bank,exactly-once,holds,refunds,queries}
first=${FIRST_SEED:-1}
nodes=${NODES:-3}
partitions=${PARTITIONS:-1}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p tally-server -p tally-jepsen --quiet || exit 2
dir=runs/soak-$(date -u +%Y%m%dT%H%M%S)
mkdir -p "$dir"
IFS=, read -r -a kinds <<<"$workloads"
status=0
table="$dir/table.md"
printf '| seed | workload | verdict | ok | fail | info | faults | seconds |\n|---:|---|---|---:|---:|---:|---|---:|\n' >"$table"
for ((n = 0; n < runs; n++)); do
    seed=$((first + n))
    workload=${kinds[$((n % ${#kinds[@]}))]}
    out="$dir/$seed-$workload"
    started=$(date +%s)
    "$target/release/tally-jepsen" test --nodes "$nodes" --partitions "$partitions" \
        --workload "$workload" --nemesis "$nemesis" --time-limit "$seconds" --seed "$seed" \
        --out "$out" >"$out.log" 2>&1
    code=$?
    took=$(($(date +%s) - started))
    case $code in
        0) verdict=valid ;;
        1) verdict=INVALID; status=1 ;;
        *) verdict="not made ($code)"; [ $status -eq 0 ] && status=2 ;;
    esac
    counts=$(python3 - "$out/results.json" <<'EOF' 2>/dev/null || echo "- | - | - | -"
import json, sys
r = json.load(open(sys.argv[1]))
o = r["operations"]
faults = ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items()))
print(f'{o.get("ok", 0)} | {o.get("fail", 0)} | {o.get("info", 0)} | {faults}')
EOF
)
    printf '| %s | %s | %s | %s | %s |\n' "$seed" "$workload" "$verdict" "$counts" "$took" | tee -a "$table"
done
echo "table: $table"
exit $status
