#!/usr/bin/env bash
# Installs grpcurl, pinned, from the Go module proxy into .tmp/go-bin/grpcurl (for
# test/polyglot/grpcurl.test.ts). Idempotent: nothing to do when that version is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
GRPCURL_VERSION=v1.9.3
bin=$root/.tmp/go-bin
# `go install` leaves grpcurl's own -version at "dev build", so the version installed is noted beside it.
if [[ -x $bin/grpcurl && $(cat "$bin/grpcurl.version" 2>/dev/null) == "$GRPCURL_VERSION" ]]; then
  echo "grpcurl $GRPCURL_VERSION: $bin/grpcurl"
  exit 0
fi
command -v go >/dev/null || { echo "install-grpcurl.sh: no 'go' on PATH" >&2; exit 1; }
mkdir -p "$bin"
GOBIN=$bin GOFLAGS=${GOFLAGS:--buildvcs=false} go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
echo "$GRPCURL_VERSION" >"$bin/grpcurl.version"
echo "grpcurl $GRPCURL_VERSION: $bin/grpcurl"
