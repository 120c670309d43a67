#!/usr/bin/env bash
# `npm run bench:native-inflate`: what inflating the sidecar's payloads costs with the fastest
# native inflaters Debian packages (libdeflate, ISA-L's igzip) against zlib, beside what the
# decoder pays in Node for the same payloads. It bounds what any sidecar can reach against the
# ghz floor (README, "Performance"): inflating is paid per item whatever surrounds it.
#
# Needs gcc, the headers of zlib, libdeflate and ISA-L, and Erlang (which makes the payloads):
# the test suites' installer adds the Debian packages that are missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash test/support/install-system-deps.sh gcc zlib1g-dev libdeflate-dev libisal-dev

mkdir -p .tmp/native-inflate
gcc -O2 -Wall -Wextra -o .tmp/native-inflate/inflate bench/native-inflate/inflate.c -lz -ldeflate -lisal
npm run build --silent
node dist/bench/native-inflate/payloads.js .tmp/native-inflate/payloads.bin
.tmp/native-inflate/inflate .tmp/native-inflate/payloads.bin
