#!/usr/bin/env bash
# Runs a command with BERTH_TEST_DATABASE_URL pointing at a PostgreSQL server that answers:
# the one in BERTH_TEST_DATABASE_URL or DATABASE_URL when set, else one on 127.0.0.1:5432, else a
# throwaway cluster started here (initdb/pg_ctl from PATH or /usr/lib/postgresql/*/bin) in a temp
# dir on a free port, stopped and removed when the command ends. BERTH_TEST_THROWAWAY_PG=1 forces
# the throwaway cluster.
set -euo pipefail

usage() {
  echo "usage: scripts/with-postgres.sh COMMAND [ARG...]" >&2
  echo "Runs COMMAND with BERTH_TEST_DATABASE_URL set to a PostgreSQL admin URL." >&2
}
[ $# -gt 0 ] || { usage; exit 2; }
[ "$1" != "--help" ] || { usage; exit 0; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ "${BERTH_TEST_THROWAWAY_PG:-0}" = 1 ]; then
  :
elif [ -n "${BERTH_TEST_DATABASE_URL:-}" ]; then
  exec "$@"
elif [ -n "${DATABASE_URL:-}" ]; then
  export BERTH_TEST_DATABASE_URL="$DATABASE_URL"
  exec "$@"
elif port_open 5432; then
  echo "with-postgres: using the PostgreSQL server on 127.0.0.1:5432" >&2
  export BERTH_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  exec "$@"
fi

bindir=""
if command -v initdb >/dev/null 2>&1; then
  bindir=$(dirname "$(command -v initdb)")
else
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/initdb" ]; then bindir=$candidate; break; fi
  done
fi
if [ -z "$bindir" ]; then
  echo "with-postgres: no PostgreSQL server answers and initdb is not installed." >&2
  echo "Install it with: apt-get install -y postgresql" >&2
  exit 1
fi

port=55432
while port_open "$port"; do port=$((port + 1)); done
tmp=$(mktemp -d /tmp/berth-pg.XXXXXX)
run_as=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root; the cluster belongs to an unprivileged user.
  owner=postgres
  id "$owner" >/dev/null 2>&1 || owner=nobody
  chown "$owner" "$tmp"
  run_as=(runuser -u "$owner" --)
fi
cleanup() {
  "${run_as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
echo "with-postgres: starting a throwaway PostgreSQL ($bindir) on 127.0.0.1:$port" >&2
"${run_as[@]}" "$bindir/initdb" -D "$tmp/data" -U postgres --auth=trust --no-sync >/dev/null
"${run_as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
  -o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
export BERTH_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
"$@"
