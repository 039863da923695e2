#!/usr/bin/env bash
# Runs the web console's browser tests: headless Chromium (the system package) driven by
# playwright-core, each test against its own `berth serve`. Screenshots land in
# target/test-output/console/.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --bin berth
cd tests/console
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "console-test: installing playwright-core" >&2
  npm ci --silent --no-audit --no-fund
fi
node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs
