#!/usr/bin/env bash
# Fuzzes the REST API against its own OpenAPI document: builds `berth`, starts `berth serve` on a
# fresh data directory, and runs schemathesis with every check against `/api/openapi.json` as an
# admin. Fails on any 5xx, any response the spec does not describe, and any warning
# (scripts/api-fuzz.toml). API_FUZZ_EXAMPLES (examples per operation and phase, default 100) and
# API_FUZZ_SEED (default 1, so that a failure reproduces) tune a run; extra arguments go to
# `schemathesis run`.
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${API_FUZZ_EXAMPLES:-100}
seed=${API_FUZZ_SEED:-1}
schemathesis=.tools/venv/bin/schemathesis
[ -x "$schemathesis" ] || scripts/test-deps.sh

. scripts/lib/berth-server.sh
cargo build --quiet --bin berth
work=$(mktemp -d /tmp/berth-api-fuzz.XXXXXX)
cleanup() {
  stop_berth
  rm -rf "$work"
}
trap cleanup EXIT
start_berth "$work" api-fuzz

echo "api-fuzz: schemathesis against $BERTH_URL ($examples examples per operation, seed $seed)" >&2
started=$SECONDS
status=0
"$schemathesis" --config-file scripts/api-fuzz.toml --no-color run "$BERTH_URL/api/openapi.json" \
  -H "Authorization: Bearer $BERTH_TOKEN" \
  --max-examples "$examples" --seed "$seed" \
  --report junit --report-dir "$work/report" "$@" || status=$?
echo "api-fuzz: finished in $((SECONDS - started))s" >&2
if [ "$status" != 0 ]; then
  echo "api-fuzz: failed; warnings and errors the server logged follow" >&2
  grep -E "WARN|ERROR" "$work/log" | tail -n 20 >&2 || true
fi
exit "$status"
