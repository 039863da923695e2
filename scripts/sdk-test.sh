#!/usr/bin/env bash
# Runs each SDK's own tests against a real `berth serve` started here on a fresh data directory:
# pytest for Python, node's test runner for TypeScript (after building it with tsc).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/berth-server.sh
[ -x "$berth" ] || cargo build --bin berth
work=$(mktemp -d /tmp/berth-sdk.XXXXXX)
cleanup() {
  stop_berth
  rm -rf "$work"
}
trap cleanup EXIT
start_berth "$work" sdk-tests
url=$BERTH_URL

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
