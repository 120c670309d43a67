#!/usr/bin/env bash
# Sets up the Go example: installs the pinned protoc-gen-go and protoc-gen-go-grpc (from the Go
# module proxy) into .tmp/go-bin, generates the stubs from proto/ into clients/go/gen/ (not
# committed) with buf and clients/go/buf.gen.yaml, and builds .tmp/go-bin/extract-sender-jid.
# Idempotent: plugins already at the pinned version are not reinstalled; one line when done.
#
#   bash clients/go/setup.sh
#   .tmp/go-bin/extract-sender-jid -address 127.0.0.1:50051 msg1.bin msg2.xml
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

# Pinned: the plugins' versions, and in clients/go/go.mod (with go.sum) grpc and protobuf.
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.1

export GOBIN=$root/.tmp/go-bin
export GOFLAGS=${GOFLAGS:--buildvcs=false}
export PATH=$GOBIN:$PATH
mkdir -p "$GOBIN"

command -v go >/dev/null || { echo "clients/go/setup.sh: no 'go' on PATH (Go 1.26 or later)" >&2; exit 1; }

installed_version() { # $1: plugin; prints its --version's last word, or nothing
  [[ -x $GOBIN/$1 ]] && "$GOBIN/$1" --version 2>/dev/null | awk '{print $NF}' || true
}
if [[ $(installed_version protoc-gen-go) != "$PROTOC_GEN_GO_VERSION" ]]; then
  go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi
if [[ $(installed_version protoc-gen-go-grpc) != "${PROTOC_GEN_GO_GRPC_VERSION#v}" ]]; then
  go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi

rm -rf clients/go/gen
node_modules/.bin/buf generate proto --template clients/go/buf.gen.yaml

(cd clients/go && go build -o "$GOBIN/extract-sender-jid" .)
echo "clients/go: stubs in clients/go/gen, binary $GOBIN/extract-sender-jid"
