#!/usr/bin/env bash
# Three co-located replicas, both sides: TigerBeetle 0.17.8's 3-replica cluster against the
# README's 3-node Tally cluster, on this machine, back to back, each loaded by its own
# benchmark (TigerBeetle's `benchmark --addresses`, `tally bench --address`) with the same
# shape. `../shared/tools/vs-tigerbeetle.sh` covers the one-replica shapes; this is the row it
# lacks.
#
#   bash scripts/vs-tigerbeetle-cluster.sh [TRANSFERS] [BATCH]   # default 2000000 8189
#   PARTITIONS=1 bash scripts/vs-tigerbeetle-cluster.sh          # the README's cluster has 2
#
# Run from the project root after `cargo build --release -p tally-server`. Replicas listen on
# 127.0.0.2-4 (TigerBeetle on ports 3001-3003, Tally on 7000 and 7100); everything started
# is stopped by pid at the end, and the data lives in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
transfers=${1:-2000000}
batch=${2:-8189}
partitions=${PARTITIONS:-2}
tb=${TIGERBEETLE:-../shared/tools/tigerbeetle/tigerbeetle-0.17.8}
tally=target/release/tally
[ -x "$tally" ] || { echo "no $tally: cargo build --release -p tally-server first"; exit 2; }
[ -x "$tb" ] || { echo "no TigerBeetle at $tb (set TIGERBEETLE)"; exit 2; }
scratch=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT

# Waits until a TCP port accepts, for at most 60 s.
wait_port() {
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1:$2" >&2
    return 1
}

# Each side starts on a quiet disk: the other's dirty pages written back first.
sync
echo "== TigerBeetle: 3 replicas, $transfers transfers, batch $batch"
tb_addresses=127.0.0.2:3001,127.0.0.3:3002,127.0.0.4:3003
for r in 0 1 2; do
    "$tb" format --cluster=0 --replica="$r" --replica-count=3 "$scratch/tb_$r.tigerbeetle" \
        >"$scratch/tb_format_$r.log" 2>&1
done
for r in 0 1 2; do
    "$tb" start --addresses="$tb_addresses" "$scratch/tb_$r.tigerbeetle" >"$scratch/tb_$r.log" 2>&1 &
    pids+=($!)
done
for a in 127.0.0.2:3001 127.0.0.3:3002 127.0.0.4:3003; do wait_port "${a%:*}" "${a#*:}"; done
tb_out=$("$tb" benchmark --addresses="$tb_addresses" --transfer-count="$transfers" \
    --transfer-batch-count="$batch" 2>&1)
tb_tps=$(grep -o 'load accepted = [0-9]*' <<<"$tb_out" | grep -o '[0-9]*$')
tb_p99=$(grep -o 'batch latency p99 *= *[0-9]*' <<<"$tb_out" | grep -o '[0-9]*$' | head -1)
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
pids=()
rm -f "$scratch"/tb_*.tigerbeetle
sync
echo "TigerBeetle: ${tb_tps:-?} transfers/s, batch p99 ${tb_p99:-?} ms"

echo "== Tally: 3 nodes, $partitions partition(s), $transfers transfers, batch $batch"
head -c 32 /dev/urandom | base64 >"$scratch/secret"
peers=1=127.0.0.2:7100,2=127.0.0.3:7100,3=127.0.0.4:7100
for n in 1 2 3; do
    "$tally" start --node-id "$n" --address "127.0.0.$((n + 1)):7000" --peers "$peers" \
        --cluster-secret-file "$scratch/secret" --data "$scratch/n$n" --partitions "$partitions" \
        >"$scratch/tally_$n.out" 2>"$scratch/tally_$n.log" &
    pids+=($!)
done
for n in 2 3 4; do wait_port "127.0.0.$n" 7000; done
tally_out=$("$tally" bench --address 127.0.0.2:7000,127.0.0.3:7000,127.0.0.4:7000 \
    --accounts 10000 --transfers "$transfers" --batch-size "$batch" --json | tail -1)
read -r tally_tps tally_p99 < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(int(d["transfers_per_second"]), round(d["p99_ms"],1))' "$tally_out")
echo "Tally: $tally_tps transfers/s, batch p99 $tally_p99 ms"

printf '%-11s %12s %12s %7s %14s %14s\n' shape tigerbeetle tally ratio "tb p99 ms" "tally p99 ms"
printf '%-11s %12s %12s %7s %14s %14s\n' replicas3 "${tb_tps:-0}" "$tally_tps" \
    "$(python3 -c "print(round($tally_tps/${tb_tps:-1},2))")" "${tb_p99:-?}" "$tally_p99"
