#!/usr/bin/env bash
# Installs the Debian packages the test suites start for real: an Erlang VM (the decoder's oracle),
# PostgreSQL and MariaDB servers, openssl for test certificates, and Java 17 with Maven (Cassandra,
# OpenSearch and Elasticsearch are started from Maven Central's jars; the Java example is built with
# Maven). Go 1.26 (the Go example, grpcurl, ghz) comes with the machine. Idempotent and quiet when
# everything is already there; needs root (as on our machines and in CI) otherwise.
# Arguments name more packages to install beside them (a bench's own, e.g. bench/native-inflate).
set -euo pipefail

packages=(erlang-base erlang-xmerl mariadb-server postgresql openssl openjdk-17-jdk-headless maven "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
# policy-rc.d may refuse to start services: the tests start their own server instances.
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
