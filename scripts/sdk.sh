#!/usr/bin/env bash
# Generates the Python and TypeScript SDKs from openapi/openapi.yaml with OpenAPI Generator
# (pinned; the PyPI package bundles it and runs offline on Java 17).
#   scripts/sdk.sh            regenerate sdk-clients/python and sdk-clients/typescript
#   scripts/sdk.sh --check    regenerate into a temporary copy and fail if anything differs
set -euo pipefail
cd "$(dirname "$0")/.."

generator=.tools/venv/bin/openapi-generator-cli
version=7.26.0
if [ ! -x "$generator" ] || ! "$generator" version 2>/dev/null | grep -q "^$version$"; then
  echo "sdk: installing openapi-generator-cli $version into .tools/venv" >&2
  [ -x .tools/venv/bin/python ] || python3 -m venv .tools/venv
  .tools/venv/bin/pip install -q --disable-pip-version-check "openapi-generator-cli==$version"
fi

generate() {
  local out=$1
  # Hand-written files (README, tests, package settings) are listed in each SDK's
  # .openapi-generator-ignore and survive regeneration; generated files are replaced whole.
  "$generator" generate -i openapi/openapi.yaml -g python -o "$out/python" \
    --package-name berth_client \
    --additional-properties=projectName=berth-client,packageVersion=0.1.0,packageUrl=https://example.invalid/berth \
    >/dev/null
  "$generator" generate -i openapi/openapi.yaml -g typescript-fetch -o "$out/typescript" \
    --additional-properties=npmName=berth-client,npmVersion=0.1.0,supportsES6=true,withInterfaces=false \
    >/dev/null
}

if [ "${1:-}" = "--check" ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  local_only=(--exclude=node_modules --exclude=dist --exclude=build --exclude='*.egg-info'
    --exclude=__pycache__ --exclude=.pytest_cache)
  tar -c "${local_only[@]}" sdk-clients | tar -x -C "$scratch"
  generate "$scratch/sdk-clients"
  if ! diff -r -x node_modules -x dist -x build -x __pycache__ -x '*.egg-info' -x .pytest_cache \
      sdk-clients "$scratch/sdk-clients" >"$scratch/diff" 2>&1; then
    echo "sdk: the committed SDKs differ from what openapi/openapi.yaml generates; run make sdk" >&2
    head -50 "$scratch/diff" >&2
    exit 1
  fi
  echo "sdk: generated SDKs are up to date" >&2
else
  generate sdk-clients
  echo "sdk: regenerated sdk-clients/python and sdk-clients/typescript" >&2
fi
