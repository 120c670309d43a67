#!/usr/bin/env bash
# `npm run bench:native-inflate`: what inflating the sidecar's payloads costs with the fastest
# native inflaters Debian packages (libdeflate, ISA-L's igzip) against zlib, beside what the
# decoder pays in Node for the same payloads. It bounds what any sidecar can reach against the
# ghz floor (README, "Performance"): inflating is paid per item whatever surrounds it.
#
# Needs gcc and the headers of zlib, libdeflate and ISA-L; installs the Debian packages when they
# are missing (as root, or through sudo).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

packages=()
[[ -f /usr/include/zlib.h ]] || packages+=(zlib1g-dev)
[[ -f /usr/include/libdeflate.h ]] || packages+=(libdeflate-dev)
[[ -f /usr/include/isa-l/igzip_lib.h ]] || packages+=(libisal-dev)
if ((${#packages[@]} > 0)); then
  echo "bench/native-inflate: installing ${packages[*]}"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y "${packages[@]}" >/dev/null
fi

mkdir -p .tmp/native-inflate
gcc -O2 -Wall -Wextra -o .tmp/native-inflate/inflate bench/native-inflate/inflate.c -lz -ldeflate -lisal
npm run build --silent
node dist/bench/native-inflate/payloads.js .tmp/native-inflate/payloads.bin
.tmp/native-inflate/inflate .tmp/native-inflate/payloads.bin
