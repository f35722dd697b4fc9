#!/usr/bin/env bash
# The rewards flow through one `tally gateway` on one node, under wrk (Debian's `wrk`):
# every thread has one connection and runs earn -> reserve -> complete for its own player,
# with fresh Idempotency-Keys. Prints wrk's summary (requests/s, latency percentiles) and the
# errors. Run from the project root after `cargo build --release -p tally-server`:
#   bash scripts/gateway-load.sh [SECONDS] [CONNECTIONS]
set -u
seconds=${1:-10}
connections=${2:-64}
tally=${TALLY_BIN:-$PWD/target/release/tally}
[ -x "$tally" ] || { echo "no $tally: build it first (cargo build --release -p tally-server)"; exit 2; }
command -v wrk >/dev/null || { echo "no wrk: apt-get install wrk"; exit 2; }
scratch=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$scratch"' EXIT
first_line() {
  for _ in $(seq 100); do
    line=$(head -1 "$1" 2>/dev/null)
    [ -n "$line" ] && { echo "$line"; return; }
    sleep 0.1
  done
}
"$tally" start --address 127.0.0.1:0 --data "$scratch/data" > "$scratch/node.out" 2>/dev/null &
pids+=($!)
node=$(first_line "$scratch/node.out"); node=${node#tally listening on }
cat > "$scratch/gateway.toml" <<TOML
[[services]]
name = "load"
token = "a-token-for-the-load-test"
games = [1]
[[games]]
id = 1
credits_ledger = 10
points_ledger = 11
items_ledger = 12
[rate_limits]
player_per_s = 1000000
global_per_s = 1000000
TOML
"$tally" gateway --tally "$node" --listen 127.0.0.1:0 --config "$scratch/gateway.toml" > "$scratch/gw.out" 2>/dev/null &
pids+=($!)
gw=$(first_line "$scratch/gw.out"); gw=${gw#tally gateway listening on }
cat > "$scratch/flow.lua" <<'LUA'
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  n = 0
  errors = 0
  answered = 0
  headers = { ["Authorization"] = "Bearer a-token-for-the-load-test",
              ["Content-Type"] = "application/json" }
end
-- The step follows the answers, not the calls: wrk calls request() once more than it sends
-- (to prime the first connection), and with one connection per thread the next request is
-- generated only after the previous one was answered.
request = function()
  n = n + 1
  local flow = math.floor(answered / 3)
  local step = answered % 3
  local player = "/v1/games/1/players/p" .. id
  local key = id .. "-" .. flow
  if step == 0 then
    headers["Idempotency-Key"] = "earn-" .. key
    return wrk.format("POST", player .. "/rewards/earn", headers, '{"points":"1"}')
  elseif step == 1 then
    headers["Idempotency-Key"] = "reserve-" .. key
    return wrk.format("POST", player .. "/rewards/reserve", headers, '{"points":"1"}')
  else
    headers["Idempotency-Key"] = nil
    return wrk.format("POST", player .. "/rewards/reservations/reserve-" .. key .. "/complete", headers, "{}")
  end
end
response = function(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    errors = errors + 1
    if errors <= 3 then
      io.write(string.format("thread %d answer %d: %d %s\n", id, answered, status, body))
    end
  end
end
done = function(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do failed = failed + t:get("errors") end
  io.write(string.format("non-200 answers: %d\n", failed))
end
LUA
wrk -t "$connections" -c "$connections" -d "${seconds}s" --latency -s "$scratch/flow.lua" "$gw"
