#!/usr/bin/env bash
# Peak memory of TigerBeetle 0.17.8's benchmark and of the node `tally bench` starts, at N
# transfers (default 10M, 10k accounts, batch 8189), back to back. Run from the project root
# after `cargo build --release -p tally-server`:
#   bash scripts/peak-rss.sh [TRANSFERS]
# Samples VmRSS and RssAnon (heap, not mapped files) of the processes every 0.5 s and prints
# the peaks. Scratch data goes to a temporary directory, removed at the end.
set -u
n=${1:-10000000}
tb=$PWD/../shared/tools/tigerbeetle/tigerbeetle-0.17.8
tally=${TALLY_BIN:-$PWD/target/release/tally}
[ -x "$tally" ] || { echo "no $tally: build it first (cargo build --release -p tally-server)"; exit 2; }
[ -x "$tb" ] || { echo "no $tb"; exit 2; }
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
cd "$scratch"

# peak PID PATTERN: the largest VmRSS and RssAnon (kB) of processes matching PATTERN while PID runs.
peak() {
  local pid=$1 pattern=$2 rss=0 anon=0 r a p
  while kill -0 "$pid" 2>/dev/null; do
    for p in $(pgrep -f "$pattern"); do
      r=$(awk '/^VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null)
      a=$(awk '/^RssAnon/{print $2}' "/proc/$p/status" 2>/dev/null)
      [ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r
      [ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
    done
    sleep 0.5
  done
  echo "$rss $anon"
}

"$tb" benchmark --transfer-count="$n" > tb.out 2>&1 &
read -r rss anon < <(peak $! "tigerbeetle-0.17.8")
echo "tigerbeetle: peak RSS $((rss / 1024)) MB (heap $((anon / 1024)) MB); $(grep -o 'load accepted = [0-9]*' tb.out)"

TMPDIR=$scratch "$tally" bench --accounts 10000 --transfers "$n" --batch-size 8189 --json > tally.out 2> tally.err &
read -r rss anon < <(peak $! "tally start --address 127.0.0.1:0")
echo "tally node:  peak RSS $((rss / 1024)) MB (heap $((anon / 1024)) MB); $(tail -1 tally.out | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["transfers_per_second"]), "transfers/s")')"
