#!/usr/bin/env bash
# The test command (README: "npm test"): installs everything the suites need on a fresh machine
# of our kind, then runs every suite. Nothing is skipped: a server that cannot start fails its suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/support/install-system-deps.sh
npm ci --no-audit --no-fund
npm run build

# Written code: ESLint (typescript-eslint) clean and Prettier-formatted (npm run format fixes both).
npm run lint

# The gRPC contract: buf lint clean, no change an existing caller would notice (against the
# released copy in test/contract-baseline/), and the committed generated code is what proto/ gives.
npm run lint:proto
npm run breaking:proto
npm run gen:check

# The polyglot examples and tools, so that downloads happen (and fail loudly) before the suites:
# the Python example's virtual environment (pinned grpcio) and stubs, the Go example (pinned
# plugins from the Go module proxy), the Java example (pinned grpc-java from Maven Central), grpcurl.
bash clients/python/setup.sh
bash clients/go/setup.sh
bash clients/java/setup.sh
bash test/support/install-grpcurl.sh

# Every compiled test file, one process each (node:test), one file at a time: suites start real
# servers and the machine has two cores.
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
if ((${#files[@]} == 0)); then
  echo "test/run.sh: no test files found under dist/test" >&2
  exit 1
fi
node --test --test-concurrency=1 "${files[@]}"
