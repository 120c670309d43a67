#!/usr/bin/env bash
# Builds the Java example with Maven: the pom pins grpc-java, protobuf-java, the protobuf-maven-plugin
# and the protoc and protoc-gen-grpc-java executables (Maven Central artifacts), which generate the
# stubs from proto/ into target/generated-sources/ at build time (nothing generated is committed).
# Gives clients/java/target/extract-sender-jid.jar, its dependencies in target/lib/.
# Idempotent (nothing to do when the jar is newer than its sources); the first run downloads
# from Maven Central into ~/.m2. One line when done.
#
#   bash clients/java/setup.sh
#   java -jar clients/java/target/extract-sender-jid.jar --address 127.0.0.1:50051 msg1.bin msg2.xml
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

jar=$here/target/extract-sender-jid.jar
# Up to date: the jar is newer than the pom, the sources and the contract (Maven would rebuild anyway).
if [[ -f $jar && -d $here/target/lib && -z $(find "$here/pom.xml" "$here/src" "$here/../../proto" -newer "$jar" -print -quit) ]]; then
  echo "clients/java: java -jar $jar (up to date)"
  exit 0
fi

command -v mvn >/dev/null || { echo "clients/java/setup.sh: no 'mvn' on PATH (Maven 3.8 or later, Java 17)" >&2; exit 1; }
# Maven's output is kept for a failure only (even --quiet writes terminal escapes).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! mvn --batch-mode --quiet -Dstyle.color=never --file "$here/pom.xml" package >"$log" 2>&1; then
  cat "$log" >&2
  echo "clients/java/setup.sh: the Maven build failed" >&2
  exit 1
fi
echo "clients/java: java -jar $jar"
