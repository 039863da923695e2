# Sourced by the scripts that drive a real `berth serve`: start_berth DIR starts one on a fresh
# data directory DIR/data (embedded SQLite) on a free loopback port, sets BERTH_URL and
# BERTH_PID, and mints an admin token into BERTH_TOKEN; stop_berth ends it.

berth=target/debug/berth

start_berth() { # <work dir> <token subject>
  env -u DATABASE_URL "$berth" serve --listen 127.0.0.1:0 --data-dir "$1/data" >"$1/out" 2>"$1/log" &
  BERTH_PID=$!
  for _ in $(seq 100); do
    grep -q "Berth listening on" "$1/out" 2>/dev/null && break
    sleep 0.1
  done
  BERTH_URL=$(sed -n 's/^Berth listening on //p' "$1/out")
  if [ -z "$BERTH_URL" ]; then
    echo "berth serve did not start:" >&2
    cat "$1/log" >&2
    return 1
  fi
  BERTH_TOKEN=$("$berth" token --data-dir "$1/data" --sub "$2" --scope admin)
  export BERTH_URL BERTH_TOKEN
}

stop_berth() {
  if [ -n "${BERTH_PID:-}" ]; then
    kill "$BERTH_PID" 2>/dev/null || true
    wait "$BERTH_PID" 2>/dev/null || true
  fi
}
