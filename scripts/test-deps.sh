#!/usr/bin/env bash
# Installs what the test suite needs when it is missing. As root it uses apt-get; otherwise it
# prints the exact command to run and fails.
set -euo pipefail

missing=()
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# PostgreSQL: a running server, or the binaries to start a throwaway one.
if [ -z "${BERTH_TEST_DATABASE_URL:-}${DATABASE_URL:-}" ] && ! port_open 5432 &&
   ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "test-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "test-deps: missing ${missing[*]}. Install with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
