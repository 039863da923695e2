#!/usr/bin/env bash
# Runs each SDK's own tests against a real `berth serve` started here on a fresh data directory:
# pytest for Python, node's test runner for TypeScript (after building it with tsc).
set -euo pipefail
cd "$(dirname "$0")/.."

berth=target/debug/berth
[ -x "$berth" ] || cargo build --bin berth
work=$(mktemp -d /tmp/berth-sdk.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

env -u DATABASE_URL "$berth" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>"$work/log" &
server=$!
for _ in $(seq 100); do
  grep -q "Berth listening on" "$work/out" 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/^Berth listening on //p' "$work/out")
[ -n "$url" ] || { echo "sdk-test: berth serve did not start:" >&2; cat "$work/log" >&2; exit 1; }
export BERTH_URL=$url
BERTH_TOKEN=$("$berth" token --data-dir "$work/data" --sub sdk-tests --scope admin)
export BERTH_TOKEN

venv=.tools/sdk-venv
if [ ! -x "$venv/bin/pytest" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'pytest>=8'
fi
"$venv/bin/pip" install -q --disable-pip-version-check ./sdk-clients/python
echo "sdk-test: Python SDK against $url" >&2
"$venv/bin/pytest" -q sdk-clients/python/tests

echo "sdk-test: TypeScript SDK against $url" >&2
(cd sdk-clients/typescript && npm install --no-audit --no-fund --silent && npm run --silent build && npm test)
