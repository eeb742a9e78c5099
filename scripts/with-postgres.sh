#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster: initdb in a temp dir owned
# by the postgres user, pg_ctl on a free loopback port, REEL_TEST_DATABASE_URL
# exported for the command, and the cluster stopped and deleted afterwards.
set -euo pipefail

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ]; then
  echo "PostgreSQL server binaries not found; run 'make deps' (apt-get install postgresql)" >&2
  exit 1
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/reel-pg.XXXXXX)
chmod 755 "$dir"
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
cleanup() {
  as_postgres "$pg_bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
as_postgres "$pg_bin/initdb" -D "$dir/data" -U reel --auth=trust >/dev/null
# Tests trade durability for speed; REEL_PG_DURABLE=1 (make bench) keeps
# PostgreSQL's defaults, fsync and synchronous commit on.
options="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300"
if [ "${REEL_PG_DURABLE:-0}" != 1 ]; then
  options="$options -c fsync=off -c synchronous_commit=off"
fi
as_postgres "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "$options" start >/dev/null
as_postgres "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U reel reel
export REEL_TEST_DATABASE_URL="postgres://reel@127.0.0.1:$port/reel"
echo "with-postgres: cluster on 127.0.0.1:$port" >&2
"$@"
