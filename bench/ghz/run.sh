#!/usr/bin/env bash
# Load test of the gRPC sidecar with ghz (README: "Load tests"). Installs ghz at a pinned version
# with `go install`, builds, writes request data made by a real Erlang VM (batches of 1, 100 and
# 1,000 compressed eterm payloads, base64 in ghz's JSON), starts `mim-sender-jid serve` on
# loopback, runs the scenarios, keeps ghz's JSON and HTML reports under bench/results/ghz/ and
# prints calls/s, items/s and p50/p99 latency.
#
#   bash bench/ghz/run.sh                 # every scenario, 10 s each
#   BENCH_SECONDS=3 bash bench/ghz/run.sh # shorter
#
# Targets (2-core machine, ghz beside the server): >= 200,000 items/s with batches of 1,000;
# p99 < 50 ms for batches of 100 at half that rate (1,000 calls/s).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

GHZ_VERSION=v0.120.0
SECONDS_PER_SCENARIO=${BENCH_SECONDS:-10}
PORT=${BENCH_PORT:-50561}
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

npm run build --silent >/dev/null || true # other modules' type errors must not stop a load test; tsc still emits
node dist/bench/ghz/make-data.js "$data"

server_log=$results/server.log
node bin/mim-sender-jid.js serve --listen "127.0.0.1:$PORT" --metrics-listen off --log-level warn >"$server_log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT

# Ready when health answers (through reflection-free health: ghz itself, one call).
for _ in $(seq 1 100); do
  if "$ghz" --insecure --call grpc.health.v1.Health.Check -d '{"service":""}' -n 1 -c 1 "127.0.0.1:$PORT" >/dev/null 2>&1; then
    break
  fi
  sleep 0.1
done

unary=mongooseim.mam.v1.SenderJidService.ExtractSenderJid
stream=mongooseim.mam.v1.SenderJidService.ExtractSenderJidStream
summary_args=()

# scenario NAME ITEMS_PER_CALL GHZ_ARGS...: one run for the JSON report (the figures), one for the HTML.
scenario() {
  local name=$1 items=$2
  shift 2
  echo "bench/ghz: $name (${SECONDS_PER_SCENARIO}s)"
  for format in json html; do
    "$ghz" --insecure --name "$name" -z "${SECONDS_PER_SCENARIO}s" --duration-stop=wait \
      -O "$format" -o "$results/$name.$format" "$@" "127.0.0.1:$PORT"
  done
  summary_args+=("$results/$name.json:$items")
}

scenario unary-batch-1     1    --call "$unary"  -D "$data/batch-1.json"    -c 16
scenario unary-batch-100   100  --call "$unary"  -D "$data/batch-100.json"  -c 8
scenario unary-batch-1000  1000 --call "$unary"  -D "$data/batch-1000.json" -c 4
scenario stream-10x1000    10000 --call "$stream" -D "$data/stream-10x1000.json" -c 2
# Half the target rate: 100,000 items/s = 1,000 calls/s of 100 items; the latency target is p99 < 50 ms.
scenario unary-batch-100-at-1000rps 100 --call "$unary" -D "$data/batch-100.json" -c 16 --rps 1000

{
  echo
  echo "bench/ghz: $(date -u '+%Y-%m-%d %H:%M UTC'), ghz $GHZ_VERSION, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); reports in bench/results/ghz/"
  node dist/bench/ghz/summarize.js "${summary_args[@]}"
} | tee "$results/summary.txt"
