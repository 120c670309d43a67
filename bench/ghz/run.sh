#!/usr/bin/env bash
# Load test of the gRPC sidecar with ghz (README: "Performance", the "gRPC sidecar under ghz"
# paragraph). Installs ghz at a pinned version with `go install` (from the Go module proxy), builds,
# writes request data made by a real Erlang VM (batches of 1, 100 and 1,000 compressed eterm
# payloads, base64 in ghz's JSON), starts `mim-sender-jid serve` on loopback and, beside it, the
# floor (bench/ghz/floor-server.ts: a bare grpc-js server of the same contract that answers each
# item without decoding, with the sidecar's response bytes), runs each scenario once, keeps ghz's
# JSON reports and one HTML report under bench/results/ghz/ and prints calls/s, items/s, p50/p99
# latency, and sidecar items/s divided by floor items/s for batches of 100 and 1,000.
#
#   bash bench/ghz/run.sh                 # every scenario, 10 s each
#   BENCH_SECONDS=3 bash bench/ghz/run.sh # shorter
#   BENCH_CONNECTIONS=1 bash ...          # ghz --connections (default 2)
#
# Targets (2-core machine, ghz beside the server): sidecar / floor >= 0.7 for batches of 1,000;
# p99 < 50 ms for batches of 100 at 1,000 calls/s. Beside each ratio: the same ratio by
# CPU per item, and its ceiling (decode-cost.js: the decoder's one-thread cost on the same data,
# added to the floor's CPU per item): the ratio cannot be above it however little the sidecar adds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

GHZ_VERSION=v0.120.0
SECONDS_PER_SCENARIO=${BENCH_SECONDS:-10}
PORT=${BENCH_PORT:-50561}
FLOOR_PORT=${BENCH_FLOOR_PORT:-50562}
CONNECTIONS=${BENCH_CONNECTIONS:-2}
results=$root/bench/results/ghz
data=$results/data
ghz=$root/.tmp/go-bin/ghz
mkdir -p "$results" "$root/.tmp/go-bin"

# `go install` builds report their version as "dev": a marker file says which one is there.
if [[ ! -x $ghz ]] || [[ $(cat "$ghz.version" 2>/dev/null) != "$GHZ_VERSION" ]]; then
  echo "bench/ghz: installing ghz $GHZ_VERSION with go install"
  GOBIN=$root/.tmp/go-bin go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
  echo "$GHZ_VERSION" >"$ghz.version"
fi

# A build error stops the load test, with tsc's messages.
npm run build --silent
node dist/bench/ghz/make-data.js "$data"

server_log=$results/server.log
node bin/mim-sender-jid.js serve --listen "127.0.0.1:$PORT" --metrics-listen off --log-level warn >"$server_log" 2>&1 &
server_pid=$!
node dist/bench/ghz/floor-server.js serve "$FLOOR_PORT" "$data" >"$results/floor.log" 2>&1 &
floor_pid=$!
trap 'kill "$server_pid" "$floor_pid" 2>/dev/null || true; wait "$server_pid" "$floor_pid" 2>/dev/null || true' EXIT

# Ready when health answers (through reflection-free health: ghz itself, one call).
wait_ready() {
  local port=$1 name=$2
  for _ in $(seq 1 300); do
    if "$ghz" --insecure --call grpc.health.v1.Health.Check -d '{"service":""}' -n 1 -c 1 "127.0.0.1:$port" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "bench/ghz: the $name on port $port did not answer health checks; its log:" >&2
  cat "$results/$name.log" >&2 || true
  exit 1
}
wait_ready "$PORT" server
wait_ready "$FLOOR_PORT" floor
# The floor must answer what the sidecar answers, byte for byte, or the ratio means nothing.
node dist/bench/ghz/floor-server.js check "127.0.0.1:$PORT" "127.0.0.1:$FLOOR_PORT" "$data/batch-100.json"

unary=mongooseim.mam.v1.SenderJidService.ExtractSenderJid
stream=mongooseim.mam.v1.SenderJidService.ExtractSenderJidStream
summary_args=()

# CPU seconds (user + system) used so far by a process's main thread, or by all its other threads.
ticks=$(getconf CLK_TCK)
cpu_main() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$1/task/$1/stat"; }
cpu_others() {
  local total=0 task
  for task in /proc/"$1"/task/*; do
    [[ $task == "/proc/$1/task/$1" ]] && continue
    total=$(awk -v t="$ticks" -v sum="$total" '{ print sum + ($14 + $15) / t }' "$task/stat" 2>/dev/null || echo "$total")
  done
  echo "$total"
}

# scenario NAME ITEMS_PER_CALL PORT GHZ_ARGS...: one ghz run, its JSON report (the HTML report is
# made from the JSON reports by summarize.js), and where the CPU went: the target server's main
# thread and its other threads (the sidecar's decoding workers, libuv, GC), and ghz itself.
cpu_rows=$results/cpu.tsv
: >"$cpu_rows"
scenario() {
  local name=$1 items=$2 port=$3 pid
  shift 3
  if [[ $port == "$PORT" ]]; then pid=$server_pid; else pid=$floor_pid; fi
  echo "bench/ghz: $name (${SECONDS_PER_SCENARIO}s)"
  local main0 others0
  main0=$(cpu_main "$pid")
  others0=$(cpu_others "$pid")
  /usr/bin/time -f '%U %S' -o "$results/$name.ghz-cpu" \
    "$ghz" --insecure --name "$name" -z "${SECONDS_PER_SCENARIO}s" --duration-stop=wait --connections "$CONNECTIONS" \
    -O json -o "$results/$name.json" "$@" "127.0.0.1:$port"
  printf '%s\t%s\t%s\t%s\n' "$results/$name.json" "$(awk -v a="$(cpu_main "$pid")" -v b="$main0" 'BEGIN { print a - b }')" \
    "$(awk -v a="$(cpu_others "$pid")" -v b="$others0" 'BEGIN { print a - b }')" "$(awk '{ print $1 + $2 }' "$results/$name.ghz-cpu")" >>"$cpu_rows"
  summary_args+=("$results/$name.json:$items")
}

scenario unary-batch-1     1    "$PORT" --call "$unary"  -D "$data/batch-1.json"    -c 16
# Each sidecar scenario of 100 and 1,000 next to its floor, so that both see the same machine.
scenario unary-batch-100   100  "$PORT"       --call "$unary" -D "$data/batch-100.json"  -c 8
scenario floor-batch-100   100  "$FLOOR_PORT" --call "$unary" -D "$data/batch-100.json"  -c 8
scenario unary-batch-1000  1000 "$PORT"       --call "$unary" -D "$data/batch-1000.json" -c 4
scenario floor-batch-1000  1000 "$FLOOR_PORT" --call "$unary" -D "$data/batch-1000.json" -c 4
scenario stream-10x1000    10000 "$PORT" --call "$stream" -D "$data/stream-10x1000.json" -c 2
# Half the target rate: 100,000 items/s = 1,000 calls/s of 100 items; the latency target is p99 < 50 ms.
scenario unary-batch-100-at-1000rps 100 "$PORT" --call "$unary" -D "$data/batch-100.json" -c 16 --rps 1000

# Decoding's own price on this data, on one thread, measured after the scenarios (nothing else of ours running).
decode_cost=$(node dist/bench/ghz/decode-cost.js "$data")

{
  echo
  echo "bench/ghz: $(date -u '+%Y-%m-%d %H:%M UTC'), ghz $GHZ_VERSION, --connections $CONNECTIONS, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); reports in bench/results/ghz/"
  node dist/bench/ghz/summarize.js --html "$results/report.html" --cpu "$cpu_rows" --decode-cost "$decode_cost" \
    --ratio "$results/unary-batch-100.json:$results/floor-batch-100.json:sidecar / floor, batches of 100" \
    --ratio "$results/unary-batch-1000.json:$results/floor-batch-1000.json:sidecar / floor, batches of 1,000 (target >= 0.7)" \
    "${summary_args[@]}"
} | tee "$results/summary.txt"
