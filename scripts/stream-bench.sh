#!/usr/bin/env bash
# Change streams under load on one node (issue 14). Three runs of `tally bench` (N transfers,
# default 1M, 10k accounts, batch 8189), each against a fresh `tally start`:
#   alone    - no subscriber;
#   follow   - `tally subscribe --follow --json` writing every change to a file;
#   text     - the same in text lines;
#   stalled  - a connection that subscribes from the start and never reads.
# Prints each run's transfers/s, the node's peak RSS, and for `follow` and `text` how long after the
# bench ended the subscriber had printed its last change. Run from the project root after
# `cargo build --release -p tally-server`:
#   bash scripts/stream-bench.sh [TRANSFERS]
set -u
n=${1:-1000000}
tally=${TALLY_BIN:-$PWD/target/release/tally}
[ -x "$tally" ] || { echo "no $tally: build it first (cargo build --release -p tally-server)"; exit 2; }
scratch=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$scratch"' EXIT

# peak PID: the largest VmRSS (kB) of process PID until the file "$scratch/stop" exists.
peak() {
  local pid=$1 rss=0 r
  while [ ! -e "$scratch/stop" ] && kill -0 "$pid" 2>/dev/null; do
    r=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r
    sleep 0.2
  done
  echo "$rss"
}

# A consumer that subscribes from the start and reads nothing (a raw Subscribe frame).
stalled() {
  python3 - "$1" <<'PY' &
import socket, struct, sys, time, zlib
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, int(port)))
head = b"TLY\x01" + struct.pack("<HHQII", 1, 11, 7, 0, zlib.crc32(b"")) + struct.pack("<I", 0)
s.sendall(head + struct.pack("<I", zlib.crc32(head)))
time.sleep(3600)
PY
  pids+=($!)
}

run() {
  local mode=$1 dir=$scratch/$1 address line
  mkdir -p "$dir"
  rm -f "$scratch/stop"
  "$tally" start --address 127.0.0.1:0 --data "$dir/data" > "$dir/node.out" 2> "$dir/node.err" &
  local node=$!
  pids+=($node)
  for _ in $(seq 100); do
    line=$(head -1 "$dir/node.out" 2>/dev/null)
    [ -n "$line" ] && break
    sleep 0.1
  done
  address=${line#tally listening on }
  peak "$node" > "$dir/peak" &
  local sampler=$!
  case $mode in
    follow) "$tally" subscribe --follow --json --address "$address" > "$dir/changes" 2>/dev/null &
            pids+=($!) ;;
    text) "$tally" subscribe --follow --address "$address" > "$dir/changes" 2>/dev/null &
          pids+=($!) ;;
    stalled) stalled "$address" ;;
  esac
  local start end
  start=$(date +%s.%N)
  "$tally" bench --address "$address" --accounts 10000 --transfers "$n" --batch-size 8189 \
    --json > "$dir/bench.out" 2> "$dir/bench.err"
  end=$(date +%s.%N)
  local lag=""
  if [ "$mode" = follow ] || [ "$mode" = text ]; then
    # The subscriber is done when its file stops growing for a second.
    local last=-1 size stable=0
    while [ $stable -lt 5 ]; do
      size=$(stat -c %s "$dir/changes")
      if [ "$size" = "$last" ]; then stable=$((stable + 1)); else stable=0; last=$size; fi
      sleep 0.2
    done
    local done_at
    done_at=$(date -r "$dir/changes" +%s.%N)
    lag=$(python3 -c "print(f'{max(0.0, $done_at - $end):.2f} s after the bench; {sum(1 for _ in open(\"$dir/changes\"))} changes')")
  fi
  touch "$scratch/stop"
  wait "$sampler"
  local tps
  tps=$(tail -1 "$dir/bench.out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(int(j["transfers_per_second"]), "transfers/s, p99", j.get("p99_ms", "?"), "ms")' 2>/dev/null)
  printf '%-8s %-40s node peak RSS %5d MB  %s\n' "$mode" "${tps:-bench failed: $(tail -1 "$dir/bench.err")}" $(( $(cat "$dir/peak") / 1024 )) "$lag"
  kill "$node" 2>/dev/null; wait "$node" 2>/dev/null
}

for mode in alone follow text stalled; do run "$mode"; done
